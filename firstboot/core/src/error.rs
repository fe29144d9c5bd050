//! The error type of kiln-core: every message names the file, field or value at fault.

use std::path::PathBuf;

/// Result with the kiln-core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with the path, field or value it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error (shown in the message, so not chained as a source).
        error: std::io::Error,
    },
    /// User input (a flag, a file's contents) is not acceptable; the message says what to do.
    #[error("{0}")]
    Invalid(String),
    /// A key or certificate operation failed.
    #[error("{what}: {reason}")]
    Crypto {
        /// The operation, e.g. "generating the etcd CA key".
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// Output would overwrite something that already exists.
    #[error("{}: already exists; {hint}", path.display())]
    Exists {
        /// The existing path.
        path: PathBuf,
        /// What the user can do about it.
        hint: String,
    },
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
        }
    }

    /// An [`Error::Invalid`] with the given message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }

    /// An [`Error::Crypto`] for the operation `what`.
    pub fn crypto(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Crypto {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
