//! SSH public keys as users paste them: parsed, checked and written back as one safe line.

use std::fmt;

use ssh_key::public::KeyData;
use ssh_key::{Algorithm, PublicKey};

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: u32 = 3072;

/// One checked `authorized_keys` line: a supported key type, valid key data, printable text.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizedKey {
    line: String,
    algorithm: String,
    fingerprint: String,
}

impl AuthorizedKey {
    /// The line as it goes into `authorized_keys` (without the newline).
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The key's algorithm name, as sshd's `PubkeyAcceptedAlgorithms` spells it.
    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    /// The SHA256 fingerprint, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

impl fmt::Debug for AuthorizedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthorizedKey({} {})", self.algorithm, self.fingerprint)
    }
}

impl serde::Serialize for AuthorizedKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.line)
    }
}

impl<'de> serde::Deserialize<'de> for AuthorizedKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.contains(['\n', '\r']) {
            return Err(serde::de::Error::custom(
                "an SSH key entry contains a line break; give one key per list entry",
            ));
        }
        let mut keys = parse_authorized_keys(&text).map_err(serde::de::Error::custom)?;
        match keys.len() {
            1 => Ok(keys.remove(0)),
            n => Err(serde::de::Error::custom(format!("expected one SSH public key, found {n}"))),
        }
    }
}

/// Parses the text of an `authorized_keys` or `.pub` file: one key per line, blank lines and
/// `#` comments skipped, a leading byte-order mark and CRLF line ends tolerated.
pub fn parse_authorized_keys(text: &str) -> Result<Vec<AuthorizedKey>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.contains("PRIVATE KEY-----") {
        return Err("this is a private key; give the public key (the `.pub` file)".into());
    }
    if text.trim_start().starts_with("-----BEGIN") || text.trim_start().starts_with("---- BEGIN") {
        return Err("PEM or RFC 4716 format; convert it with `ssh-keygen -i -f FILE` to \
                    OpenSSH's one-line format"
            .into());
    }
    if text.contains('\0') {
        return Err("the key text contains NUL bytes (is it UTF-16? save it as UTF-8)".into());
    }
    let mut keys = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = parse_line(line).map_err(|e| format!("line {}: {e}", index + 1))?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err("no SSH public key found".into());
    }
    Ok(keys)
}

/// Reads a key file from disk; the error names the file.
pub fn read_key_file(path: &std::path::Path) -> anyhow::Result<Vec<AuthorizedKey>> {
    use anyhow::Context;
    let bytes =
        std::fs::read(path).with_context(|| format!("reading SSH key `{}`", path.display()))?;
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        anyhow::bail!("SSH key `{}` is UTF-16; save it as UTF-8", path.display());
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("SSH key `{}` is not UTF-8 text", path.display()))?;
    parse_authorized_keys(&text).map_err(|e| anyhow::anyhow!("SSH key `{}`: {e}", path.display()))
}

fn parse_line(line: &str) -> Result<AuthorizedKey, String> {
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err("the line contains control characters".into());
    }
    if line.chars().any(is_bidi_control) {
        return Err("the line contains a bidirectional text control (it can make the \
                    comment or options display differently from what they are)"
            .into());
    }
    if line.len() > 16 * 1024 {
        return Err("the line is longer than 16 KiB".into());
    }
    let (options, rest) = split_options(line)?;
    if let Some(options) = options {
        check_options(options)?;
    }
    let mut words = rest.split_whitespace();
    let type_word = words.next().ok_or("no key type and key data")?;
    let blob = words.next().ok_or_else(|| format!("no key data after `{type_word}`"))?;
    let comment: Vec<&str> = words.collect();
    if let Some(inner) = blob_type(blob).filter(|inner| inner != type_word) {
        return Err(format!("the type word `{type_word}` does not match the key data ({inner})"));
    }
    let key = PublicKey::from_openssh(&format!("{type_word} {blob}"))
        .map_err(|e| format!("not a valid SSH public key ({e})"))?;
    let name = key.algorithm().as_str().to_string();
    if type_word != name {
        return Err(format!("the type word `{type_word}` does not match the key data ({name})"));
    }
    check_strength(key.key_data())?;
    let mut canonical: Vec<&str> = options.into_iter().collect();
    canonical.extend([type_word, blob]);
    canonical.extend(comment);
    Ok(AuthorizedKey {
        line: canonical.join(" "),
        algorithm: name,
        fingerprint: key.fingerprint(ssh_key::HashAlg::Sha256).to_string(),
    })
}

/// Invisible Unicode format characters: ones that reorder how text is displayed
/// (embeddings, overrides, isolates, marks) and zero-width ones, a byte-order mark included.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// The `authorized_keys` options OpenSSH knows (sshd(8), AUTHORIZED_KEYS FILE FORMAT).
const KNOWN_OPTIONS: &[&str] = &[
    "agent-forwarding",
    "cert-authority",
    "command",
    "environment",
    "expiry-time",
    "from",
    "no-agent-forwarding",
    "no-port-forwarding",
    "no-pty",
    "no-user-rc",
    "no-x11-forwarding",
    "permitlisten",
    "permitopen",
    "port-forwarding",
    "principals",
    "pty",
    "no-touch-required",
    "verify-required",
    "restrict",
    "tunnel",
    "user-rc",
    "x11-forwarding",
];

