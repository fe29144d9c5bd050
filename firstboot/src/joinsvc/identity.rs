//! What a joining node sends ([`Proof`]: its platform's signed identity, as the metadata service
//! gave it) and what the service learns from it once the signature checks ([`Claims`](super::claims::Claims)).
//!
//! - EC2: the instance identity document and its `rsa2048` PKCS#7 signature, checked against
//!   the AWS region certificates the service is configured with.
//! - GCE: the instance identity token (`format=full`), an RS256 JWT checked against Google's keys,
//!   with `aud` the service URL and `exp`/`iat` checked within the tolerated clock skew.
//! - Azure: the attested document (PKCS#7) with a nonce this service issued ([`super::azure`]).

use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::claims::Claims;
use super::Refused;

/// The body of `POST /join`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "platform", rename_all = "lowercase", deny_unknown_fields)]
pub enum Proof {
    /// EC2: `/latest/dynamic/instance-identity/document` and `.../rsa2048` (base64 PKCS#7).
    Ec2 {
        /// The identity document (JSON text).
        document: String,
        /// The base64 PKCS#7 signature.
        signature: String,
    },
    /// GCE: `.../service-accounts/default/identity?audience=URL&format=full`.
    Gce {
        /// The JWT.
        token: String,
    },
    /// Azure: `/metadata/attested/document?nonce=N`'s `signature` (base64 PKCS#7).
    Azure {
        /// The base64 PKCS#7 signature.
        signature: String,
    },
}

/// The keys identities are checked with.
#[derive(Debug, Default, Clone)]
pub struct Keys {
    /// AWS region certificates (DER).
    pub aws: Vec<Vec<u8>>,
    /// Google's RSA keys by key id: (modulus, exponent), big-endian.
    pub google: Vec<super::jwt::RsaKey>,
    /// Azure CA certificates (DER) the attested-data signer must chain to.
    pub azure: Vec<Vec<u8>>,
}

/// What a proof is checked against: the keys, the service URL (GCE `aud`), the nonces the
/// service issued (Azure), the time and the tolerated clock skew.
pub struct Check<'a> {
    /// The platforms' keys.
    pub keys: &'a Keys,
    /// The service URL.
    pub audience: &'a str,
    /// Nonces issued and not yet used.
    pub nonces: &'a std::sync::Mutex<super::azure::Nonces>,
    /// Now.
    pub now: OffsetDateTime,
    /// Tolerated clock skew.
    pub skew: Duration,
}

/// Checks `proof` and returns its claims.
pub fn verify(proof: &Proof, c: &Check<'_>) -> Result<Claims, Refused> {
    match proof {
        Proof::Ec2 {
            document,
            signature,
        } => ec2(document, signature, c.keys),
        Proof::Gce { token } => {
            super::jwt::verify_gce(token, &c.keys.google, c.audience, c.now, c.skew)
        }
        Proof::Azure { signature } => {
            super::azure::verify(signature, &c.keys.azure, c.nonces, c.now, c.skew)
        }
    }
}

/// An EC2 document whose PKCS#7 signature is by one of the AWS certificates.
fn ec2(document: &str, signature: &str, keys: &Keys) -> Result<Claims, Refused> {
    let clean: String = signature.split_whitespace().collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(clean.as_bytes())
        .map_err(|_| Refused::new("EC2 signature is not base64"))?;
    let verified = super::pkcs7::verify(&der, Some(document.as_bytes()), &keys.aws)?;
    if !keys.aws.contains(&verified.signer) {
        return Err(Refused::new(
            "signed by an unknown key (not an AWS certificate configured)",
        ));
    }
    ec2_claims(&verified.content)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ec2Document {
    instance_id: String,
    account_id: String,
    region: String,
    availability_zone: Option<String>,
    pending_time: Option<String>,
}

/// The claims of a signed EC2 document (`pendingTime` is the launch time).
fn ec2_claims(content: &[u8]) -> Result<Claims, Refused> {
    let doc: Ec2Document = serde_json::from_slice(content).map_err(|e| {
        Refused::new(format!(
            "EC2 document: {}",
            kiln_core::redact::decode_error(&e.to_string())
        ))
    })?;
    let launched = doc
        .pending_time
        .as_deref()
        .map(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339))
        .transpose()
        .map_err(|_| Refused::new("EC2 document: pendingTime is not RFC 3339"))?;
    Ok(Claims {
        platform: "ec2".into(),
        name: Some(doc.instance_id.clone()),
        instance_id: doc.instance_id,
        account: doc.account_id,
        region: Some(doc.region),
        zone: doc.availability_zone,
        launched,
    })
}

/// Loads the PEM certificates of `path` as DER.
pub fn load_certificates(path: &std::path::Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let certs: Vec<Vec<u8>> = pem::parse_many(&text)
        .map_err(|e| anyhow::anyhow!("{}: not PEM ({e})", path.display()))?
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents())
        .collect();
    anyhow::ensure!(
        !certs.is_empty(),
        "{}: no CERTIFICATE in it",
        path.display()
    );
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec2_documents_give_account_region_and_launch_time() {
        let doc = br#"{"instanceId":"i-0abc","accountId":"123456789012","region":"eu-west-1",
            "availabilityZone":"eu-west-1b","pendingTime":"2026-11-30T10:00:00Z"}"#;
        let c = ec2_claims(doc).unwrap();
        assert_eq!(
            (c.account.as_str(), c.instance_id.as_str()),
            ("123456789012", "i-0abc")
        );
        assert_eq!(c.launched.unwrap().unix_timestamp(), 1796032800);
        assert!(ec2_claims(b"{}")
            .unwrap_err()
            .reason
            .contains("EC2 document"));
        let p: Proof = serde_json::from_str(r#"{"platform":"gce","token":"x"}"#).unwrap();
        assert!(matches!(p, Proof::Gce { .. }));
        assert!(serde_json::from_str::<Proof>(r#"{"platform":"aws"}"#).is_err());
    }
}
