//! A small client for the OCI distribution API (pull only): `GET /v2/<name>/manifests/<ref>` and
//! `GET /v2/<name>/blobs/<digest>`, with the anonymous bearer-token flow public registries use
//! (registry.k8s.io, docker.io, ghcr.io): a 401 names a token realm in `WWW-Authenticate`, the
//! token is fetched for `repository:<name>:pull` and the request repeated with it.
//!
//! Connection errors, 408, 429 and 5xx are retried a few times with a short backoff (the shared
//! policy and rule of `kiln_core::retry` and `kiln_core::http`); everything else is an error
//! naming the URL (redacted: a blob redirect points at a signed URL whose query is a credential)
//! and status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use kiln_core::http;
use kiln_core::retry::{self, Attempt, Policy};
use kiln_core::url::{redact, redact_in};

use crate::bake::mirror::Mirrors;
use crate::bake::transfer::{self, CopyError};

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
/// The pause after a request's first failed attempt (doubling after that).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Redirects followed per request.
const MAX_REDIRECTS: u32 = 5;

/// A registry client shared by all pulls of a build (tokens are cached per registry and
/// repository).
#[derive(Clone)]
pub struct Registry {
    agent: ureq::Agent,
    mirrors: Mirrors,
    tokens: Arc<Mutex<HashMap<String, String>>>,
}

/// A fetched manifest: its bytes and the digest the registry says it has.
#[derive(Debug)]
pub struct Manifest {
    /// The body, byte for byte (its digest is the manifest's digest).
    pub bytes: Vec<u8>,
    /// The registry's `Docker-Content-Digest` header, if sent.
    pub digest_header: Option<String>,
}

impl Registry {
    /// A client that reaches registries through `mirrors`.
    pub fn new(mirrors: &Mirrors) -> Self {
        let agent = http::Options {
            max_redirects: 0,
            connect: Some(Duration::from_secs(30)),
            response: Some(Duration::from_secs(60)),
            per_read: Some(Duration::from_secs(60)),
            ..http::Options::new(concat!("kiln/", env!("CARGO_PKG_VERSION")))
        }
        .agent();
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
            .with_context(|| format!("reading {}", redact(&url)))?;
        Ok(Manifest {
            bytes,
            digest_header,
        })
    }

