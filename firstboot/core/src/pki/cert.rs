//! Certificates as kubeadm makes them (`pkiutil.NewSelfSignedCACert`, `NewSignedCert`), the CA
//! public key pin, and loading an existing CA from disk.

use std::net::IpAddr;
use std::path::Path;

use aws_lc_rs::digest;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::key::{pem_string, PrivateKey};
use crate::{Error, Result};

/// CA validity: kubeadm's `CertificateValidityPeriod * 10` (10 × 365 days).
pub const CA_VALIDITY: Duration = Duration::days(3650);
/// Leaf validity: kubeadm's `CertificateValidityPeriod` (365 days).
pub const LEAF_VALIDITY: Duration = Duration::days(365);
/// How far a new CA's NotBefore is back-dated to tolerate clock skew (kubeadm's
/// `CertificateBackdate`).
pub const BACKDATE: Duration = Duration::minutes(5);

/// Extended key usages a leaf certificate carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// TLS server authentication.
    Server,
    /// TLS client authentication.
    Client,
}

/// What a leaf certificate says: subject, alternative names and extended key usages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertSpec {
    /// Subject common name.
    pub common_name: String,
    /// Subject organizations (Kubernetes groups).
    pub organizations: Vec<String>,
    /// DNS subject alternative names, deduplicated in order.
    pub dns_names: Vec<String>,
    /// IP subject alternative names, deduplicated in order.
    pub ips: Vec<IpAddr>,
    /// Extended key usages.
    pub usages: Vec<Usage>,
}

/// A certificate authority: its certificate and private key.
#[derive(Debug)]
pub struct Ca {
    cert_der: Vec<u8>,
    key: PrivateKey,
}

impl Ca {
    /// Makes a self-signed CA named `common_name`, valid from `now - BACKDATE` for
    /// [`CA_VALIDITY`], with kubeadm's template: CN and a DNS SAN of the same name, key usages
    /// digitalSignature, keyEncipherment, keyCertSign; CA:TRUE.
    pub fn generate(common_name: &str, key: PrivateKey, now: OffsetDateTime) -> Result<Self> {
        let now = whole_seconds(now);
        let mut params = base_params(common_name, &[])?;
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_VALIDITY;
        params.subject_alt_names = vec![dns_san(common_name)?];
        params.key_usages.push(KeyUsagePurpose::KeyCertSign);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_identifier_method = KeyIdMethod::PreSpecified(go_key_id(&key)?);
        let cert = params
            .self_signed(key.pair())
            .map_err(|e| Error::crypto(format!("signing the {common_name} CA"), e))?;
        Ok(Ca {
            cert_der: cert.der().to_vec(),
            key,
        })
    }

    /// Loads a CA from a PEM certificate and its PEM key, checking that the certificate is a CA
    /// and that the key belongs to it.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self> {
        let cert_text = read_text(cert_path)?;
        let key = PrivateKey::from_pem(&read_text(key_path)?, &key_path.display().to_string())?;
        let cert_der = cert_der_from_pem(&cert_text, &cert_path.display().to_string())?;
        let (_, x509) = X509Certificate::from_der(&cert_der).map_err(|e| {
            Error::invalid(format!(
                "{}: not a valid X.509 certificate ({e})",
                cert_path.display()
            ))
        })?;
        if !x509.is_ca() {
            return Err(Error::invalid(format!(
                "{}: certificate is not a CA (basicConstraints CA:TRUE missing)",
                cert_path.display()
            )));
        }
        if x509.tbs_certificate.subject_pki.raw != key.public_key_der().as_slice() {
            return Err(Error::invalid(format!(
                "{} does not match {}: the key belongs to another certificate",
                key_path.display(),
                cert_path.display()
            )));
        }
        Ok(Ca { cert_der, key })
    }

    /// The CA certificate as PEM.
    pub fn cert_pem(&self) -> String {
        pem_string("CERTIFICATE", self.cert_der.clone())
    }

    /// The CA certificate as DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA's private key.
    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// The `sha256:<hex>` pin of this CA, as `--discovery-token-ca-cert-hash` takes it.
    pub fn hash(&self) -> Result<String> {
        ca_hash(&self.cert_der)
    }

    /// Signs a leaf certificate for `key` as kubeadm (1.31+) does: NotBefore `now - BACKDATE`,
    /// NotAfter `now + validity`, key usages digitalSignature and keyEncipherment, CA:FALSE,
    /// the spec's EKUs, DNS SANs sorted and deduplicated, IP SANs deduplicated in order
    /// (`RemoveDuplicateAltNames`). Returns the PEM.
    pub fn issue(
        &self,
        spec: &CertSpec,
        key: &PrivateKey,
        now: OffsetDateTime,
        validity: Duration,
    ) -> Result<String> {
        let mut params = base_params(&spec.common_name, &spec.organizations)?;
        params.not_before = whole_seconds(now) - BACKDATE;
        params.not_after = whole_seconds(now) + validity;
        params.subject_alt_names = spec_sans(spec)?;
        params.extended_key_usages = spec
            .usages
            .iter()
            .map(|u| match u {
                Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
                Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
            })
            .collect();
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        let issuer = Issuer::from_ca_cert_der(&self.cert_der.as_slice().into(), self.key.pair())
            .map_err(|e| Error::crypto("reading the CA certificate", e))?;
        let cert = params
            .signed_by(key.pair(), &issuer)
            .map_err(|e| Error::crypto(format!("signing {}", spec.common_name), e))?;
        Ok(cert.pem().replace("\r\n", "\n"))
    }
}

