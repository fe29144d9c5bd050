//! Private keys: generation and the PEM formats kubeadm reads and writes.
//!
//! kubeadm (client-go `keyutil`) writes RSA keys as PKCS#1 `RSA PRIVATE KEY` and ECDSA keys as
//! SEC1 `EC PRIVATE KEY` (with the named curve); public keys as PKIX `PUBLIC KEY`. kiln writes
//! the same, and reads those and PKCS#8 `PRIVATE KEY`.

use std::str::FromStr;

use pkcs8::der::{Decode, Encode};
use rcgen::{KeyPair, PublicKeyData, RsaKeySize, SignatureAlgorithm};

use crate::{Error, Result};

/// Key algorithms, named as kubeadm v1beta4's `encryptionAlgorithm` (lower-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyType {
    /// RSA 2048 bits: kubeadm's default.
    #[default]
    Rsa2048,
    /// RSA 3072 bits.
    Rsa3072,
    /// RSA 4096 bits.
    Rsa4096,
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
}

impl KeyType {
    /// All key types, for help texts and tests.
    pub const ALL: [KeyType; 5] = [
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
    ];

    /// The name used on the command line, e.g. `rsa-2048`.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
        }
    }

    /// The signature algorithm certificates signed by such a key use (as Go's x509 picks it).
    fn signature_algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
            KeyType::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyType::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }

    fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyType {
    type Err = Error;

    /// Accepts kiln's names (`ecdsa-p256`) and kubeadm's (`ECDSA-P256`).
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.to_ascii_lowercase();
        KeyType::ALL
            .into_iter()
            .find(|k| k.name() == lower)
            .ok_or_else(|| {
                let names: Vec<_> = KeyType::ALL.iter().map(|k| k.name()).collect();
                Error::invalid(format!(
                    "unknown key type {s:?}; use one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// A private key with its algorithm. Its `Debug` output never shows key material.
pub struct PrivateKey {
    pair: KeyPair,
    key_type: KeyType,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({}, <redacted>)", self.key_type)
    }
}

impl PrivateKey {
    /// Generates a new key of `key_type` (AWS-LC, seeded from the OS).
    pub fn generate(key_type: KeyType) -> Result<Self> {
        let alg = key_type.signature_algorithm();
        let pair = match key_type {
            KeyType::Rsa2048 => KeyPair::generate_rsa_for(alg, RsaKeySize::_2048),
            KeyType::Rsa3072 => KeyPair::generate_rsa_for(alg, RsaKeySize::_3072),
            KeyType::Rsa4096 => KeyPair::generate_rsa_for(alg, RsaKeySize::_4096),
            KeyType::EcdsaP256 | KeyType::EcdsaP384 => KeyPair::generate_for(alg),
        }
        .map_err(|e| Error::crypto(format!("generating a {key_type} key"), e))?;
        Ok(PrivateKey { pair, key_type })
    }

    /// Reads a PEM private key: `RSA PRIVATE KEY`, `EC PRIVATE KEY` or PKCS#8 `PRIVATE KEY`.
    /// `what` names the key in errors, e.g. the file it came from.
    pub fn from_pem(pem_text: &str, what: &str) -> Result<Self> {
        let block = pem::parse(pem_text)
            .map_err(|e| Error::invalid(format!("{what}: not a PEM private key ({e})")))?;
        let pkcs8 = match block.tag() {
            "PRIVATE KEY" => block.contents().to_vec(),
            "RSA PRIVATE KEY" => wrap_pkcs1(block.contents(), what)?,
            "EC PRIVATE KEY" => wrap_sec1(block.contents(), what)?,
            other => {
                return Err(Error::invalid(format!(
                    "{what}: PEM block {other:?} is not a private key"
                )))
            }
        };
        let key_type = key_type_of_pkcs8(&pkcs8, what)?;
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8);
        let pair = KeyPair::from_pkcs8_der_and_sign_algo(&der, key_type.signature_algorithm())
            .map_err(|e| Error::invalid(format!("{what}: unusable {key_type} key ({e})")))?;
        Ok(PrivateKey { pair, key_type })
    }

    /// The key's algorithm.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The key in kubeadm's PEM format: PKCS#1 for RSA, SEC1 with the named curve for ECDSA.
    pub fn to_pem(&self) -> Result<String> {
        let info = pkcs8::PrivateKeyInfo::from_der(self.pair.serialized_der())
            .map_err(|e| Error::crypto("encoding a private key", e))?;
        if self.key_type.is_rsa() {
            return Ok(pem_string("RSA PRIVATE KEY", info.private_key.to_vec()));
        }
        let mut ec = sec1::EcPrivateKey::from_der(info.private_key)
            .map_err(|e| Error::crypto("encoding an EC private key", e))?;
        let curve = info
            .algorithm
            .parameters_oid()
            .map_err(|e| Error::crypto("encoding an EC private key", e))?;
        ec.parameters = Some(sec1::EcParameters::NamedCurve(curve));
        let der = ec
            .to_der()
            .map_err(|e| Error::crypto("encoding an EC private key", e))?;
        Ok(pem_string("EC PRIVATE KEY", der))
    }

    /// The public key as a PKIX `PUBLIC KEY` PEM (the format of kubeadm's `sa.pub`).
    pub fn public_key_pem(&self) -> String {
        pem_string("PUBLIC KEY", self.public_key_der())
    }

    /// The DER SubjectPublicKeyInfo of the public key.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.pair.subject_public_key_info()
    }

    /// The rcgen key pair, for signing.
    pub(crate) fn pair(&self) -> &KeyPair {
        &self.pair
    }
}

/// Generates `count` keys of `key_type`, spread over the machine's cores (RSA generation is the
/// slow part of every PKI command).
pub fn generate_keys(key_type: KeyType, count: usize) -> Result<Vec<PrivateKey>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(count.max(1));
    let per_thread = count.div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let n = per_thread.min(count.saturating_sub(t * per_thread));
                scope.spawn(move || {
                    (0..n)
                        .map(|_| PrivateKey::generate(key_type))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut keys = Vec::with_capacity(count);
        for worker in workers {
            let batch = worker
                .join()
                .map_err(|_| Error::crypto("generating keys", "a worker thread panicked"))?;
            keys.extend(batch?);
        }
        Ok(keys)
    })
}

/// PEM-encodes `der` under `tag` with LF line endings, as Go's encoding/pem does.
pub(crate) fn pem_string(tag: &str, der: Vec<u8>) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(tag, der), config)
}

