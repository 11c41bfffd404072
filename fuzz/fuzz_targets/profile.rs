//! The profile reader on arbitrary bytes: decoding, parsing and rendering the error with its
//! position. It may refuse anything; it may not panic.

#![no_main]

use std::path::Path;

use baseimg::profile;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = match profile::decode(data) {
        Ok(text) => text,
        Err(err) => {
            let _ = err.render(Path::new("fuzz.toml"), "");
            return;
        }
    };
    match profile::parse(&text) {
        Ok(parsed) => {
            // A profile that parses re-serializes to TOML that parses to the same values.
            let again = toml::to_string(&parsed).expect("a parsed profile serializes");
            let reparsed = profile::parse(&again).expect("a serialized profile parses");
            assert_eq!(format!("{reparsed:?}"), format!("{parsed:?}"));
        }
        Err(err) => {
            let _ = err.render(Path::new("fuzz.toml"), &text);
        }
    }
});
