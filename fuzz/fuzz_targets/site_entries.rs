//! What a hub hands a door (`site::entry::open`), two ways. Byte 0 even: the
//! input, split at the first 0xff, is a key and a value as any reader of the
//! hub could write them. Odd: the rest is a value a door holding the site's key
//! sealed under its own key (a stolen door, or a newer build), so the fuzzer
//! reaches the parser behind the seal. Either way: a named error or an entry
//! whose door and user are its key's, never a panic.
#![no_main]

use facecapture::crypto::site::SiteIdentity;
use facecapture::site::entry::open;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static SITE: LazyLock<SiteIdentity> =
    LazyLock::new(|| SiteIdentity::generate().expect("a site identity"));

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let (key, value) = match rest.iter().position(|&b| b == 0xff) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        let key = String::from_utf8_lossy(key);
        let _ = open(&SITE, &key, value, 1);
        return;
    }
    let Ok(tag) = SITE.user_tag("ann") else {
        return;
    };
    let key = format!("t1.{tag}");
    let Ok(sealed) = SITE.seal(&key, rest) else {
        return;
    };
    if let Ok(entry) = open(&SITE, &key, &sealed, 7) {
        assert_eq!(
            (entry.door.as_str(), entry.tag.as_str()),
            ("t1", tag.as_str())
        );
        assert_eq!(entry.username(), "ann", "an entry names its key's user");
        assert_eq!(entry.revision, 7);
    }
});