const RSA_ENCRYPTION: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.3.132.0.34");

fn key_type_of_pkcs8(der: &[u8], what: &str) -> Result<KeyType> {
    let info = pkcs8::PrivateKeyInfo::from_der(der)
        .map_err(|e| Error::invalid(format!("{what}: malformed private key ({e})")))?;
    let unsupported = || {
        Error::invalid(format!(
            "{what}: unsupported key algorithm; kiln reads RSA and ECDSA P-256/P-384 keys"
        ))
    };
    if info.algorithm.oid == RSA_ENCRYPTION {
        return rsa_key_type(info.private_key, what);
    }
    if info.algorithm.oid != EC_PUBLIC_KEY {
        return Err(unsupported());
    }
    match info.algorithm.parameters_oid() {
        Ok(P256) => Ok(KeyType::EcdsaP256),
        Ok(P384) => Ok(KeyType::EcdsaP384),
        _ => Err(unsupported()),
    }
}

/// The RSA key type from the modulus size of a PKCS#1 RSAPrivateKey.
fn rsa_key_type(pkcs1: &[u8], what: &str) -> Result<KeyType> {
    let malformed = |e: String| Error::invalid(format!("{what}: malformed RSA key ({e})"));
    let key = pkcs1::RsaPrivateKey::from_der(pkcs1).map_err(|e| malformed(e.to_string()))?;
    match key.modulus.as_bytes().len() * 8 {
        2048 => Ok(KeyType::Rsa2048),
        3072 => Ok(KeyType::Rsa3072),
        4096 => Ok(KeyType::Rsa4096),
        bits => Err(Error::invalid(format!(
            "{what}: RSA key of {bits} bits; kubeadm uses 2048, 3072 or 4096"
        ))),
    }
}

