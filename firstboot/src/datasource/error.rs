//! The error type of the datasources: every message names the source, URL, path or status.
//! URLs in it are redacted ([`redact`]): no userinfo, query or fragment.

use std::path::PathBuf;

use super::url::redact;

/// Result with the datasource [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while finding or fetching user-data and metadata.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--datasource` or `kiln.datasource=` named no known datasource.
    #[error("unknown datasource {0:?} (known: {known})", known = super::NAMES.join(", "))]
    UnknownDatasource(String),
    /// A user-data URL with a scheme kiln cannot fetch.
    #[error("unsupported URL scheme in {url:?} (use http, https, tftp, data: or file)")]
    UnsupportedScheme {
        /// The URL as given.
        url: String,
    },
    /// A URL that could not be parsed.
    #[error("malformed URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server answered with a status that is not retried.
    #[error("{url}: HTTP status {status}")]
    Status {
        /// The URL requested, redacted.
        url: String,
        /// The final status code.
        status: u16,
    },
    /// Retries ran out of time.
    #[error(
        "{url}: no answer within the deadline after {attempts} attempt(s); last error: {last}"
    )]
    GaveUp {
        /// The URL requested, redacted.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last error seen.
        last: String,
    },
    /// A request failed in a way that retrying cannot fix (TLS, certificates, redirects).
    #[error("{url}: {reason} (not retried)")]
    Request {
        /// The URL requested, redacted.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A body larger than the cap.
    #[error("{source_name}: larger than the limit of {limit} bytes")]
    TooLarge {
        /// The URL (redacted) or path read.
        source_name: String,
        /// The cap in bytes.
        limit: u64,
    },
    /// Metadata that does not parse.
    #[error("{source_name}: malformed metadata: {reason}")]
    Malformed {
        /// The URL (redacted) or path read.
        source_name: String,
        /// The parser's message.
        reason: String,
    },
    /// A file, device or directory could not be read.
    #[error("{}: {error}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The underlying error (part of the message, so not chained as a source).
        error: std::io::Error,
    },
    /// A filesystem image that cannot be read.
    #[error("{}: {reason}", path.display())]
    Filesystem {
        /// The device or image.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The chosen datasource had nothing where it should have.
    #[error("{0}")]
    Missing(String),
    /// No step of the search found a datasource.
    #[error("no datasource found: {0}")]
    NotFound(String),
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
        }
    }

    /// An [`Error::Malformed`] for the source `source_name` (a URL, redacted here, or a path).
    pub fn malformed(source_name: impl AsRef<str>, reason: impl ToString) -> Self {
        Error::Malformed {
            source_name: redact(source_name.as_ref()),
            reason: reason.to_string(),
        }
    }

    /// An [`Error::Status`] for `url`, redacted.
    pub fn status(url: &str, status: u16) -> Self {
        Error::Status {
            url: redact(url),
            status,
        }
    }
}
