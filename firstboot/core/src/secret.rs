//! A string that is a secret (bootstrap token, certificate key): serialized as is, because
//! kubeadm needs it in its config, but never shown by `Debug`.

use serde::{Deserialize, Serialize};

/// A secret string. `Debug` prints `<redacted>`; [`Secret::expose`] gives the value.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_serde_is_transparent() {
        let s = Secret::new("0123456789abcdef");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(serde_yaml_ng::to_string(&s).unwrap(), "0123456789abcdef\n");
        assert_eq!(s.expose(), "0123456789abcdef");
    }
}
