//! GCE instance identity tokens: RS256 JWTs (RFC 7519) signed by Google. Only `alg = RS256` with
//! a `kid` from the configured keys is accepted (no `none`, no HMAC: the algorithm never comes
//! from the token alone); then `iss`, `aud`, `exp` and `iat` (within the clock skew), and the
//! `google.compute_engine` claims of `format=full`. Keys: a JWKS file as Google publishes it.

use std::time::Duration;

use aws_lc_rs::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use base64::Engine;
use serde::Deserialize;
use time::OffsetDateTime;

use super::claims::Claims;
use super::Refused;

/// Issuers Google uses for identity tokens.
const ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

/// One of Google's RSA signing keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaKey {
    /// Key id (the JWT header's `kid`).
    pub kid: String,
    /// Modulus, big-endian.
    pub n: Vec<u8>,
    /// Public exponent, big-endian.
    pub e: Vec<u8>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Payload {
    iss: String,
    aud: String,
    exp: i64,
    iat: i64,
    google: Option<Google>,
}

#[derive(Deserialize)]
struct Google {
    compute_engine: ComputeEngine,
}

#[derive(Deserialize)]
struct ComputeEngine {
    project_id: String,
    instance_id: String,
    instance_name: Option<String>,
    zone: Option<String>,
    instance_creation_timestamp: Option<i64>,
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>, Refused> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Refused::new(format!("GCE token: {what} is not base64url")))
}

fn json<T: for<'a> Deserialize<'a>>(bytes: &[u8], what: &str) -> Result<T, Refused> {
    serde_json::from_slice(bytes).map_err(|e| {
        Refused::new(format!(
            "GCE token {what}: {}",
            kiln_core::redact::decode_error(&e.to_string())
        ))
    })
}

/// Verifies `token` against `keys` (kid, n, e) and returns the instance's claims.
pub fn verify_gce(
    token: &str,
    keys: &[RsaKey],
    audience: &str,
    now: OffsetDateTime,
    skew: Duration,
) -> Result<Claims, Refused> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refused::new("GCE token is not a JWT (three parts)"));
    };
    let header: Header = json(&b64(h, "header")?, "header")?;
    if header.alg != "RS256" {
        return Err(Refused::new(format!(
            "GCE token: alg {:?} is not RS256",
            header.alg
        )));
    }
    let key = keys
        .iter()
        .find(|k| Some(&k.kid) == header.kid.as_ref())
        .ok_or_else(|| {
            Refused::new("GCE token signed by an unknown key (kid not in google_keys)")
        })?;
    RsaPublicKeyComponents {
        n: &key.n,
        e: &key.e,
    }
    .verify(
        &RSA_PKCS1_2048_8192_SHA256,
        format!("{h}.{p}").as_bytes(),
        &b64(s, "signature")?,
    )
    .map_err(|_| Refused::new("GCE token signature does not verify"))?;
    let payload: Payload = json(&b64(p, "payload")?, "payload")?;
    check_times(&payload, audience, now, skew)?;
    let ce = payload
        .google
        .ok_or_else(|| {
            Refused::new("GCE token has no google.compute_engine claims (ask with format=full)")
        })?
        .compute_engine;
    Ok(claims(ce))
}

fn check_times(
    p: &Payload,
    audience: &str,
    now: OffsetDateTime,
    skew: Duration,
) -> Result<(), Refused> {
    let (now, skew) = (now.unix_timestamp(), skew.as_secs() as i64);
    if !ISSUERS.contains(&p.iss.as_str()) {
        return Err(Refused::new(format!(
            "GCE token: issuer {:?} is not Google",
            p.iss
        )));
    }
    if p.aud != audience {
        return Err(Refused::new(format!(
            "GCE token: wrong audience {:?} (want {audience:?})",
            p.aud
        )));
    }
    if p.exp + skew < now {
        return Err(Refused::new(format!(
            "GCE token expired {}s ago",
            now - p.exp
        )));
    }
    if p.iat - skew > now {
        return Err(Refused::new(format!(
            "GCE token issued {}s in the future",
            p.iat - now
        )));
    }
    Ok(())
}

