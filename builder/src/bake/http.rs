//! The builder's HTTP client: HTTPS with the WebPKI roots (rustls), no proxies from the
//! environment, bounded connect and read timeouts, and answers sorted into transient failures
//! (worth a retry) and final ones.

use std::io::Read;
use std::time::Duration;

use kiln_core::url::redact;

use super::fetch::Failure;

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
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(10)
            .timeout_connect(Some(Duration::from_secs(20)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .tls_config(kiln_core::tls::webpki())
            .build()
            .into();
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
            .map_err(|e| Failure::Transient(e.to_string()))
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
            408 | 429 | 500..=599 => Err(Failure::Transient(format!(
                "HTTP status {}",
                response.status()
            ))),
            status => Err(Failure::Final(anyhow::anyhow!(
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

fn classify(url: &str, err: ureq::Error) -> Failure {
    match err {
        ureq::Error::Io(e) => Failure::Transient(e.to_string()),
        ureq::Error::Timeout(t) => Failure::Transient(format!("timed out ({t})")),
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            Failure::Transient(err.to_string())
        }
        other => Failure::Final(anyhow::anyhow!("{}: {other}", redact(url))),
    }
}
