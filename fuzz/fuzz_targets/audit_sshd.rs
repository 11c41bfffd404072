//! The audit's sshd_config reader on arbitrary text, with the look-ups the controls make.

#![no_main]

use baseimg::audit::sshd::{split_line, SshdConfig};

const KEYWORDS: &[&str] = &[
    "PermitRootLogin",
    "PasswordAuthentication",
    "Port",
    "ListenAddress",
    "AllowUsers",
    "KexAlgorithms",
    "Ciphers",
    "MACs",
    "AuthorizedKeysFile",
    "Include",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for line in text.lines() {
        let _ = split_line(line);
    }
    let config = SshdConfig::parse_text(text, "/etc/ssh/sshd_config");
    for keyword in KEYWORDS {
        let global = config.get(keyword, None);
        let _ = config.origin(&global);
        for block in 0..3 {
            let _ = config.get(keyword, Some(block));
            let _ = config.all(keyword, Some(block));
        }
        for setting in config.possible(keyword) {
            let _ = config.origin(&setting);
        }
    }
});