fn claims(ce: ComputeEngine) -> Claims {
    let zone = ce.zone;
    Claims {
        platform: "gce".into(),
        instance_id: ce.instance_id,
        account: ce.project_id,
        region: zone
            .as_deref()
            .and_then(|z| z.rsplit_once('-'))
            .map(|(r, _)| r.to_owned()),
        zone,
        launched: ce
            .instance_creation_timestamp
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
        name: ce.instance_name,
    }
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kid: String,
    kty: String,
    n: String,
    e: String,
}

/// The RSA keys of a JWKS document (`{"keys": [{"kid", "kty": "RSA", "n", "e"}]}`).
pub fn parse_jwks(text: &str) -> anyhow::Result<Vec<RsaKey>> {
    let jwks: Jwks = serde_json::from_str(text)?;
    let dec = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s);
    let keys: Vec<_> = jwks
        .keys
        .into_iter()
        .filter(|k| k.kty == "RSA")
        .map(|k| {
            Ok(RsaKey {
                kid: k.kid,
                n: dec(&k.n)?,
                e: dec(&k.e)?,
            })
        })
        .collect::<Result<_, base64::DecodeError>>()?;
    anyhow::ensure!(!keys.is_empty(), "no RSA key in it");
    Ok(keys)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_lc_rs::rsa::KeyPair;
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};

    /// A test RSA key and its (kid, n, e).
    pub(crate) fn test_key() -> (KeyPair, RsaKey) {
        let pair = KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let c: RsaPublicKeyComponents<Vec<u8>> = pair.public_key().into();
        (
            pair,
            RsaKey {
                kid: "k1".into(),
                n: c.n,
                e: c.e,
            },
        )
    }

    /// A JWT signed by `pair` with `payload`.
    pub(crate) fn sign(pair: &KeyPair, kid: &str, payload: &serde_json::Value) -> String {
        let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let header = serde_json::json!({"alg": "RS256", "kid": kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            enc(header.to_string().as_bytes()),
            enc(payload.to_string().as_bytes())
        );
        let mut sig = vec![0; pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        pair.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
            .unwrap();
        format!("{input}.{}", enc(&sig))
    }

    fn payload(aud: &str, exp_in: i64) -> serde_json::Value {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        serde_json::json!({"iss": "https://accounts.google.com", "aud": aud, "iat": now - 10,
            "exp": now + exp_in, "google": {"compute_engine": {"project_id": "p1",
            "instance_id": "4520031799277581759", "zone": "us-central1-a",
            "instance_creation_timestamp": now - 60}}})
    }

    #[test]
    fn verifies_rs256_and_refuses_the_rest() {
        let (pair, key) = test_key();
        let keys = [key];
        let now = OffsetDateTime::now_utc();
        let skew = Duration::from_secs(30);
        let check = |t: &str| verify_gce(t, &keys, "https://svc:9443", now, skew);
        let c = check(&sign(&pair, "k1", &payload("https://svc:9443", 600))).unwrap();
        assert_eq!(
            (c.account.as_str(), c.region.as_deref()),
            ("p1", Some("us-central1"))
        );
        let reason = |t: &str| check(t).unwrap_err().reason;
        assert!(
            reason(&sign(&pair, "k1", &payload("https://other", 600))).contains("wrong audience")
        );
        assert!(reason(&sign(&pair, "k1", &payload("https://svc:9443", -600))).contains("expired"));
        assert!(
            reason(&sign(&pair, "k9", &payload("https://svc:9443", 600))).contains("unknown key")
        );
        let (other, _) = test_key();
        assert!(
            reason(&sign(&other, "k1", &payload("https://svc:9443", 600)))
                .contains("does not verify")
        );
        assert!(reason("a.b").contains("not a JWT"));
        let none = format!(
            "{}.e30.",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#)
        );
        assert!(reason(&none).contains("not RS256"));
    }
}
