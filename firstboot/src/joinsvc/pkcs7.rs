//! PKCS#7 / CMS SignedData (RFC 5652, BER accepted through [`super::ber`]) as EC2 (`instance-identity/rsa2048`) and Azure (attested
//! data) sign identity documents: parsed with RustCrypto's `cms`, the signer found by issuer and
//! serial among the certificates the caller trusts or the message carries, the `messageDigest`
//! attribute checked against the content, and the RSA PKCS#1 v1.5 signature over the signed
//! attributes checked with aws-lc-rs. Whether the signer is trusted is the caller's decision.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, VerificationAlgorithm};
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::{Decode, Encode};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::Refused;

const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";

/// A verified message: its signed content and the signer's certificate (DER).
#[derive(Debug)]
pub struct Verified {
    /// The signed content (the identity document).
    pub content: Vec<u8>,
    /// The certificate whose key made the signature.
    pub signer: Vec<u8>,
}

/// Verifies the DER SignedData `message`. The content is the encapsulated one, else `detached`.
/// The signer's certificate is looked up first in `known`, then among the message's own.
pub fn verify(
    message: &[u8],
    detached: Option<&[u8]>,
    known: &[Vec<u8>],
) -> Result<Verified, Refused> {
    let bad = |what: &str, e: &dyn std::fmt::Display| Refused::new(format!("{what}: {e}"));
    let message = super::ber::to_der(message).map_err(Refused::new)?;
    let info = ContentInfo::from_der(&message).map_err(|e| bad("not PKCS#7", &e))?;
    if info.content_type.to_string() != SIGNED_DATA {
        return Err(Refused::new("PKCS#7 message is not SignedData"));
    }
    let data: SignedData = info
        .content
        .decode_as()
        .map_err(|e| bad("SignedData", &e))?;
    let content = match (&data.encap_content_info.econtent, detached) {
        (Some(any), _) => any.value().to_vec(),
        (None, Some(doc)) => doc.to_vec(),
        (None, None) => return Err(Refused::new("PKCS#7 message without content")),
    };
    let [signer_info] = data.signer_infos.0.as_slice() else {
        return Err(Refused::new("PKCS#7 message must have exactly one signer"));
    };
    let carried = carried_certificates(&data)?;
    let signer = find_signer(signer_info, known.iter().chain(carried.iter()))?;
    check_signature(signer_info, &content, &signer)?;
    Ok(Verified { content, signer })
}

/// The DER certificates the message carries.
fn carried_certificates(data: &SignedData) -> Result<Vec<Vec<u8>>, Refused> {
    let Some(set) = &data.certificates else {
        return Ok(Vec::new());
    };
    set.0
        .iter()
        .filter_map(|c| match c {
            CertificateChoices::Certificate(cert) => Some(cert.to_der()),
            CertificateChoices::Other(_) => None,
        })
        .collect::<Result<_, _>>()
        .map_err(|e| Refused::new(format!("PKCS#7 certificate: {e}")))
}

/// The certificate named by the signer's issuer and serial number.
fn find_signer<'a>(
    info: &SignerInfo,
    mut certs: impl Iterator<Item = &'a Vec<u8>>,
) -> Result<Vec<u8>, Refused> {
    let SignerIdentifier::IssuerAndSerialNumber(id) = &info.sid else {
        return Err(Refused::new(
            "PKCS#7 signer named by key id, not issuer and serial",
        ));
    };
    let issuer = id
        .issuer
        .to_der()
        .map_err(|e| Refused::new(e.to_string()))?;
    let serial = id.serial_number.as_bytes();
    certs
        .find(|der| {
            X509Certificate::from_der(der).is_ok_and(|(_, c)| {
                c.tbs_certificate.issuer.as_raw() == issuer.as_slice()
                    && c.tbs_certificate.raw_serial() == serial
            })
        })
        .cloned()
        .ok_or_else(|| {
            Refused::new("signed by an unknown key (no trusted certificate matches the signer)")
        })
}

/// The digest and RSA algorithm for the signer's digest algorithm.
fn algorithms(
    info: &SignerInfo,
) -> Result<
    (
        &'static digest::Algorithm,
        &'static dyn VerificationAlgorithm,
    ),
    Refused,
> {
    Ok(match info.digest_alg.oid.to_string().as_str() {
        "2.16.840.1.101.3.4.2.1" => (&digest::SHA256, &signature::RSA_PKCS1_2048_8192_SHA256),
        "2.16.840.1.101.3.4.2.2" => (&digest::SHA384, &signature::RSA_PKCS1_2048_8192_SHA384),
        "2.16.840.1.101.3.4.2.3" => (&digest::SHA512, &signature::RSA_PKCS1_2048_8192_SHA512),
        other => {
            return Err(Refused::new(format!(
                "PKCS#7 digest algorithm {other} not accepted (SHA-256/384/512 only)"
            )))
        }
    })
}

/// The signature over the signed attributes (whose `messageDigest` must be the content's
/// digest), or over the content itself when there are none.
fn check_signature(info: &SignerInfo, content: &[u8], signer: &[u8]) -> Result<(), Refused> {
    let (digest_alg, rsa) = algorithms(info)?;
    let signed = match &info.signed_attrs {
        Some(attrs) => {
            let found = attrs
                .iter()
                .find(|a| a.oid.to_string() == MESSAGE_DIGEST)
                .and_then(|a| a.values.get(0))
                .map(|v| v.value().to_vec())
                .ok_or_else(|| Refused::new("PKCS#7 signed attributes lack messageDigest"))?;
            if found != digest::digest(digest_alg, content).as_ref() {
                return Err(Refused::new(
                    "PKCS#7 content does not match its signed digest",
                ));
            }
            attrs.to_der().map_err(|e| Refused::new(e.to_string()))?
        }
        None => content.to_vec(),
    };
    let (_, cert) = X509Certificate::from_der(signer)
        .map_err(|e| Refused::new(format!("signer certificate: {e}")))?;
    let key = &cert.tbs_certificate.subject_pki.subject_public_key.data;
    signature::UnparsedPublicKey::new(rsa, key.as_ref())
        .verify(&signed, info.signature.as_bytes())
        .map_err(|_| Refused::new("PKCS#7 signature does not verify"))
}
