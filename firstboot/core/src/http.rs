//! HTTP for both kiln programs: one way to build a ureq agent (the shared TLS configuration,
//! statuses handed to the caller, timeouts and redirects as each caller needs) and one rule for
//! which failures are worth another try: connection errors, timeouts, 408, 429 and 5xx.
//! Everything else — TLS and certificate failures, other 4xx, bad URLs, too many redirects — is
//! final. Messages name URLs only through [`crate::url::redact`].

use std::time::Duration;

use crate::url::redact;

/// How an agent is built.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `User-Agent` header.
    pub user_agent: &'static str,
    /// Redirects ureq follows (0: the caller sees 3xx answers).
    pub max_redirects: u32,
    /// Whether proxies from the environment (`HTTPS_PROXY`, ...) are used.
    pub env_proxy: bool,
    /// Whether the server's certificate is verified against the WebPKI roots. Only a probe that
    /// merely asks "is it up?" may turn this off.
    pub verify_tls: bool,
    /// Trust only this CA certificate (DER) instead of the WebPKI roots (a pinned cluster CA).
    pub ca: Option<Vec<u8>>,
    /// Time to open the connection.
    pub connect: Option<Duration>,
    /// Time from the request sent to the response head.
    pub response: Option<Duration>,
    /// Time for each read of the body.
    pub per_read: Option<Duration>,
    /// Time for the whole request, body included.
    pub total: Option<Duration>,
}

impl Options {
    /// Defaults for `user_agent`: verified TLS, 5 redirects, proxies from the environment, no
    /// timeouts.
    pub fn new(user_agent: &'static str) -> Self {
        Options {
            user_agent,
            max_redirects: 5,
            env_proxy: true,
            verify_tls: true,
            ca: None,
            connect: None,
            response: None,
            per_read: None,
            total: None,
        }
    }

    /// The agent. Every status comes back as a response (none is an error), so the caller sorts
    /// them with [`is_transient_status`].
    pub fn agent(&self) -> ureq::Agent {
        let tls = match (&self.ca, self.verify_tls) {
            (Some(ca), _) => crate::tls::pinned(ca),
            (None, true) => crate::tls::webpki(),
            (None, false) => crate::tls::unverified(),
        };
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(self.max_redirects)
            .user_agent(self.user_agent)
            .tls_config(tls)
            .timeout_connect(self.connect)
            .timeout_recv_response(self.response)
            .timeout_per_read(self.per_read)
            .timeout_global(self.total);
        if !self.env_proxy {
            config = config.proxy(None);
        }
        config.build().into()
    }
}

/// Statuses worth another try: request timeout, too many requests, server errors.
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// Transport failures worth another try: what a network does while it comes up (refused, reset
/// or unreachable connections, DNS failures, timeouts, truncated bodies). TLS and certificate
/// failures, bad URLs, too many redirects and size caps are final.
pub fn is_transient(err: &ureq::Error) -> bool {
    match err {
        ureq::Error::Io(e) => is_transient_io(e),
        ureq::Error::Timeout(_) | ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
        _ => false,
    }
}

/// [`is_transient`] for an I/O error (as a body reader returns them): TLS failures (rustls
/// reports handshake and certificate failures as I/O errors wrapping its own) are final, a
/// wrapped ureq error follows [`is_transient`], any other I/O error is transient.
pub fn is_transient_io(err: &std::io::Error) -> bool {
    match err.get_ref() {
        Some(inner) if inner.is::<rustls::Error>() => false,
        Some(inner) => inner.downcast_ref::<ureq::Error>().is_none_or(is_transient),
        None => true,
    }
}

/// `err`'s message with `url` redacted wherever ureq quoted it.
pub fn describe(url: &str, err: &dyn std::fmt::Display) -> String {
    crate::url::redact_in(&err.to_string().replace(url, &redact(url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_statuses() {
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert!(is_transient_status(s), "{s}");
        }
        for s in [200, 204, 301, 400, 401, 403, 404, 405, 600] {
            assert!(!is_transient_status(s), "{s}");
        }
    }

    #[test]
    fn transient_errors() {
        let io = |kind| ureq::Error::Io(std::io::Error::from(kind));
        assert!(is_transient(&io(std::io::ErrorKind::ConnectionReset)));
        assert!(is_transient(&ureq::Error::HostNotFound));
        assert!(is_transient(&ureq::Error::ConnectionFailed));
        let tls = ureq::Error::Io(std::io::Error::other(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        )));
        assert!(!is_transient(&tls));
        assert!(!is_transient(&ureq::Error::TooManyRedirects));
        assert!(!is_transient(&ureq::Error::BadUri("x".into())));
        assert!(!is_transient_io(&std::io::Error::other(
            ureq::Error::TooManyRedirects
        )));
        assert!(is_transient_io(&std::io::Error::other(
            ureq::Error::ConnectionFailed
        )));
    }

    #[test]
    fn descriptions_redact_the_url() {
        let url = "https://u:p@h/x?sig=s3cret";
        let msg = describe(url, &format!("bad thing at {url}"));
        assert_eq!(msg, "bad thing at https://h/x");
    }
}
