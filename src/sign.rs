//! SSH signatures over `SHA256SUMS` (`baseimg sign`), and checking them against an OpenSSH
//! allowed signers file, as `ssh-keygen -Y verify` does.
//!
//! The signature's namespace is `file`, OpenSSH's convention for signed files:
//! `ssh-keygen -Y verify -f allowed_signers -I <identity> -n file -s SHA256SUMS.sig < SHA256SUMS`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

/// The namespace signatures are made in and checked against.
pub const NAMESPACE: &str = "file";
/// The signature file, beside `SHA256SUMS`.
pub const SIG: &str = "SHA256SUMS.sig";

/// What `baseimg sign` was asked to do.
#[derive(Debug, Clone)]
pub struct SignOptions {
    /// The output folder holding `SHA256SUMS`.
    pub dir: PathBuf,
    /// An unencrypted OpenSSH private key.
    pub key: PathBuf,
}

/// Signs `SHA256SUMS` in the folder, writing `SHA256SUMS.sig`; returns the key's fingerprint.
pub fn sign(opts: &SignOptions) -> anyhow::Result<String> {
    let sums_path = opts.dir.join(crate::build::publish::SUMS);
    let sums = std::fs::read(&sums_path).with_context(|| {
        format!("reading `{}` (is it a build's output folder?)", sums_path.display())
    })?;
    let key = read_private_key(&opts.key)?;
    let sig = key
        .sign(NAMESPACE, HashAlg::Sha512, &sums)
        .with_context(|| format!("signing `{}`", sums_path.display()))?;
    let pem = sig.to_pem(LineEnding::LF).context("encoding the signature")?;
    crate::fsutil::write_atomic(&opts.dir.join(SIG), pem.as_bytes())?;
    Ok(key.public_key().fingerprint(HashAlg::Sha256).to_string())
}

fn read_private_key(path: &Path) -> anyhow::Result<PrivateKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading private key `{}`", path.display()))?;
    let key = PrivateKey::from_openssh(&text)
        .map_err(|e| anyhow::anyhow!("`{}` is not an OpenSSH private key: {e}", path.display()))?;
    anyhow::ensure!(
        !key.is_encrypted(),
        "private key `{}` is encrypted; give an unencrypted copy (for instance one written \
         from a CI secret to a private temporary file)",
        path.display()
    );
    Ok(key)
}

/// One key an allowed signers file trusts.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    pub principals: String,
    pub key: PublicKey,
    /// Namespaces this key may sign for; empty means any.
    pub namespaces: Vec<String>,
    pub line: usize,
}

/// Reads an allowed signers file (`principals [options] key-type base64 [comment]`).
/// Lines with `cert-authority`, `valid-after` or `valid-before` are refused rather than
/// half-understood.
pub fn read_allowed_signers(path: &Path) -> anyhow::Result<Vec<AllowedSigner>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading allowed signers `{}`", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let signer = parse_signer_line(line, i + 1)
            .with_context(|| format!("`{}` line {}", path.display(), i + 1))?;
        out.push(signer);
    }
    anyhow::ensure!(!out.is_empty(), "allowed signers `{}` lists no key", path.display());
    Ok(out)
}

fn parse_signer_line(line: &str, number: usize) -> anyhow::Result<AllowedSigner> {
    let (principals, rest) =
        line.split_once(char::is_whitespace).context("expected `principals key-type base64`")?;
    let rest = rest.trim_start();
    if let Ok(key) = PublicKey::from_openssh(rest) {
        return Ok(AllowedSigner {
            principals: principals.into(),
            key,
            namespaces: vec![],
            line: number,
        });
    }
    let (options, key_text) = split_options(rest);
    let key = PublicKey::from_openssh(key_text.trim())
        .map_err(|e| anyhow::anyhow!("no readable public key after the options: {e}"))?;
    let mut namespaces = Vec::new();
    for option in split_commas(options) {
        let (name, value) = option.split_once('=').unwrap_or((option, ""));
        match name.to_ascii_lowercase().as_str() {
            "namespaces" => {
                namespaces = value.trim_matches('"').split(',').map(str::to_string).collect()
            }
            other => anyhow::bail!("option `{other}` is not supported here"),
        }
    }
    Ok(AllowedSigner { principals: principals.into(), key, namespaces, line: number })
}

