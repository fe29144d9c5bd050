//! A code-signing pair given to `kiln build` (`--signing-key`, `--certificate`): checked before
//! any long work that the key parses, belongs to the certificate, and that the certificate may
//! sign now. Errors name the files, never the key material.

use std::path::Path;

use aws_lc_rs::digest;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::cert::{cert_der_from_pem, read_text};
use super::key::PrivateKey;
use crate::{Error, Result};

/// What a checked signing pair tells about its certificate (nothing about its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningCert {
    /// Lower-case hex SHA-256 of the certificate's DER (`openssl x509 -fingerprint -sha256`
    /// without the colons): the fingerprint manifests record.
    pub sha256: String,
    /// The subject, as RFC 4514 text.
    pub subject: String,
}

/// Checks the PEM private key at `key_path` against the PEM certificate at `cert_path` at time
/// `now`: both readable and well-formed, the key's public half the certificate's, the
/// certificate valid at `now` and, if it has a keyUsage extension, allowed digitalSignature.
pub fn check_signing_pair(
    cert_path: &Path,
    key_path: &Path,
    now: OffsetDateTime,
) -> Result<SigningCert> {
    let key_name = key_path.display().to_string();
    let cert_name = cert_path.display().to_string();
    let key = PrivateKey::from_pem(&read_text(key_path)?, &key_name)?;
    let der = cert_der_from_pem(&read_text(cert_path)?, &cert_name)?;
    let (_, x509) = X509Certificate::from_der(&der)
        .map_err(|e| Error::invalid(format!("{cert_name}: not a valid X.509 certificate ({e})")))?;
    if x509.tbs_certificate.subject_pki.raw != key.public_key_der().as_slice() {
        return Err(Error::invalid(format!(
            "{key_name} does not match {cert_name}: the key belongs to another certificate"
        )));
    }
    check_may_sign(&x509, &cert_name, now)?;
    Ok(SigningCert {
        sha256: hex::encode(digest::digest(&digest::SHA256, &der)),
        subject: x509.subject().to_string(),
    })
}

/// Refuses a certificate whose keyUsage excludes signing, or that is not valid at `now`.
fn check_may_sign(x509: &X509Certificate<'_>, name: &str, now: OffsetDateTime) -> Result<()> {
    let usage = x509
        .key_usage()
        .map_err(|e| Error::invalid(format!("{name}: unreadable keyUsage extension ({e})")))?;
    if usage.is_some_and(|u| !u.value.digital_signature()) {
        return Err(Error::invalid(format!(
            "{name}: the certificate cannot sign: its keyUsage lacks digitalSignature"
        )));
    }
    let validity = x509.validity();
    let (from, until) = (
        validity.not_before.to_datetime(),
        validity.not_after.to_datetime(),
    );
    if now < from || now > until {
        return Err(Error::invalid(format!(
            "{name}: the certificate is not valid now (valid from {from} until {until})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, KeyUsagePurpose};

    fn pair(usages: Vec<KeyUsagePurpose>, days: i64) -> (tempfile::TempDir, KeyPair) {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["signer".into()]).unwrap();
        params.key_usages = usages;
        params.not_before = OffsetDateTime::now_utc() - time::Duration::days(1);
        params.not_after = OffsetDateTime::now_utc() + time::Duration::days(days);
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join("c.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("k.pem"), key.serialize_pem()).unwrap();
        (dir, key)
    }

    fn check(dir: &Path) -> Result<SigningCert> {
        check_signing_pair(
            &dir.join("c.pem"),
            &dir.join("k.pem"),
            OffsetDateTime::now_utc(),
        )
    }

    #[test]
    fn a_matching_pair_gives_the_der_fingerprint() {
        let (dir, _) = pair(vec![KeyUsagePurpose::DigitalSignature], 30);
        let signing = check(dir.path()).unwrap();
        let pem = std::fs::read_to_string(dir.path().join("c.pem")).unwrap();
        let der = cert_der_from_pem(&pem, "c").unwrap();
        assert_eq!(
            signing.sha256,
            hex::encode(digest::digest(&digest::SHA256, &der))
        );
        // No keyUsage at all may sign too.
        let (dir, _) = pair(vec![], 30);
        check(dir.path()).unwrap();
    }

    #[test]
    fn bad_pairs_are_named_without_key_material() {
        let (dir, _) = pair(vec![KeyUsagePurpose::KeyCertSign], 30);
        let err = check(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("cannot sign") && err.contains("c.pem"),
            "{err}"
        );
        let (dir, _) = pair(vec![], -2);
        let err = check(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not valid now"), "{err}");
        let (dir, _) = pair(vec![], 30);
        let (other, _) = pair(vec![], 30);
        std::fs::copy(other.path().join("k.pem"), dir.path().join("k.pem")).unwrap();
        let err = check(dir.path()).unwrap_err().to_string();
        assert!(err.contains("does not match"), "{err}");
        let key = std::fs::read_to_string(dir.path().join("k.pem")).unwrap();
        let body = key.lines().nth(1).unwrap();
        assert!(!err.contains(body), "{err}");
        std::fs::remove_file(dir.path().join("k.pem")).unwrap();
        let err = check(dir.path()).unwrap_err().to_string();
        assert!(err.contains("k.pem"), "{err}");
    }
}