/// Checks every comma-separated option names one OpenSSH knows; sshd skips a line with an
/// unknown option, so the key would silently not work.
fn check_options(options: &str) -> Result<(), String> {
    let (mut quoted, mut escaped, mut start) = (false, false, 0);
    let mut names = Vec::new();
    for (i, c) in options.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                names.push(&options[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    names.push(&options[start..]);
    for option in names {
        let name = option.split_once('=').map_or(option, |(name, _)| name);
        if !KNOWN_OPTIONS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(format!("unknown option `{name}` before the key type"));
        }
    }
    Ok(())
}

/// The algorithm name a key blob starts with, when the blob decodes that far.
fn blob_type(blob: &str) -> Option<String> {
    use base64ct::Encoding;
    let bytes = base64ct::Base64::decode_vec(blob).ok()?;
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let name = bytes.get(4..4 + len.min(64))?;
    String::from_utf8(name.to_vec()).ok()
}

/// Splits a leading options field (`from="a,b",command="x y",no-pty`) from the rest of the
/// line. Options are present when the first word is not a key type; inside double quotes,
/// commas and spaces belong to the option and `\"` is a literal quote.
fn split_options(line: &str) -> Result<(Option<&str>, &str), String> {
    let mut words = line.split_whitespace();
    let first = words.next().unwrap_or("");
    let second_is_blob = words.next().is_some_and(|w| w.starts_with("AAAA"));
    if Algorithm::new(first).is_ok() || second_is_blob {
        return Ok((None, line));
    }
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return Ok((Some(&line[..i]), &line[i..])),
            _ => {}
        }
    }
    if quoted {
        return Err("an option's double quote is never closed".into());
    }
    Err("no key after the options".into())
}

fn check_strength(data: &KeyData) -> Result<(), String> {
    match data {
        KeyData::Dsa(_) => Err("DSA keys are not accepted (OpenSSH disabled them)".into()),
        KeyData::Rsa(rsa) => {
            let bits = rsa_bits(rsa.n.as_bytes());
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "RSA key of {bits} bits; at least {MIN_RSA_BITS} are required"
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn rsa_bits(modulus: &[u8]) -> u32 {
    let significant: Vec<u8> = modulus.iter().copied().skip_while(|b| *b == 0).collect();
    match significant.first() {
        Some(first) => (significant.len() as u32 - 1) * 8 + (8 - first.leading_zeros()),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnYkPYbmSHnmdhRvWnFzhEFz8jIBD9ckFSB6N8bZ5e8";

    #[test]
    fn pasted_forms_parse() {
        let text = format!(
            "\u{feff}# my keys\r\n\r\n{ED25519} alice at laptop\r\n\
             from=\"10.0.0.1,10.0.0.2\",no-pty {ED25519} bob  \n"
        );
        let keys = parse_authorized_keys(&text).expect("keys parse");
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].line(), format!("{ED25519} alice at laptop"));
        assert!(keys[1].line().starts_with("from=\"10.0.0.1,10.0.0.2\",no-pty ssh-ed25519 "));
        assert_eq!(keys[0].algorithm(), "ssh-ed25519");
    }

    #[test]
    fn options_with_quoted_commas_and_spaces_parse() {
        let line = format!(
            "from=\"10.0.0.1,10.0.0.2\",command=\"/usr/bin/x --a b\",no-pty {ED25519} my laptop"
        );
        let keys = parse_authorized_keys(&line).expect("C13 line parses");
        assert_eq!(keys[0].line(), line);
        assert!(parse_authorized_keys(&format!("command=\"x {ED25519}")).is_err());
    }

    #[test]
    fn truncated_blob_and_wrong_type_word_are_refused() {
        let truncated = &ED25519[..ED25519.len() - 10];
        assert!(parse_authorized_keys(truncated).is_err());
        let wrong = ED25519.replace("ssh-ed25519 ", "ssh-rsa ");
        assert!(parse_authorized_keys(&wrong).is_err());
    }

    #[test]
    fn invisible_characters_and_unknown_options_are_refused() {
        // Found by the ssh_keys fuzz target: a byte-order mark inside the text and a word
        // that is no option were accepted, and the line did not parse back to itself.
        let line = format!("\u{feff}ZHIkNO5icRwMYP8gceLxBxVrZ2eys {ED25519} alice");
        assert!(parse_authorized_keys(&format!("# keys\n{line}")).is_err());
        let err = parse_authorized_keys(&format!("ZHIkNO5icRw {ED25519}")).unwrap_err();
        assert!(err.contains("unknown option `ZHIkNO5icRw`"), "{err}");
        assert!(parse_authorized_keys(&format!("{ED25519} a\u{200b}b")).is_err());
        assert!(parse_authorized_keys(&format!("No-Pty,restrict {ED25519}")).is_ok());
    }

    #[test]
    fn nul_bytes_and_empty_input_are_refused() {
        assert!(parse_authorized_keys("s\0s\0h\0").unwrap_err().contains("NUL"));
        assert!(parse_authorized_keys("# nothing\n\n").unwrap_err().contains("no SSH public key"));
    }
}