/// Splits off the options field, which may hold quoted commas and spaces.
fn split_options(text: &str) -> (&str, &str) {
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (&text[..i], &text[i..]),
            _ => {}
        }
    }
    (text, "")
}

fn split_commas(options: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut start) = (false, 0);
    for (i, c) in options.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&options[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&options[start..]);
    out
}

/// Checks `signature` (PEM text) over `message` against the allowed signers; returns the
/// matching line's principals and the key's fingerprint.
pub fn check_signature(
    signers: &[AllowedSigner],
    signature: &str,
    message: &[u8],
) -> anyhow::Result<(String, String)> {
    let sig =
        SshSig::from_pem(signature).map_err(|e| anyhow::anyhow!("unreadable signature: {e}"))?;
    anyhow::ensure!(
        sig.namespace() == NAMESPACE,
        "the signature is for namespace `{}`, not `{NAMESPACE}`",
        sig.namespace()
    );
    let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
    let signer = signers
        .iter()
        .find(|s| s.key.key_data() == sig.public_key())
        .with_context(|| format!("the signing key {fingerprint} is not in the allowed signers"))?;
    anyhow::ensure!(
        signer.namespaces.is_empty() || signer.namespaces.iter().any(|n| n == NAMESPACE),
        "allowed signers line {} does not allow namespace `{NAMESPACE}`",
        signer.line
    );
    signer
        .key
        .verify(NAMESPACE, message, &sig)
        .map_err(|e| anyhow::anyhow!("the signature does not match the file ({e})"))?;
    Ok((signer.principals.clone(), fingerprint))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_key() -> PrivateKey {
        let pair = ssh_key::private::Ed25519Keypair::from_seed(&[7; 32]);
        PrivateKey::from(pair)
    }

    fn signers_for(key: &PrivateKey, options: &str) -> Vec<AllowedSigner> {
        let public = key.public_key().to_openssh().expect("public key");
        let line = format!("release@example.org {options}{public}");
        vec![parse_signer_line(&line, 1).expect("signer line")]
    }

    #[test]
    fn signature_verifies_and_a_changed_file_does_not() {
        let key = test_key();
        let sig = key.sign(NAMESPACE, HashAlg::Sha512, b"abc  x.img\n").expect("sign");
        let pem = sig.to_pem(LineEnding::LF).expect("pem");
        let signers = signers_for(&key, "");
        let (who, _) = check_signature(&signers, &pem, b"abc  x.img\n").expect("valid");
        assert_eq!(who, "release@example.org");
        let err = check_signature(&signers, &pem, b"abd  x.img\n").unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn namespace_restrictions_are_honoured() {
        let key = test_key();
        let pem = key.sign(NAMESPACE, HashAlg::Sha512, b"m").expect("sign").to_pem(LineEnding::LF);
        let pem = pem.expect("pem");
        assert!(check_signature(&signers_for(&key, "namespaces=\"file,git\" "), &pem, b"m").is_ok());
        let err =
            check_signature(&signers_for(&key, "namespaces=\"git\" "), &pem, b"m").unwrap_err();
        assert!(err.to_string().contains("does not allow namespace"), "{err}");
    }

    #[test]
    fn unknown_key_and_unsupported_options_are_refused() {
        let key = test_key();
        let other = PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[8; 32]));
        let pem = key.sign(NAMESPACE, HashAlg::Sha512, b"m").expect("sign").to_pem(LineEnding::LF);
        let err = check_signature(&signers_for(&other, ""), &pem.expect("pem"), b"m").unwrap_err();
        assert!(err.to_string().contains("not in the allowed signers"), "{err}");
        let public = key.public_key().to_openssh().expect("public key");
        let line = format!("a@b valid-before=\"20300101\" {public}");
        assert!(parse_signer_line(&line, 3).unwrap_err().to_string().contains("valid-before"));
    }
}
