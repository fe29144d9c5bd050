//! A joining node asks the join service for its token (node config `join_service`): the
//! service's CA certificate is fetched and checked against the node's `ca_cert_hashes` (as
//! kubeadm's discovery pins cluster-info), then (Azure) a nonce is asked for, and the signed
//! platform identity is posted over TLS trusting only that CA. Unreachable services, 408, 429 and 5xx are retried with the shared
//! backoff until the join deadline; a refusal (403) is final.

use std::time::{Duration, Instant};

use kiln_core::http;
use kiln_core::retry::{self, Attempt, Policy};

use crate::joinsvc::identity::Proof;
use crate::joinsvc::Answer;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Time for one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read.
const MAX_ANSWER: u64 = 64 << 10;

type Failure = Attempt<String, anyhow::Error>;

/// How the node proves who it is: `prove` is given the service's nonce when `nonce` is set.
pub struct Prover<'a> {
    /// Whether the platform needs a nonce from the service (Azure).
    pub nonce: bool,
    /// Gets the signed identity from the metadata service.
    pub prove: &'a dyn Fn(Option<&str>) -> anyhow::Result<Proof>,
}

/// Asks `service` for a token, proving the identity with `prover`, pinning the service by `pins`,
/// until `deadline`.
pub fn request(
    service: &str,
    pins: &[String],
    prover: &Prover<'_>,
    deadline: Instant,
) -> anyhow::Result<Answer> {
    let service = service.trim_end_matches('/');
    let policy = Policy::until(deadline, FIRST_BACKOFF, MAX_BACKOFF);
    let result = policy.run(
        |_| attempt(service, pins, prover),
        |last, pause| {
            tracing::info!(
                service,
                "join service not answering ({last}); retrying in {pause:?}"
            )
        },
    );
    match result {
        Ok(answer) => Ok(answer),
        Err(retry::Error::Final(e)) => Err(e),
        Err(retry::Error::GaveUp { attempts, last }) => anyhow::bail!(
            "join service {service} not reached after {attempts} attempts before the join timeout: {last}"
        ),
    }
}

/// The answer a run saved at `path` if its token is still valid for a minute after `now` (a run
/// resumed after a failed join reuses it: asking again would be a replay).
pub fn saved(path: &std::path::Path, now: time::OffsetDateTime) -> Option<Answer> {
    let answer: Answer = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let expires = time::OffsetDateTime::parse(
        &answer.expires,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    (expires - now > time::Duration::minutes(1)).then(|| {
        tracing::info!(path = %path.display(), "reusing the join service's answer until it expires");
        answer
    })
}

fn agent(ca: Option<Vec<u8>>) -> ureq::Agent {
    http::Options {
        env_proxy: false,
        verify_tls: ca.is_some(),
        ca,
        max_redirects: 0,
        total: Some(REQUEST_TIMEOUT),
        ..http::Options::new(concat!("kiln-firstboot/", env!("CARGO_PKG_VERSION")))
    }
    .agent()
}

/// One try: the CA (checked against the pins), the nonce if needed, then the join request.
fn attempt(service: &str, pins: &[String], prover: &Prover<'_>) -> Result<Answer, Failure> {
    let agent = agent(Some(pinned_ca(service, pins)?));
    let nonce = match prover.nonce {
        true => Some(nonce(&agent, service)?),
        false => None,
    };
    let proof = (prover.prove)(nonce.as_deref()).map_err(Attempt::Fail)?;
    let body = serde_json::to_string(&proof).map_err(|e| Attempt::Fail(e.into()))?;
    let mut reply = agent
        .post(&format!("{service}/join"))
        .header("content-type", "application/json")
        .send(&body)
        .map_err(|e| transport(service, e))?;
    let (status, text) = (reply.status().as_u16(), read(&mut reply, service)?);
    match status {
        200 => serde_json::from_str(&text)
            .map_err(|e| Attempt::Fail(anyhow::anyhow!("join service {service}: bad answer: {}", kiln_core::redact::decode_error(&e.to_string())))),
        s if http::is_transient_status(s) => Err(Attempt::Retry(format!("HTTP status {s}"))),
        403 => Err(Attempt::Fail(anyhow::anyhow!(
            "join service {service} refused this node (its audit log says why: policy, replay or identity)"
        ))),
        s => Err(Attempt::Fail(anyhow::anyhow!("join service {service} answered HTTP {s}"))),
    }
}

fn read(reply: &mut ureq::http::Response<ureq::Body>, service: &str) -> Result<String, Failure> {
    reply
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_string()
        .map_err(|e| transport(service, e))
}

/// A nonce from the service (`GET /nonce`).
fn nonce(agent: &ureq::Agent, service: &str) -> Result<String, Failure> {
    let mut reply = agent
        .get(&format!("{service}/nonce"))
        .call()
        .map_err(|e| transport(service, e))?;
    let (status, text) = (reply.status().as_u16(), read(&mut reply, service)?);
    if http::is_transient_status(status) {
        return Err(Attempt::Retry(format!("/nonce: HTTP status {status}")));
    }
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["nonce"].as_str().map(str::to_owned))
        .filter(|n| status == 200 && n.len() <= 32 && n.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(|| {
            Attempt::Fail(anyhow::anyhow!(
                "join service {service}: no nonce (HTTP {status})"
            ))
        })
}

/// The service's CA certificate (DER) if its hash is one of `pins`.
fn pinned_ca(service: &str, pins: &[String]) -> Result<Vec<u8>, Failure> {
    let url = format!("{service}/ca.crt");
    let mut reply = agent(None)
        .get(&url)
        .call()
        .map_err(|e| transport(service, e))?;
    let status = reply.status().as_u16();
    if status != 200 {
        return Err(match http::is_transient_status(status) {
            true => Attempt::Retry(format!("{url}: HTTP status {status}")),
            false => Attempt::Fail(anyhow::anyhow!("{url}: HTTP status {status}")),
        });
    }
    let pem = read(&mut reply, service)?;
    let der = kiln_core::pki::cert::cert_der_from_pem(&pem, &url)
        .map_err(|e| Attempt::Fail(anyhow::anyhow!("{e}")))?;
    let hash = kiln_core::pki::cert::ca_hash(&der)
        .map_err(|e| Attempt::Fail(anyhow::anyhow!("{url}: {e}")))?;
    if !pins.contains(&hash) {
        return Err(Attempt::Fail(anyhow::anyhow!(
            "join service {service}: its CA ({hash}) matches none of ca_cert_hashes; not trusting it"
        )));
    }
    Ok(der)
}

fn transport(service: &str, e: ureq::Error) -> Failure {
    if http::is_transient(&e) {
        Attempt::Retry(http::describe(service, &e))
    } else {
        Attempt::Fail(anyhow::anyhow!(
            "join service {service}: {}",
            http::describe(service, &e)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_answer_is_reused_only_while_its_token_lives() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("join-answer.json");
        let now = time::OffsetDateTime::from_unix_timestamp(1796032800).unwrap();
        assert!(saved(&path, now).is_none());
        let answer = r#"{"token":"abcdef.0123456789abcdef","expires":"2026-11-30T10:15:00Z",
            "control_plane_endpoint":"10.0.0.10:6443"}"#;
        std::fs::write(&path, answer).unwrap();
        assert_eq!(
            saved(&path, now).unwrap().control_plane_endpoint,
            "10.0.0.10:6443"
        );
        assert!(saved(&path, now + time::Duration::minutes(14)).is_none());
        std::fs::write(&path, "{").unwrap();
        assert!(saved(&path, now).is_none());
    }
}
