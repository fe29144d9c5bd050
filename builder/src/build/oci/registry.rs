//! A small client for the OCI distribution API (pull only): `GET /v2/<name>/manifests/<ref>` and
//! `GET /v2/<name>/blobs/<digest>`, with the anonymous bearer-token flow public registries use
//! (registry.k8s.io, docker.io, ghcr.io): a 401 names a token realm in `WWW-Authenticate`, the
//! token is fetched for `repository:<name>:pull` and the request repeated with it.
//!
//! Connection errors, 408, 429 and 5xx are retried a few times with a short backoff; everything
//! else is an error naming the URL and status.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

use crate::build::mirror::Mirrors;

use super::reference::Reference;

/// Every manifest type kiln understands, for `Accept`.
pub const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Largest manifest accepted (the distribution spec lets registries refuse above 4 MiB).
const MANIFEST_LIMIT: u64 = 4 << 20;
/// Attempts per request (connection errors, 408, 429, 5xx).
const ATTEMPTS: u32 = 3;

/// A registry client shared by all pulls of a build (tokens are cached per registry and
/// repository).
#[derive(Clone)]
pub struct Registry {
    agent: ureq::Agent,
    mirrors: Mirrors,
    tokens: Arc<Mutex<HashMap<String, String>>>,
}

/// A fetched manifest: its bytes and the `Content-Type` the registry gave.
pub struct Manifest {
    /// The body, byte for byte (its digest is the manifest's digest).
    pub bytes: Vec<u8>,
    /// The registry's `Docker-Content-Digest` header, if sent.
    pub digest_header: Option<String>,
}

impl Registry {
    /// A client that reaches registries through `mirrors`.
    pub fn new(mirrors: &Mirrors) -> Self {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::WebPki)
            .unversioned_rustls_crypto_provider(provider)
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(5)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build()
            .into();
        Registry {
            agent,
            mirrors: mirrors.clone(),
            tokens: Arc::default(),
        }
    }

    /// The manifest `reference` (a tag or digest) of `image`'s repository.
    pub fn manifest(&self, image: &Reference, reference: &str) -> anyhow::Result<Manifest> {
        let url = self.url(image, "manifests", reference);
        let mut response = self.get(image, &url, &MANIFEST_TYPES.join(", "))?;
        let digest_header = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MANIFEST_LIMIT)
            .read_to_vec()
            .with_context(|| format!("reading {url}"))?;
        Ok(Manifest {
            bytes,
            digest_header,
        })
    }

    /// Streams blob `digest` of `image`'s repository into `sink`, calling `progress` with the
    /// bytes of each chunk; returns the number of bytes.
    pub fn blob(
        &self,
        image: &Reference,
        digest: &str,
        sink: &mut dyn std::io::Write,
        progress: &dyn Fn(u64),
    ) -> anyhow::Result<u64> {
        let url = self.url(image, "blobs", digest);
        let mut response = self.get(image, &url, "*/*")?;
        let mut reader = response.body_mut().as_reader();
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .with_context(|| format!("reading {url}"))?;
            if n == 0 {
                return Ok(total);
            }
            sink.write_all(&buf[..n]).context("writing to the cache")?;
            total += n as u64;
            progress(n as u64);
        }
    }

    fn url(&self, image: &Reference, kind: &str, reference: &str) -> String {
        let endpoint = self.mirrors.registry(&image.registry);
        // Docker Hub's API lives on registry-1.docker.io (what `docker.io` means in a name).
        let host = match endpoint.host.as_str() {
            "docker.io" => "registry-1.docker.io",
            h => h,
        };
        let scheme = if endpoint.insecure_http {
            "http"
        } else {
            "https"
        };
        format!(
            "{scheme}://{host}/v2/{}/{kind}/{reference}",
            image.repository
        )
    }

    /// GET with retries and the bearer-token dance; returns a 200 response.
    fn get(
        &self,
        image: &Reference,
        url: &str,
        accept: &str,
    ) -> anyhow::Result<ureq::http::Response<ureq::Body>> {
        let key = format!("{}/{}", image.registry, image.repository);
        let mut refreshed_token = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.tokens.lock().unwrap().get(&key).cloned();
            let mut request = self.agent.get(url).header("Accept", accept);
            if let Some(token) = &token {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            let response = match request.call() {
                Ok(r) => r,
                Err(e) if attempt < ATTEMPTS && retryable_error(&e) => {
                    backoff(attempt);
                    continue;
                }
                Err(e) => return Err(anyhow::anyhow!("GET {url}: {e}")),
            };
            let status = response.status().as_u16();
            match status {
                200 => return Ok(response),
                401 if !refreshed_token => {
                    let challenge = response
                        .headers()
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let token = self
                        .fetch_token(&challenge, image)
                        .with_context(|| format!("GET {url}: 401 Unauthorized"))?;
                    self.tokens.lock().unwrap().insert(key.clone(), token);
                    refreshed_token = true;
                }
                408 | 429 | 500..=599 if attempt < ATTEMPTS => backoff(attempt),
                404 => anyhow::bail!(
                    "GET {url}: 404 Not Found (no such image, tag or blob in the registry)"
                ),
                _ => anyhow::bail!(
                    "GET {url}: HTTP {status}{}",
                    error_detail(response)
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
            }
        }
    }

    /// Anonymous token for `challenge` (`Bearer realm="…",service="…",scope="…"`).
    fn fetch_token(&self, challenge: &str, image: &Reference) -> anyhow::Result<String> {
        let params = parse_challenge(challenge).ok_or_else(|| {
            anyhow::anyhow!(
                "the registry asks for credentials ({challenge:?}); kiln pulls anonymously"
            )
        })?;
        let realm = params
            .get("realm")
            .ok_or_else(|| anyhow::anyhow!("WWW-Authenticate {challenge:?} has no realm"))?;
        let scope = params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| format!("repository:{}:pull", image.repository));
        let mut request = self.agent.get(realm).query("scope", &scope);
        if let Some(service) = params.get("service") {
            request = request.query("service", service);
        }
        let mut response = request
            .call()
            .with_context(|| format!("GET token from {realm}"))?;
        anyhow::ensure!(
            response.status() == 200,
            "GET token from {realm}: HTTP {} (the image may be private)",
            response.status()
        );
        let body: serde_json::Value = serde_json::from_slice(
            &response
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_vec()
                .with_context(|| format!("reading token from {realm}"))?,
        )
        .with_context(|| format!("token from {realm} is not JSON"))?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("token response from {realm} has no token"))
    }
}