/// Wraps a PKCS#1 RSAPrivateKey in a PKCS#8 PrivateKeyInfo.
fn wrap_pkcs1(pkcs1: &[u8], what: &str) -> Result<Vec<u8>> {
    let algorithm = pkcs8::AlgorithmIdentifierRef {
        oid: RSA_ENCRYPTION,
        parameters: Some(pkcs8::der::asn1::AnyRef::NULL),
    };
    encode_pkcs8(algorithm, pkcs1, what)
}

/// Wraps a SEC1 ECPrivateKey (which must name its curve) in a PKCS#8 PrivateKeyInfo.
fn wrap_sec1(sec1_der: &[u8], what: &str) -> Result<Vec<u8>> {
    let ec = sec1::EcPrivateKey::from_der(sec1_der)
        .map_err(|e| Error::invalid(format!("{what}: malformed EC key ({e})")))?;
    let curve = ec
        .parameters
        .and_then(|p| p.named_curve())
        .ok_or_else(|| Error::invalid(format!("{what}: EC key does not name its curve")))?;
    let algorithm = pkcs8::AlgorithmIdentifierRef {
        oid: EC_PUBLIC_KEY,
        parameters: Some(pkcs8::der::asn1::AnyRef::from(&curve)),
    };
    encode_pkcs8(algorithm, sec1_der, what)
}

fn encode_pkcs8(
    algorithm: pkcs8::AlgorithmIdentifierRef<'_>,
    private_key: &[u8],
    what: &str,
) -> Result<Vec<u8>> {
    pkcs8::PrivateKeyInfo::new(algorithm, private_key)
        .to_der()
        .map_err(|e| Error::invalid(format!("{what}: cannot re-encode key ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_type_names_round_trip_and_accept_kubeadm_spelling() {
        for k in KeyType::ALL {
            assert_eq!(k.name().parse::<KeyType>().unwrap(), k);
        }
        assert_eq!("ECDSA-P256".parse::<KeyType>().unwrap(), KeyType::EcdsaP256);
        let err = "dsa".parse::<KeyType>().unwrap_err().to_string();
        assert!(
            err.contains("rsa-2048") && err.contains("ecdsa-p256"),
            "{err}"
        );
    }

    #[test]
    fn pem_round_trip_in_kubeadm_formats() {
        for (k, tag) in [
            (KeyType::Rsa2048, "RSA PRIVATE KEY"),
            (KeyType::EcdsaP256, "EC PRIVATE KEY"),
            (KeyType::EcdsaP384, "EC PRIVATE KEY"),
        ] {
            let key = PrivateKey::generate(k).unwrap();
            let pem_text = key.to_pem().unwrap();
            assert!(
                pem_text.starts_with(&format!("-----BEGIN {tag}-----\n")),
                "{k}"
            );
            let back = PrivateKey::from_pem(&pem_text, "test").unwrap();
            assert_eq!(back.key_type(), k);
            assert_eq!(back.public_key_der(), key.public_key_der());
            assert_eq!(back.to_pem().unwrap(), pem_text);
        }
    }

    #[test]
    fn pkcs8_input_is_accepted() {
        let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
        let pkcs8_pem = pem_string("PRIVATE KEY", key.pair.serialized_der().to_vec());
        let back = PrivateKey::from_pem(&pkcs8_pem, "test").unwrap();
        assert_eq!(back.public_key_der(), key.public_key_der());
    }

    #[test]
    fn garbage_is_rejected_with_the_name() {
        let err = PrivateKey::from_pem("hello", "ca.key")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("ca.key: "), "{err}");
        let cert = pem_string("CERTIFICATE", vec![1, 2, 3]);
        let err = PrivateKey::from_pem(&cert, "ca.key")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a private key"), "{err}");
    }

    #[test]
    fn generate_keys_returns_exactly_count_distinct_keys() {
        for count in [0, 1, 3, 5] {
            let keys = generate_keys(KeyType::EcdsaP256, count).unwrap();
            assert_eq!(keys.len(), count);
            let mut pubs: Vec<_> = keys.iter().map(|k| k.public_key_der()).collect();
            pubs.dedup();
            assert_eq!(pubs.len(), count);
        }
    }

    #[test]
    fn debug_is_redacted() {
        let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
        assert_eq!(format!("{key:?}"), "PrivateKey(ecdsa-p256, <redacted>)");
    }
}
