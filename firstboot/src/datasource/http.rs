//! A small blocking HTTP client for metadata services that are not up yet at boot: connection
//! errors, timeouts, truncated bodies, 408, 429 and 5xx are retried with exponential backoff and
//! jitter inside one total deadline; every other status is final and handed to the caller, and
//! every other failure (TLS and certificates, too many redirects, malformed answers) is a final
//! error. URLs in errors and logs are redacted (no userinfo, query or fragment).

use std::time::{Duration, Instant};

use kiln_core::http;
use kiln_core::retry::{self, Attempt, Policy};

use super::url::redact;
use super::{Error, Result};

/// First pause between attempts; doubles up to [`MAX_BACKOFF`] (Ignition's schedule).
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// No attempt starts with less time than this left: it could only time out, and its "timeout"
/// would hide the real error of the attempts before.
const MIN_ATTEMPT: Duration = Duration::from_millis(100);

/// Limits of one fetch run.
#[derive(Debug, Clone, Copy)]
pub struct HttpConfig {
    /// When every retry stops.
    pub deadline: Instant,
    /// The longest one request may take (connect, send, headers, body).
    pub request_timeout: Duration,
    /// The largest body accepted, in bytes.
    pub max_body: u64,
}

/// One answer with a final (non-retried) status.
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status code.
    pub status: u16,
    /// The body, at most [`HttpConfig::max_body`] bytes.
    pub body: Vec<u8>,
    /// Response headers, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The retrying client.
pub struct Http {
    agent: ureq::Agent,
    config: HttpConfig,
}

impl Http {
    /// A client with the limits of `config`. Proxies from the environment are ignored: metadata
    /// services are link-local.
    pub fn new(config: HttpConfig) -> Self {
        let agent = http::Options {
            env_proxy: false,
            ..http::Options::new(concat!("kiln-firstboot/", env!("CARGO_PKG_VERSION")))
        }
        .agent();
        Http { agent, config }
    }

    /// The limits this client works within.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// GET `url`: `Some(body)` on 200, `None` on 404 (or an empty 204), an error otherwise.
    pub fn get_optional(&self, url: &str, headers: &[(&str, &str)]) -> Result<Option<Vec<u8>>> {
        let reply = self.send("GET", url, headers)?;
        match reply.status {
            200 => Ok(Some(reply.body)),
            204 | 404 => Ok(None),
            status => Err(Error::status(url, status)),
        }
    }

    /// GET `url` and require a 200 answer.
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Vec<u8>> {
        self.get_optional(url, headers)?
            .ok_or_else(|| Error::status(url, 404))
    }

    /// Sends `method url` with `headers` and an empty body, retrying until a final status or the
    /// deadline.
    pub fn send(&self, method: &str, url: &str, headers: &[(&str, &str)]) -> Result<Reply> {
        let policy = Policy::until(self.config.deadline, FIRST_BACKOFF, MAX_BACKOFF)
            .min_attempt(MIN_ATTEMPT);
        let result = policy.run(
            |_| {
                let left = self
                    .config
                    .deadline
                    .saturating_duration_since(Instant::now());
                match self.attempt(method, url, headers, left.min(self.config.request_timeout))? {
                    reply if http::is_transient_status(reply.status) => {
                        Err(Attempt::Retry(format!("HTTP status {}", reply.status)))
                    }
                    reply => Ok(reply),
                }
            },
            |last, pause| {
                tracing::debug!("{method} {}: {last}; retrying in {pause:?}", redact(url))
            },
        );
        result.map_err(|e| match e {
            retry::Error::Final(err) => err,
            retry::Error::GaveUp { attempts, last } => Error::GaveUp {
                url: redact(url),
                attempts,
                last,
            },
        })
    }

