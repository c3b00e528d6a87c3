//! The D-Bus methods' argument limits and checks: each bad argument is an
//! InvalidArgument that names it and what is wrong, before any work starts.
//! The interface XML states the same limits (a test holds them equal).

use super::errors::Error;

/// The longest username, first or last name, in characters ([`crate::names`]).
pub const MAX_NAME: usize = crate::names::MAX_NAME;
/// The longest email address (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;
/// The longest phone number, in characters.
pub const MAX_PHONE: usize = 32;
/// The longest sessionCallbackURL, in bytes.
pub const MAX_URL: usize = 4096;

/// An InvalidArgument with `msg`.
pub fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(msg.into())
}

/// [`crate::names::check_text`] as an InvalidArgument.
pub fn check_text(what: &str, value: &str, max: usize, required: bool) -> Result<(), Error> {
    crate::names::check_text(what, value, max, required).map_err(invalid)
}

/// Checks a username argument ([`crate::names::check_username`]): InvalidArgument
/// naming what is wrong (empty, too long, a hidden character, white space that
/// makes it show as another name).
pub fn check_username(username: &str) -> Result<(), Error> {
    crate::names::check_username(username).map_err(invalid)
}

/// Checks an email argument: InvalidArgument unless it is shaped like an address.
pub fn check_email(email: &str) -> Result<(), Error> {
    check_text("email", email, MAX_EMAIL, true)?;
    let shape_ok = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !email.chars().any(char::is_whitespace)
    });
    if shape_ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "email {email:?} is not an address like name@example.com"
        )))
    }
}

/// Checks a phone number argument (may be empty): digits, spaces and `+-().`.
pub fn check_phone(phone: &str) -> Result<(), Error> {
    check_text("phone_number", phone, MAX_PHONE, false)?;
    if phone
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c))
    {
        Ok(())
    } else {
        Err(invalid(
            "phone_number may hold only digits, spaces and + - ( ) .",
        ))
    }
}

/// Checks a session_callback_url argument's length (the QR decoder checks the rest).
pub fn check_url(url: &str) -> Result<(), Error> {
    if url.len() > MAX_URL {
        return Err(invalid(format!(
            "session_callback_url is {} bytes; at most {MAX_URL}",
            url.len()
        )));
    }
    // The QR decoder names what is wrong with a URL that is no sessionCallbackURL.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_checked_with_named_errors() {
        let name = |r: Result<(), Error>| match r {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(name(check_username("")).contains("username is empty"));
        assert!(name(check_username(&"x".repeat(10_000))).contains("at most 128"));
        assert!(name(check_username("a\u{0}b")).contains("control"));
        assert!(check_username("alice").is_ok());
        for bad in [
            "",
            "alice",
            "a@b",
            "@example.com",
            "a@@b.com",
            "a b@c.com",
            "a@.com",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
        assert!(check_email("alice@example.com").is_ok());
        assert!(check_phone("+1 (555) 010-0").is_ok());
        assert!(name(check_phone("call me")).contains("phone_number"));
        assert!(check_url(&"x".repeat(5000)).is_err());
    }

    #[test]
    fn text_that_shows_as_other_text_is_refused() {
        let name = |r: Result<(), Error>| match r {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("{other:?}"),
        };
        // Bidi controls, marks, zero-width and other format characters.
        for bad in [
            "eve\u{202E}gnp.exe",
            "a\u{202A}b",
            "a\u{2066}b",
            "a\u{2069}b",
            "a\u{200E}b",
            "a\u{200F}b",
            "a\u{200B}b",
            "a\u{2060}b",
            "\u{FEFF}alice",
            "a\u{2028}b",
            "a\u{E000}b",
        ] {
            let m = name(check_username(bad));
            assert!(m.contains("format character"), "{bad:?}: {m}");
        }
        assert!(name(check_username("eve\u{202E}gnp.exe")).contains("U+202E"));
        assert!(check_text("first_name", "eve\u{202E}x", MAX_NAME, false).is_err());
        // Letters of every script pass.
        for good in ["José", "Zoë", "Дмитрий", "李小龍", "O'Brien-Smith"] {
            assert!(check_username(good).is_ok(), "{good:?}");
        }
        // A Persian name with its non-joiner is a name, not a username.
        let persian = "\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}";
        assert!(check_text("first_name", persian, MAX_NAME, false).is_ok());
        assert!(name(check_username(persian)).contains("U+200C"));
    }

    #[test]
    fn the_interface_xml_gives_the_same_length_limit() {
        let xml = facecapture_dbus::INTERFACE_XML;
        assert!(
            xml.contains(&format!("1 to {MAX_NAME} characters")),
            "the XML's username length is not {MAX_NAME}"
        );
        assert!(xml.contains(&format!("at most {MAX_NAME} characters")));
    }
}
