//! The builder's HTTP client for release downloads: the shared agent (`kiln_core::http`) with
//! bounded connect and read timeouts, and answers sorted by the shared rule into transient
//! failures (worth a retry) and final ones.

use std::io::Read;
use std::time::Duration;

use kiln_core::http;
use kiln_core::retry::Attempt;
use kiln_core::url::redact;

/// Why a request failed: worth another try (connection refused or reset, 5xx, truncated body),
/// or final (404, checksum mismatch, bad URL, TLS).
pub type Failure = Attempt<String, anyhow::Error>;

/// Largest checksum file accepted.
const SMALL_LIMIT: u64 = 1 << 20;

/// A shared HTTP client.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A client for release downloads.
    pub fn new() -> Self {
        let agent = http::Options {
            max_redirects: 10,
            connect: Some(Duration::from_secs(20)),
            per_read: Some(Duration::from_secs(60)),
            ..http::Options::new(concat!("kiln/", env!("CARGO_PKG_VERSION")))
        }
        .agent();
        Client { agent }
    }

    /// GET a small document (a checksum file).
    pub fn get_small(&self, url: &str) -> Result<Vec<u8>, Failure> {
        let mut response = self.get(url)?;
        response
            .body_mut()
            .with_config()
            .limit(SMALL_LIMIT)
            .read_to_vec()
            .map_err(|e| classify(url, e))
    }

    /// GET a download: its body reader and announced length.
    pub fn get_stream(&self, url: &str) -> Result<(Box<dyn Read + Send>, Option<u64>), Failure> {
        let response = self.get(url)?;
        let length = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let reader = response
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader();
        Ok((Box::new(reader), length))
    }

    fn get(&self, url: &str) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        let response = self.agent.get(url).call().map_err(|e| classify(url, e))?;
        match response.status().as_u16() {
            200 => Ok(response),
            status if http::is_transient_status(status) => {
                Err(Attempt::Retry(format!("HTTP status {}", response.status())))
            }
            status => Err(Attempt::Fail(anyhow::anyhow!(
                "{}: HTTP status {status}{}",
                redact(url),
                if status == 404 {
                    " (not found: check the version and the source URL, or the --mirror)"
                } else {
                    ""
                }
            ))),
        }
    }
}

/// A transport error by the shared rule: transient, or final with the URL redacted.
fn classify(url: &str, err: ureq::Error) -> Failure {
    if http::is_transient(&err) {
        Attempt::Retry(http::describe(url, &err))
    } else {
        Attempt::Fail(anyhow::anyhow!(
            "{}: {}",
            redact(url),
            http::describe(url, &err)
        ))
    }
}
