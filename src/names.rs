//! What a username and a person's names may hold: one rule for the D-Bus
//! arguments (the service's checks) and for the username an AwareID session
//! names (validateSession's `userName`, checked by the workflow before anything
//! is stored), so that what is stored, listed and audited is text that shows as
//! itself. A problem is one sentence naming the field and the character, never
//! quoting the value.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// The longest username, first or last name, in characters (the interface XML
/// says the same; a test holds them together).
pub const MAX_NAME: usize = 128;

/// Checks one text field: empty (when `required`), longer than `max`
/// characters, a character that hides or reorders text, or white space that
/// makes it show as another (leading or trailing white space of any kind, a
/// space other than U+0020 inside).
///
/// ```
/// use facecapture::names::check_text;
/// assert!(check_text("first_name", "Mary Ann", 128, false).is_ok());
/// assert_eq!(
///     check_text("first_name", "Mary\u{a0}Ann", 128, false).unwrap_err(),
///     "first_name contains U+00A0, a space other than U+0020"
/// );
/// ```
pub fn check_text(what: &str, value: &str, max: usize, required: bool) -> Result<(), String> {
    if required && value.trim().is_empty() {
        return Err(format!("{what} is empty"));
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(format!("{what} is {chars} characters; at most {max}"));
    }
    if let Some(c) = value.chars().find(|&c| hidden(c)) {
        return Err(format!(
            "{what} contains U+{:04X}, a control or format character (it hides or reorders \
             text: \"eve\\u{{202E}}gnp.exe\" shows as \"eveexe.png\")",
            c as u32
        ));
    }
    if let Some(c) = value
        .chars()
        .next()
        .filter(|c| c.is_whitespace())
        .or_else(|| value.chars().next_back().filter(|c| c.is_whitespace()))
    {
        return Err(format!(
            "{what} starts or ends with white space (U+{:04X}): \"alice \" would show as \"alice\"",
            c as u32
        ));
    }
    if let Some(c) = value.chars().find(|&c| c.is_whitespace() && c != ' ') {
        return Err(format!(
            "{what} contains U+{:04X}, a space other than U+0020",
            c as u32
        ));
    }
    Ok(())
}

/// Checks a username: [`check_text`] with a username's limits, and no
/// zero-width joiner (a name may need one to show right; a username is an
/// identifier, and with them "eve" and "e\u{200D}ve" would be two users who look
/// the same).
///
/// ```
/// use facecapture::names::check_username;
/// assert!(check_username("alice").is_ok());
/// assert!(check_username("alice ").is_err());
/// assert!(check_username("\u{a0}alice").is_err());
/// ```
pub fn check_username(username: &str) -> Result<(), String> {
    check_text("username", username, MAX_NAME, true)?;
    if let Some(c) = username
        .chars()
        .find(|c| matches!(c, '\u{200C}' | '\u{200D}'))
    {
        return Err(format!(
            "username contains U+{:04X}, a zero-width joiner (it does not show)",
            c as u32
        ));
    }
    Ok(())
}

/// Characters that change how the text around them shows, or do not show at all:
/// controls (Cc), format characters (Cf: the bidi overrides and isolates U+202A-E
/// and U+2066-9, the marks U+200E/F, zero-width spaces, U+FEFF), line and
/// paragraph separators, private-use and unassigned code points. The zero-width
/// non-joiner and joiner (U+200C/D) stay allowed: Persian and Indic names need
/// them, and they change shaping, not order.
fn hidden(c: char) -> bool {
    if matches!(c, '\u{200C}' | '\u{200D}') {
        return false;
    }
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate
            | GeneralCategory::Unassigned
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names that display as "alice" beside "alice" (issue 27, item 8).
    #[test]
    fn white_space_that_makes_a_name_show_as_another_is_refused() {
        for bad in [
            "alice ",
            " alice",
            "\u{a0}alice",
            "alice\u{3000}",
            "alice\u{2003}",
            "al\u{a0}ice",
            "al\u{2009}ice",
            "al\u{1680}ice",
        ] {
            let e = check_username(bad).expect_err(bad);
            assert!(e.starts_with("username "), "{bad:?}: {e}");
            assert!(e.contains("U+"), "{bad:?}: {e}");
        }
        assert!(
            check_username("mary ann").is_ok(),
            "U+0020 inside is a space"
        );
        assert!(check_text("last_name", "van der Berg", MAX_NAME, false).is_ok());
        assert!(check_text("last_name", "", MAX_NAME, false).is_ok());
        assert!(check_text("first_name", "Ann ", MAX_NAME, false).is_err());
    }
}