/// `sha256:` + hex SHA-256 of the certificate's DER SubjectPublicKeyInfo: the value of
/// `--discovery-token-ca-cert-hash`, equal to kubeadm's openssl pipeline
/// (`openssl x509 -pubkey | openssl rsa -pubin -outform der | openssl dgst -sha256`).
pub fn ca_hash(cert_der: &[u8]) -> Result<String> {
    let (_, x509) = X509Certificate::from_der(cert_der)
        .map_err(|e| Error::invalid(format!("not a valid X.509 certificate ({e})")))?;
    let spki = x509.tbs_certificate.subject_pki.raw;
    Ok(format!(
        "sha256:{}",
        hex::encode(digest::digest(&digest::SHA256, spki))
    ))
}

/// The DER of the first `CERTIFICATE` block in `pem_text`; `what` names the source in errors.
pub fn cert_der_from_pem(pem_text: &str, what: &str) -> Result<Vec<u8>> {
    pem::parse_many(pem_text)
        .map_err(|e| Error::invalid(format!("{what}: not a PEM certificate ({e})")))?
        .into_iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents())
        .ok_or_else(|| {
            Error::invalid(format!(
                "{what}: not a certificate, no CERTIFICATE block found"
            ))
        })
}

/// Reads a whole file as text, with the path in the error.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

fn base_params(cn: &str, orgs: &[String]) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    // Go's pkix.Name puts O before CN.
    for org in orgs {
        dn.push(DnType::OrganizationName, org.as_str());
    }
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.serial_number = Some(random_serial()?);
    // kubeadm (through 1.34) sets keyEncipherment for every key type, ECDSA included.
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    Ok(params)
}

fn spec_sans(spec: &CertSpec) -> Result<Vec<SanType>> {
    let mut dns_names = spec.dns_names.clone();
    dns_names.sort();
    let mut sans = Vec::new();
    for name in &dns_names {
        let san = dns_san(name)?;
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    for ip in &spec.ips {
        let san = SanType::IpAddress(*ip);
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    Ok(sans)
}

fn dns_san(name: &str) -> Result<SanType> {
    let ia5 = name
        .try_into()
        .map_err(|_| Error::invalid(format!("{name:?} is not a valid DNS name")))?;
    Ok(SanType::DnsName(ia5))
}

/// A serial in [1, 2^63), as kubeadm draws it.
fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| Error::crypto("drawing a serial number", e))?;
    bytes[0] &= 0x7f;
    if bytes == [0; 8] {
        bytes[7] = 1;
    }
    Ok(SerialNumber::from_slice(&bytes))
}

/// Go's subject key identifier: SHA-1 of the subjectPublicKey bit string (RFC 5280 method 1).
fn go_key_id(key: &PrivateKey) -> Result<Vec<u8>> {
    let spki_der = key.public_key_der();
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki_der)
        .map_err(|e| Error::crypto("reading a public key", e))?;
    let bits = &spki.subject_public_key.data;
    Ok(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, bits)
        .as_ref()
        .to_vec())
}

fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::KeyType;

    fn parse(pem_text: &str) -> Vec<u8> {
        cert_der_from_pem(pem_text, "test").unwrap()
    }

    #[test]
    fn ca_is_backdated_ten_years_and_self_consistent() {
        let now = OffsetDateTime::now_utc();
        let ca = Ca::generate(
            "kubernetes",
            PrivateKey::generate(KeyType::EcdsaP256).unwrap(),
            now,
        )
        .unwrap();
        let (_, x) = X509Certificate::from_der(ca.cert_der()).unwrap();
        assert!(x.is_ca());
        assert_eq!(x.subject().to_string(), "CN=kubernetes");
        let nb = x.validity().not_before.to_datetime();
        let na = x.validity().not_after.to_datetime();
        assert_eq!(whole_seconds(now) - nb, BACKDATE);
        assert_eq!(na - whole_seconds(now), CA_VALIDITY);
        assert!(ca.hash().unwrap().starts_with("sha256:"));
        assert_eq!(ca.hash().unwrap().len(), 7 + 64);
    }

    #[test]
    fn leaf_has_spec_fields_and_dedups_sans() {
        let now = OffsetDateTime::now_utc();
        let ca = Ca::generate(
            "etcd-ca",
            PrivateKey::generate(KeyType::EcdsaP256).unwrap(),
            now,
        )
        .unwrap();
        let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
        let spec = CertSpec {
            common_name: "etcd-1".into(),
            organizations: vec!["system:masters".into()],
            dns_names: vec!["etcd-1".into(), "localhost".into(), "etcd-1".into()],
            ips: vec![
                "10.0.0.1".parse().unwrap(),
                "127.0.0.1".parse().unwrap(),
                "10.0.0.1".parse().unwrap(),
            ],
            usages: vec![Usage::Server, Usage::Client],
        };
        let der = parse(&ca.issue(&spec, &key, now, LEAF_VALIDITY).unwrap());
        let (_, x) = X509Certificate::from_der(&der).unwrap();
        assert!(!x.is_ca());
        assert_eq!(x.subject().to_string(), "O=system:masters, CN=etcd-1");
        let san = x.subject_alternative_name().unwrap().unwrap().value;
        assert_eq!(san.general_names.len(), 4);
        let eku = x.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        assert_eq!(
            x.validity().not_before.to_datetime(),
            whole_seconds(now) - BACKDATE
        );
    }

    #[test]
    fn ca_hash_rejects_garbage() {
        assert!(ca_hash(b"nope").is_err());
        assert!(cert_der_from_pem("nope", "x.crt")
            .unwrap_err()
            .to_string()
            .starts_with("x.crt: "));
    }
}
