//! Azure attested data (`/metadata/attested/document?nonce=N`): a PKCS#7 SignedData carrying
//! its signing certificate, whose content is JSON with the nonce, `vmId`, `subscriptionId` and a
//! `timeStamp` (`createdOn`/`expiresOn`, `MM/DD/YY hh:mm:ss -0000`). Checked here: the signature
//! ([`super::pkcs7`]), the signer's certificate chaining (rustls' WebPKI verifier) to the Azure
//! CA certificates the service is configured with and naming `metadata.azure.com`, the validity
//! window within the clock skew, and a nonce this service issued, unused and recent ([`Nonces`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde::Deserialize;
use time::OffsetDateTime;

use super::claims::Claims;
use super::Refused;

/// The name Azure's attested-data signing certificates carry.
const SIGNER_NAME: &str = "metadata.azure.com";
/// How long an issued nonce may be used.
const NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Nonces outstanding at once; past this the oldest are forgotten.
const MAX_NONCES: usize = 10_000;

/// Nonces this service issued and not yet used.
#[derive(Default)]
pub struct Nonces {
    issued: HashMap<String, Instant>,
}

impl Nonces {
    /// A new nonce: 32 hex characters (Azure takes up to 32 alphanumerics).
    pub fn issue(&mut self, now: Instant) -> Result<String, Refused> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| Refused::new(format!("no randomness: {e}")))?;
        self.issued
            .retain(|_, at| now.duration_since(*at) < NONCE_LIFETIME);
        if self.issued.len() >= MAX_NONCES {
            let oldest = self
                .issued
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(n, _)| n.clone());
            oldest.map(|n| self.issued.remove(&n));
        }
        let nonce = hex::encode(bytes);
        self.issued.insert(nonce.clone(), now);
        Ok(nonce)
    }

    /// Uses up `nonce`: it must have been issued here less than [`NONCE_LIFETIME`] ago.
    pub fn take(&mut self, nonce: &str, now: Instant) -> Result<(), Refused> {
        match self.issued.remove(nonce) {
            Some(at) if now.duration_since(at) < NONCE_LIFETIME => Ok(()),
            Some(_) => Err(Refused::new("Azure nonce expired")),
            None => Err(Refused::new(
                "Azure nonce not issued here or already used (replay)",
            )),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    nonce: String,
    vm_id: String,
    subscription_id: String,
    time_stamp: TimeStamp,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimeStamp {
    created_on: String,
    expires_on: String,
}

/// Checks the base64 PKCS#7 `signature` against the Azure CA certificates `roots`.
pub fn verify(
    signature: &str,
    roots: &[Vec<u8>],
    nonces: &std::sync::Mutex<Nonces>,
    now: OffsetDateTime,
    skew: Duration,
) -> Result<Claims, Refused> {
    let clean: String = signature.split_whitespace().collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(clean.as_bytes())
        .map_err(|_| Refused::new("Azure signature is not base64"))?;
    let verified = super::pkcs7::verify(&der, None, &[])?;
    check_signer(&verified.signer, roots, now)?;
    let doc: Document = serde_json::from_slice(&verified.content).map_err(|e| {
        Refused::new(format!(
            "Azure document: {}",
            kiln_core::redact::decode_error(&e.to_string())
        ))
    })?;
    let (created, expires) = (
        azure_time(&doc.time_stamp.created_on)?,
        azure_time(&doc.time_stamp.expires_on)?,
    );
    if expires + skew < now {
        return Err(Refused::new("Azure document expired"));
    }
    if created - skew > now {
        return Err(Refused::new("Azure document created in the future"));
    }
    nonces
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take(&doc.nonce, Instant::now())?;
    Ok(Claims {
        platform: "azure".into(),
        name: Some(doc.vm_id.clone()),
        instance_id: doc.vm_id,
        account: doc.subscription_id,
        region: None,
        zone: None,
        launched: None,
    })
}

/// The signer's certificate must chain to `roots` and be valid for `metadata.azure.com`.
fn check_signer(signer: &[u8], roots: &[Vec<u8>], now: OffsetDateTime) -> Result<(), Refused> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store
            .add(CertificateDer::from(root.clone()))
            .map_err(|e| Refused::new(format!("azure_certificates: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
            .build()
            .map_err(|e| Refused::new(format!("azure_certificates: {e}")))?;
    let name = ServerName::try_from(SIGNER_NAME).map_err(|e| Refused::new(e.to_string()))?;
    let when = UnixTime::since_unix_epoch(Duration::from_secs(now.unix_timestamp().max(0) as u64));
    verifier
        .verify_server_cert(
            &CertificateDer::from(signer.to_vec()),
            &[],
            &name,
            &[],
            when,
        )
        .map(drop)
        .map_err(|e| {
            Refused::new(format!(
                "signed by an unknown key (Azure signer certificate: {e})"
            ))
        })
}

/// `MM/DD/YY hh:mm:ss -0000` (UTC) as Azure writes its time stamps.
fn azure_time(text: &str) -> Result<OffsetDateTime, Refused> {
    let bad = || {
        Refused::new(format!(
            "Azure time stamp {text:?} is not MM/DD/YY hh:mm:ss -0000"
        ))
    };
    let (date, rest) = text.split_once(' ').ok_or_else(bad)?;
    let clock = rest
        .strip_suffix(" -0000")
        .or_else(|| rest.strip_suffix(" +0000"))
        .ok_or_else(bad)?;
    let num = |s: &str| s.parse::<u8>().map_err(|_| bad());
    let d: Vec<&str> = date.split('/').collect();
    let c: Vec<&str> = clock.split(':').collect();
    let ([m, day, y], [h, min, s]) = (d.as_slice(), c.as_slice()) else {
        return Err(bad());
    };
    let month = time::Month::try_from(num(m)?).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(2000 + i32::from(num(y)?), month, num(day)?)
        .map_err(|_| bad())?;
    let t = time::Time::from_hms(num(h)?, num(min)?, num(s)?).map_err(|_| bad())?;
    Ok(time::PrimitiveDateTime::new(date, t).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_time_stamps_and_nonces() {
        let t = azure_time("11/30/26 10:00:00 -0000").unwrap();
        assert_eq!(t.unix_timestamp(), 1796032800);
        assert!(azure_time("2026-11-30T10:00:00Z").is_err());
        let mut nonces = Nonces::default();
        let now = Instant::now();
        let n = nonces.issue(now).unwrap();
        assert_eq!(n.len(), 32);
        assert!(nonces
            .take("0123", now)
            .unwrap_err()
            .reason
            .contains("not issued"));
        nonces.take(&n, now).unwrap();
        assert!(nonces.take(&n, now).unwrap_err().reason.contains("replay"));
        let old = nonces.issue(now).unwrap();
        let later = now + NONCE_LIFETIME + Duration::from_secs(1);
        assert!(nonces
            .take(&old, later)
            .unwrap_err()
            .reason
            .contains("expired"));
    }
}
