//! OpenSSH 9.2's algorithm names (Debian 12): what it knows and what it offers by default.

/// Key exchange methods offered when `KexAlgorithms` is not set.
pub const DEFAULT_KEX: &str = "sntrup761x25519-sha512@openssh.com,curve25519-sha256,\
curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,\
diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,\
diffie-hellman-group18-sha512,diffie-hellman-group14-sha256";

/// Ciphers offered when `Ciphers` is not set.
pub const DEFAULT_CIPHERS: &str = "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,\
aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com";

/// MACs offered when `MACs` is not set.
pub const DEFAULT_MACS: &str = "umac-64-etm@openssh.com,umac-128-etm@openssh.com,\
hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,\
umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1";

/// Key algorithms offered when `PubkeyAcceptedAlgorithms` / `HostKeyAlgorithms` are not set.
pub const DEFAULT_KEYS: &str = "ssh-ed25519-cert-v01@openssh.com,\
ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,\
ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,\
sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,\
rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,\
ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,\
rsa-sha2-512,rsa-sha2-256";

/// Every key exchange name OpenSSH 9.2 accepts (`sshd -Q kex`).
const KNOWN_KEX: &str = "diffie-hellman-group1-sha1,diffie-hellman-group14-sha1,\
diffie-hellman-group14-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,\
diffie-hellman-group-exchange-sha1,diffie-hellman-group-exchange-sha256,ecdh-sha2-nistp256,\
ecdh-sha2-nistp384,ecdh-sha2-nistp521,curve25519-sha256,curve25519-sha256@libssh.org,\
sntrup761x25519-sha512@openssh.com";

/// Every cipher name OpenSSH 9.2 accepts (`sshd -Q cipher`).
const KNOWN_CIPHERS: &str = "3des-cbc,aes128-cbc,aes192-cbc,aes256-cbc,aes128-ctr,aes192-ctr,\
aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com";

/// Every MAC name OpenSSH 9.2 accepts (`sshd -Q mac`).
const KNOWN_MACS: &str = "hmac-sha1,hmac-sha1-96,hmac-sha2-256,hmac-sha2-512,hmac-md5,\
hmac-md5-96,umac-64@openssh.com,umac-128@openssh.com,hmac-sha1-etm@openssh.com,\
hmac-sha1-96-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,\
hmac-md5-etm@openssh.com,hmac-md5-96-etm@openssh.com,umac-64-etm@openssh.com,\
umac-128-etm@openssh.com";

/// Every key algorithm name OpenSSH 9.2 accepts (`sshd -Q key-sig`).
const KNOWN_KEYS: &str = "ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,\
sk-ssh-ed25519@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256,\
ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384,\
ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521,\
ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,\
sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,webauthn-sk-ecdsa-sha2-nistp256@openssh.com,\
ssh-dss,ssh-dss-cert-v01@openssh.com,ssh-rsa,ssh-rsa-cert-v01@openssh.com,rsa-sha2-256,\
rsa-sha2-256-cert-v01@openssh.com,rsa-sha2-512,rsa-sha2-512-cert-v01@openssh.com";

/// One of sshd's algorithm-list keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlgoList {
    Kex,
    Ciphers,
    Macs,
    Keys,
}

impl AlgoList {
    fn known(self) -> &'static str {
        match self {
            Self::Kex => KNOWN_KEX,
            Self::Ciphers => KNOWN_CIPHERS,
            Self::Macs => KNOWN_MACS,
            Self::Keys => KNOWN_KEYS,
        }
    }

    fn default_list(self) -> &'static str {
        match self {
            Self::Kex => DEFAULT_KEX,
            Self::Ciphers => DEFAULT_CIPHERS,
            Self::Macs => DEFAULT_MACS,
            Self::Keys => DEFAULT_KEYS,
        }
    }

    /// Whether OpenSSH 9.2 knows the name.
    pub fn knows(self, name: &str) -> bool {
        self.known().split(',').any(|k| k == name)
    }

    /// The effective list for a configured value: `+` appends, `-` removes, `^` prepends,
    /// a plain list replaces the default. Wildcards in `-` lists match like sshd's.
    pub fn effective(self, value: &str) -> Vec<String> {
        let split = |s: &str| s.split(',').filter(|n| !n.is_empty()).map(String::from).collect();
        let defaults: Vec<String> = split(self.default_list());
        if let Some(extra) = value.strip_prefix('+') {
            defaults.into_iter().chain(split(extra)).collect()
        } else if let Some(first) = value.strip_prefix('^') {
            split(first).into_iter().chain(defaults).collect()
        } else if let Some(gone) = value.strip_prefix('-') {
            let gone: Vec<String> = split(gone);
            defaults
                .into_iter()
                .filter(|d| !gone.iter().any(|g| super::glob::fnmatch(g, d)))
                .collect()
        } else {
            split(value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_minus_and_caret_edit_the_default_list() {
        assert!(AlgoList::Macs.effective("+hmac-md5").contains(&"hmac-md5".to_string()));
        assert!(!AlgoList::Macs
            .effective("-hmac-sha1*")
            .iter()
            .any(|m| m.starts_with("hmac-sha1")));
        assert_eq!(AlgoList::Kex.effective("^curve25519-sha256")[0], "curve25519-sha256");
    }
}
