//! Errors of the user-data engine: each names the field it concerns, e.g.
//! `storage.files[3].contents.source: ...`.

/// Result with a [`UserDataError`].
pub type Result<T, E = UserDataError> = std::result::Result<T, E>;

/// A user-data problem, with the field or part it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct UserDataError {
    /// The field, e.g. `storage.files[3].contents.source` or `write_files[0].content`.
    pub field: String,
    /// What is wrong and, where possible, what to do.
    pub message: String,
}

impl UserDataError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        UserDataError {
            field: field.into(),
            message: message.into(),
        }
    }
}
