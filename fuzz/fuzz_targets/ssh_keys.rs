//! The SSH public key parser on arbitrary text. A key it accepts must come out as one line
//! without control characters (tabs inside quoted options aside), and parse again to the same
//! key.

#![no_main]

use baseimg::sshkey::parse_authorized_keys;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(keys) = parse_authorized_keys(text) else { return };
    for key in keys {
        // One line: a tab may stay inside a quoted option, no other control character.
        let control = key.line().chars().any(|c| c.is_control() && c != '\t');
        assert!(!control, "{:?}", key.line());
        let again = parse_authorized_keys(key.line()).expect("an accepted key parses again");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].line(), key.line());
        assert_eq!(again[0].fingerprint(), key.fingerprint());
    }
});