    fn attempt(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Reply, Failure> {
        if timeout.is_zero() {
            return Err(Attempt::Retry("deadline reached".into()));
        }
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(&[][..]).map_err(|e| {
            Attempt::Fail(Error::BadUrl {
                url: redact(url),
                reason: e.to_string(),
            })
        })?;
        let request = self
            .agent
            .configure_request(request)
            .timeout_global(Some(timeout))
            .build();
        let mut response = self.agent.run(request).map_err(|e| classify(url, e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(self.config.max_body)
            .read_to_vec()
            .map_err(|e| classify(url, e))?;
        Ok(Reply {
            status,
            body,
            headers,
        })
    }
}

/// One failed attempt: a transient reason, or the final error.
type Failure = Attempt<String, Error>;

/// Sorts a transport error by the shared rule ([`http::is_transient`]) into worth a retry or a
/// final error of the matching kind.
fn classify(url: &str, err: ureq::Error) -> Failure {
    if http::is_transient(&err) {
        return Attempt::Retry(err.to_string());
    }
    let fail = |reason: String| {
        Attempt::Fail(Error::Request {
            url: redact(url),
            reason,
        })
    };
    match err {
        ureq::Error::BodyExceedsLimit(limit) => Attempt::Fail(Error::TooLarge {
            source_name: redact(url),
            limit,
        }),
        // ureq's message may quote the URL.
        ureq::Error::BadUri(reason) => Attempt::Fail(Error::BadUrl {
            url: redact(url),
            reason: http::describe(url, &reason),
        }),
        ureq::Error::Http(e) => Attempt::Fail(Error::BadUrl {
            url: redact(url),
            reason: e.to_string(),
        }),
        ureq::Error::Io(e) if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => {
            fail(format!("TLS: {e}"))
        }
        ureq::Error::Io(e) => fail(e.to_string()),
        ureq::Error::Rustls(e) => fail(format!("TLS: {e}")),
        other => fail(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(secs: f64) -> Http {
        Http::new(HttpConfig {
            deadline: Instant::now() + Duration::from_secs_f64(secs),
            request_timeout: Duration::from_secs(1),
            max_body: 1024,
        })
    }

    /// Serves each connection on 127.0.0.1 with `serve` in turn; returns the port and the number
    /// of connections taken so far.
    fn server(
        serve: impl Fn(std::net::TcpStream) + Send + 'static,
    ) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                serve(stream);
            }
        });
        (port, count)
    }

    #[test]
    fn too_many_redirects_is_final_and_redacted() {
        let (port, count) = server(|mut stream| {
            use std::io::{Read, Write};
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 302 Found\r\nLocation: /again?sig=s3cret\r\nContent-Length: 0\r\n\r\n",
            );
        });
        let start = Instant::now();
        let err = client(5.0)
            .get_optional(
                &format!("http://me:pa55@127.0.0.1:{port}/ud?sig=s3cret"),
                &[],
            )
            .unwrap_err();
        assert!(matches!(err, Error::Request { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("http://127.0.0.1:{port}/ud: too many redirects")),
            "{msg}"
        );
        assert!(!msg.contains("pa55") && !msg.contains("s3cret"), "{msg}");
        assert!(start.elapsed() < Duration::from_secs(2), "retried");
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 6);
    }

    #[test]
    fn untrusted_certificates_are_final() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der());
        let config = std::sync::Arc::new(
            rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key.into())
            .unwrap(),
        );
        let (port, count) = server(move |mut stream| {
            let mut conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let _ = conn.complete_io(&mut stream);
        });
        let start = Instant::now();
        let err = client(5.0)
            .get_optional(&format!("https://localhost:{port}/ud?sig=s3cret"), &[])
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Request { .. }), "{msg}");
        assert!(
            msg.contains(&format!("https://localhost:{port}/ud: TLS: "))
                && msg.contains("certificate")
                && !msg.contains("s3cret"),
            "{msg}"
        );
        assert!(start.elapsed() < Duration::from_secs(2), "retried");
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn gives_up_at_the_deadline_on_refused_connections() {
        // Bind then drop a listener: its port now refuses connections.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let start = Instant::now();
        let http = Http::new(HttpConfig {
            deadline: start + Duration::from_millis(700),
            request_timeout: Duration::from_millis(200),
            max_body: 1024,
        });
        let err = http
            .get_optional(
                &format!("http://me:pa55@127.0.0.1:{port}/x?sig=s3cret"),
                &[],
            )
            .unwrap_err();
        assert!(
            matches!(err, Error::GaveUp { attempts, .. } if attempts > 1),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("http://127.0.0.1:{port}/x: ")),
            "{msg}"
        );
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
