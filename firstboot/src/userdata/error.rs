//! Errors of the user-data engine: each names the field it concerns, e.g.
//! `storage.files[3].contents.source: ...`.

/// Result with a [`UserDataError`].
pub type Result<T, E = UserDataError> = std::result::Result<T, E>;

/// A user-data problem, with the field or part it concerns; an I/O failure while applying it
/// keeps the underlying error as its source.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct UserDataError {
    /// The field, e.g. `storage.files[3].contents.source` or `write_files[0].content`.
    pub field: String,
    /// What is wrong and, where possible, what to do (for I/O: the path).
    pub message: String,
    /// The error behind it (I/O while applying), if any.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl UserDataError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        UserDataError {
            field: field.into(),
            message: message.into(),
            source: None,
        }
    }

    /// A failure on `path` while applying `field`, keeping `error` as the source.
    pub fn io(
        field: impl Into<String>,
        path: &std::path::Path,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        UserDataError {
            field: field.into(),
            message: path.display().to_string(),
            source: Some(Box::new(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_failures_keep_their_source() {
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let err = UserDataError::io("write_files[0]", std::path::Path::new("/etc/x"), io);
        assert_eq!(err.to_string(), "write_files[0]: /etc/x");
        let chain = format!("{:#}", anyhow::Error::new(err));
        assert_eq!(chain, "write_files[0]: /etc/x: permission denied");
    }
}