/// `Bearer k="v",k2="v2"` → its parameters; `None` for other schemes (Basic).
fn parse_challenge(challenge: &str) -> Option<HashMap<String, String>> {
    let (scheme, rest) = challenge.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, tail) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"')?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => after.split_once(',').unwrap_or((after, "")),
        };
        params.insert(key.trim().to_ascii_lowercase(), value.to_owned());
        rest = tail.trim_start_matches([',', ' ']);
    }
    Some(params)
}

fn retryable_error(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
    )
}

fn backoff(attempt: u32) {
    std::thread::sleep(Duration::from_millis(250 << attempt));
}

/// The first error message of a distribution-spec error body, if any.
fn error_detail(mut response: ureq::http::Response<ureq::Body>) -> Option<String> {
    let bytes = response
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_vec()
        .ok()?;
    let body: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let first = body.get("errors")?.get(0)?;
    Some(format!(
        "{} {}",
        first.get("code")?.as_str()?,
        first.get("message").and_then(|m| m.as_str()).unwrap_or("")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let p = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        )
        .unwrap();
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/nginx:pull");
        assert!(parse_challenge(r#"Basic realm="x""#).is_none());
    }

    #[test]
    fn urls_follow_mirrors_and_docker_hub() {
        let mirrors = Mirrors::new(vec!["registry.k8s.io=http://127.0.0.1:5000"
            .parse()
            .unwrap()]);
        let r = Registry::new(&mirrors);
        let pause: Reference = "registry.k8s.io/pause:3.10".parse().unwrap();
        assert_eq!(
            r.url(&pause, "manifests", "3.10"),
            "http://127.0.0.1:5000/v2/pause/manifests/3.10"
        );
        let nginx: Reference = "nginx:1".parse().unwrap();
        assert_eq!(
            r.url(&nginx, "blobs", "sha256:ab"),
            "https://registry-1.docker.io/v2/library/nginx/blobs/sha256:ab"
        );
    }
}