    /// Streams blob `digest` of `image`'s repository into `sink`, calling `progress` with the
    /// bytes of each chunk; returns the number of bytes. `size` is the descriptor's: a registry
    /// that sends more is cut off at one byte past it, and that is an error (the digest check
    /// comes after; the size keeps a hostile or broken registry from filling the disk first).
    pub fn blob(
        &self,
        image: &Reference,
        digest: &str,
        size: u64,
        sink: &mut dyn std::io::Write,
        progress: &dyn Fn(u64),
    ) -> anyhow::Result<u64> {
        let url = self.url(image, "blobs", digest);
        let mut response = self.get(image, &url, "*/*")?;
        let mut reader =
            std::io::Read::take(response.body_mut().as_reader(), size.saturating_add(1));
        let copied =
            transfer::copy_with_progress(&mut reader, sink, progress).map_err(|e| match e {
                CopyError::Read(e) => {
                    anyhow::anyhow!("reading {}: {}", redact(&url), http::describe(&url, &e))
                }
                CopyError::Write(e) => anyhow::Error::new(e).context("writing to the cache"),
            })?;
        anyhow::ensure!(
            copied <= size,
            "GET {}: sent more than the {size} bytes the manifest gives blob {digest}; stopped",
            redact(&url)
        );
        Ok(copied)
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

    /// GET with retries, redirects and the bearer-token dance; returns a 200 response.
    ///
    /// Redirects are followed here, not by ureq, because a registry may send the client to
    /// another host that asks for its own token (registry.k8s.io → Artifact Registry), and
    /// because a token must never travel to the storage a blob redirect points at (signed URLs):
    /// after a redirect, a token is sent only once the target answers 401.
    fn get(
        &self,
        image: &Reference,
        url: &str,
        accept: &str,
    ) -> anyhow::Result<ureq::http::Response<ureq::Body>> {
        let mut url = url.to_owned();
        let mut redirects = 0;
        let mut challenged = Vec::new();
        // A redirect target gets a token only once it asks for one with a 401.
        let mut authorize = true;
        loop {
            let key = format!("{} {}", origin(&url), image.repository);
            let token = self.tokens.lock().unwrap().get(&key).cloned();
            let bearer = token.as_deref().filter(|_| authorize);
            let response = self.send(&url, accept, bearer)?;
            let status = response.status().as_u16();
            match status {
                200 => return Ok(response),
                301 | 302 | 303 | 307 | 308 if redirects < MAX_REDIRECTS => {
                    let location = header(&response, "location");
                    url = redirect_target(&url, &location)?;
                    redirects += 1;
                    authorize = false;
                }
                401 if !authorize && token.is_some() => authorize = true,
                401 if !challenged.contains(&key) => {
                    let challenge = redact_in(&header(&response, "www-authenticate"));
                    let token = self
                        .fetch_token(&challenge, image)
                        .with_context(|| format!("GET {}: 401 Unauthorized", redact(&url)))?;
                    self.tokens.lock().unwrap().insert(key.clone(), token);
                    challenged.push(key);
                    authorize = true;
                }
                404 => anyhow::bail!(
                    "GET {}: 404 Not Found (no such image, tag or blob in the registry)",
                    redact(&url)
                ),
                _ => anyhow::bail!("GET {}: HTTP {status}{}", redact(&url), detail(response)),
            }
        }
    }

    /// One GET of `url` (with the bearer token, if given) under the request policy: the first
    /// answer that is not transient, whatever its status.
    fn send(
        &self,
        url: &str,
        accept: &str,
        bearer: Option<&str>,
    ) -> anyhow::Result<ureq::http::Response<ureq::Body>> {
        let attempt = |_| {
            let mut request = self.agent.get(url).header("Accept", accept);
            if let Some(token) = bearer {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            match request.call() {
                Ok(r) if http::is_transient_status(r.status().as_u16()) => Err(Attempt::Retry(
                    format!("HTTP {}{}", r.status().as_u16(), detail(r)),
                )),
                Ok(r) => Ok(r),
                Err(e) if http::is_transient(&e) => Err(Attempt::Retry(http::describe(url, &e))),
                Err(e) => Err(Attempt::Fail(http::describe(url, &e))),
            }
        };
        Policy::attempts(ATTEMPTS, FIRST_BACKOFF)
            .run(attempt, |reason, pause| {
                tracing::debug!("GET {}: {reason}; retrying in {pause:?}", redact(url))
            })
            .map_err(|e| match e {
                retry::Error::Final(reason) => anyhow::anyhow!("GET {}: {reason}", redact(url)),
                retry::Error::GaveUp { attempts, last } => anyhow::anyhow!(
                    "GET {}: {last} (gave up after {attempts} attempts)",
                    redact(url)
                ),
            })
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
        let mut response = request.call().map_err(|e| {
            anyhow::anyhow!(
                "GET token from {}: {}",
                redact(realm),
                http::describe(realm, &e)
            )
        })?;
        anyhow::ensure!(
            response.status() == 200,
            "GET token from {}: HTTP {} (the image may be private)",
            redact(realm),
            response.status()
        );
        let body: serde_json::Value = serde_json::from_slice(
            &response
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_vec()
                .with_context(|| format!("reading token from {}", redact(realm)))?,
        )
        .with_context(|| format!("token from {} is not JSON", redact(realm)))?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("token response from {} has no token", redact(realm)))
    }
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// `scheme://host[:port]` of `url`.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

/// Where a redirect from `from` to `location` goes; HTTPS is never downgraded to HTTP.
fn redirect_target(from: &str, location: &str) -> anyhow::Result<String> {
    let target = if location.starts_with("https://") || location.starts_with("http://") {
        location.to_owned()
    } else if location.starts_with('/') {
        format!("{}{location}", origin(from))
    } else {
        anyhow::bail!(
            "GET {}: redirect to {:?}, which kiln does not follow",
            redact(from),
            redact(location)
        );
    };
    if from.starts_with("https://") && !target.starts_with("https://") {
        anyhow::bail!(
            "GET {}: refusing the redirect from HTTPS to {}",
            redact(from),
            redact(&target)
        );
    }
    Ok(target)
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

/// `": <detail>"` from a distribution-spec error body, or nothing.
fn detail(response: ureq::http::Response<ureq::Body>) -> String {
    error_detail(response)
        .map(|d| format!(": {}", redact_in(&d)))
        .unwrap_or_default()
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

    type Handler = fn(&str, &str, &str) -> (u16, String, Vec<u8>);

    /// A one-request-per-connection HTTP server on 127.0.0.1 for the rest of the test process:
    /// `handler(own address, request line, head)` → status, extra header lines, body.
    fn serve(handler: Handler) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let own = addr.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let line = head.lines().next().unwrap_or_default().to_owned();
                let (status, headers, body) = handler(&own, &line, &head);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(&body);
            }
        });
        addr
    }

    /// A registry that redirects to a backend on another host, which wants an anonymous token;
    /// the blob lives behind a signed URL that must not see the token.
    #[test]
    fn redirects_and_anonymous_tokens() {
        let back = serve(|own, line, head| {
            let head = head.to_ascii_lowercase();
            let authed = head.contains("authorization: bearer tok");
            if line.starts_with("GET /token?") {
                assert!(line.contains("scope=repository%3Aapp%3Apull"), "{line}");
                assert!(line.contains("service=svc"), "{line}");
                return (200, String::new(), br#"{"token":"tok"}"#.to_vec());
            }
            if line.starts_with("GET /v2/app/manifests/1 ") {
                if !authed {
                    let challenge = format!(
                        "WWW-Authenticate: Bearer realm=\"http://{own}/token\",service=\"svc\",scope=\"repository:app:pull\"\r\n"
                    );
                    return (401, challenge, Vec::new());
                }
                return (
                    200,
                    "Docker-Content-Digest: sha256:x\r\n".into(),
                    b"manifest".to_vec(),
                );
            }
            if line.starts_with("GET /signed/blob ") {
                return if head.contains("authorization") {
                    (400, String::new(), b"token leaked".to_vec())
                } else {
                    (200, String::new(), b"blob".to_vec())
                };
            }
            (404, String::new(), Vec::new())
        });
        static BACK: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        BACK.set(back).unwrap();
        let front = serve(|_, line, _| {
            let back = BACK.get().unwrap();
            if line.starts_with("GET /v2/app/manifests/1 ") {
                let to = format!("Location: http://{back}/v2/app/manifests/1\r\n");
                return (307, to, Vec::new());
            }
            if line.starts_with("GET /v2/app/blobs/sha256:ab ") {
                return (
                    307,
                    format!("Location: http://{back}/signed/blob\r\n"),
                    Vec::new(),
                );
            }
            (404, String::new(), Vec::new())
        });
        let mirrors = Mirrors::new(vec![format!("reg.example=http://{front}").parse().unwrap()]);
        let registry = Registry::new(&mirrors);
        let image: Reference = "reg.example/app:1".parse().unwrap();
        let manifest = registry.manifest(&image, "1").unwrap();
        assert_eq!(manifest.bytes, b"manifest");
        assert_eq!(manifest.digest_header.as_deref(), Some("sha256:x"));
        let mut blob = Vec::new();
        registry
            .blob(&image, "sha256:ab", 4, &mut blob, &|_| {})
            .unwrap();
        assert_eq!(blob, b"blob");
        let err = registry.manifest(&image, "2").unwrap_err().to_string();
        assert!(err.contains("404"), "{err}");
    }

    /// A blob redirect to a signed URL (credentials in the query) that fails: the error names
    /// the URL without the signature, and neither does a refused redirect.
    #[test]
    fn signed_redirect_targets_stay_out_of_errors() {
        let back = serve(|_, line, _| {
            if line.starts_with("GET /signed/blob?") {
                return (403, String::new(), b"expired".to_vec());
            }
            (404, String::new(), Vec::new())
        });
        static BACK: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        BACK.set(back).unwrap();
        let front = serve(|_, _, _| {
            let back = BACK.get().unwrap();
            let to = format!(
                "Location: http://user:pa55@{back}/signed/blob?X-Amz-Credential=AKID&X-Amz-Signature=s3cret\r\n"
            );
            (307, to, Vec::new())
        });
        let mirrors = Mirrors::new(vec![format!("reg.example=http://{front}").parse().unwrap()]);
        let registry = Registry::new(&mirrors);
        let image: Reference = "reg.example/app:1".parse().unwrap();
        let err = registry
            .blob(&image, "sha256:ab", 10, &mut Vec::new(), &|_| {})
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("/signed/blob: HTTP 403"), "{msg}");
        for secret in ["s3cret", "AKID", "pa55"] {
            assert!(!msg.contains(secret), "{msg}");
        }
        let err = redirect_target("https://a.io/v2/x", "http://b.io/y?sig=s3cret").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    /// A blob larger than its descriptor says: cut off one byte past the size, an error.
    #[test]
    fn blobs_are_bounded_by_their_descriptor_size() {
        let addr = serve(|_, _, _| (200, String::new(), vec![b'x'; 4 << 20]));
        let mirrors = Mirrors::new(vec![format!("reg.example=http://{addr}").parse().unwrap()]);
        let registry = Registry::new(&mirrors);
        let image: Reference = "reg.example/app:1".parse().unwrap();
        let mut sink = Vec::new();
        let err = registry
            .blob(&image, "sha256:ab", 1000, &mut sink, &|_| {})
            .unwrap_err();
        assert!(
            err.to_string().contains("sent more than the 1000 bytes"),
            "{err}"
        );
        assert_eq!(sink.len(), 1001);
        let mut exact = Vec::new();
        let n = registry
            .blob(&image, "sha256:ab", 4 << 20, &mut exact, &|_| {})
            .unwrap();
        assert_eq!(n, 4 << 20);
    }

    /// URLs a registry puts in its error bodies or challenges lose their signature too.
    #[test]
    fn urls_in_error_bodies_and_challenges_are_redacted() {
        let addr = serve(|_, line, _| {
            if line.starts_with("GET /v2/app/manifests/1 ") {
                let challenge = "WWW-Authenticate: Basic realm=\"https://u:pw@auth.example/login?ticket=s3cret\"\r\n";
                return (401, challenge.into(), Vec::new());
            }
            let body = br#"{"errors":[{"code":"DENIED","message":"expired: https://cdn.example/b?X-Amz-Signature=s3cret"}]}"#;
            (403, String::new(), body.to_vec())
        });
        let mirrors = Mirrors::new(vec![format!("reg.example=http://{addr}").parse().unwrap()]);
        let registry = Registry::new(&mirrors);
        let image: Reference = "reg.example/app:1".parse().unwrap();
        let err = registry
            .blob(&image, "sha256:ab", 10, &mut Vec::new(), &|_| {})
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("DENIED expired: https://cdn.example/b"),
            "{msg}"
        );
        let err = registry.manifest(&image, "1").unwrap_err();
        let msg2 = format!("{err:#}");
        assert!(msg2.contains("https://auth.example/login"), "{msg2}");
        for secret in ["s3cret", "pw@"] {
            assert!(
                !msg.contains(secret) && !msg2.contains(secret),
                "{msg} / {msg2}"
            );
        }
    }

    #[test]
    fn redirect_targets() {
        assert_eq!(
            redirect_target("https://a.io/v2/x", "/v2/y").unwrap(),
            "https://a.io/v2/y"
        );
        assert!(redirect_target("https://a.io/v2/x", "http://b.io/y").is_err());
        assert_eq!(origin("http://127.0.0.1:5/v2/x"), "http://127.0.0.1:5");
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
