//! Bootstrap tokens and certificate keys, drawn from the operating system's CSPRNG.

use crate::{Error, Result};

/// The alphabet of bootstrap tokens (kubeadm: `[a-z0-9]`).
const TOKEN_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A bootstrap token `<id>.<secret>`: 6 then 16 characters of `[a-z0-9]`.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    id: String,
    secret: String,
}

impl BootstrapToken {
    /// Draws a new token from the OS CSPRNG.
    pub fn generate() -> Result<Self> {
        Ok(BootstrapToken {
            id: random_string(6)?,
            secret: random_string(16)?,
        })
    }

    /// Parses `<id>.<secret>`, checking kubeadm's format `\A([a-z0-9]{6})\.([a-z0-9]{16})\z`.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = || {
            Error::invalid(
                "bootstrap token must look like abcdef.0123456789abcdef \
                 ([a-z0-9]{6}.[a-z0-9]{16}); make one with `kiln token generate`",
            )
        };
        let (id, secret) = text.split_once('.').ok_or_else(invalid)?;
        let valid =
            |s: &str, len: usize| s.len() == len && s.bytes().all(|b| TOKEN_ALPHABET.contains(&b));
        if !valid(id, 6) || !valid(secret, 16) {
            return Err(invalid());
        }
        Ok(BootstrapToken {
            id: id.to_owned(),
            secret: secret.to_owned(),
        })
    }

    /// The public token id (the part before the dot), safe to log.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The whole token `<id>.<secret>`. A secret: never log it.
    pub fn expose(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }
}

impl std::fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BootstrapToken({}.<redacted>)", self.id)
    }
}

/// A new certificate key: 32 random bytes (an AES-256 key) as 64 hex characters, like
/// `kubeadm certs certificate-key`. A secret: never log it.
pub fn generate_certificate_key() -> Result<String> {
    let mut key = [0u8; 32];
    fill_random(&mut key)?;
    Ok(hex::encode(key))
}

/// `len` characters drawn uniformly from [`TOKEN_ALPHABET`] (rejection sampling, no modulo bias).
fn random_string(len: usize) -> Result<String> {
    // 252 is the largest multiple of 36 that fits in a byte.
    const LIMIT: u8 = 252;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 32];
    while out.len() < len {
        fill_random(&mut buf)?;
        for &b in buf.iter().filter(|&&b| b < LIMIT) {
            if out.len() == len {
                break;
            }
            out.push(TOKEN_ALPHABET[usize::from(b % 36)] as char);
        }
    }
    Ok(out)
}

fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::crypto("reading the OS random number generator", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_kubeadm_format_and_differ() {
        let a = BootstrapToken::generate().unwrap();
        let b = BootstrapToken::generate().unwrap();
        assert_eq!(BootstrapToken::parse(&a.expose()).unwrap(), a);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 23);
    }

    #[test]
    fn parse_rejects_bad_tokens() {
        for bad in [
            "",
            "abcdef",
            "abcdef.0123456789abcde",
            "ABCDEF.0123456789abcdef",
            "abcdef-0123456789abcdef",
            "abcdef.0123456789abcdef0",
        ] {
            assert!(BootstrapToken::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn debug_redacts_the_secret() {
        let t = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        assert_eq!(format!("{t:?}"), "BootstrapToken(abcdef.<redacted>)");
    }

    #[test]
    fn certificate_key_is_64_hex() {
        let k = generate_certificate_key().unwrap();
        assert_eq!(k.len(), 64);
        assert!(k
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[test]
    fn token_characters_cover_the_alphabet() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.extend(random_string(16).unwrap().into_bytes());
        }
        assert_eq!(seen.len(), 36);
    }
}
