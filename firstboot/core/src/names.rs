//! Naming rules shared by the PKI, preflight, node configuration and user-data: Kubernetes
//! names, and the user and group names of the shadow tools.

/// Whether `name` is a DNS-1123 subdomain: lower-case letters, digits, `-` and `.`, labels of
/// 1–63 characters starting and ending with a letter or digit, 253 characters at most. Node
/// names must be one.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok)
}

/// Whether `name` is a user or group name the shadow tools accept without `--badname`:
/// `[a-z_][a-z0-9_-]*[$]?`, 32 bytes at most. Such a name never starts with `-`, so it cannot be
/// taken for an option of `useradd` or `groupadd`.
pub fn is_account_name(name: &str) -> bool {
    let body = name.strip_suffix('$').unwrap_or(name).as_bytes();
    let first_ok = body
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || *b == b'_');
    let rest_ok = body
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
    first_ok && rest_ok && name.len() <= 32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names() {
        for ok in ["core", "_svc", "a-b_1", "host$", &"x".repeat(32)] {
            assert!(is_account_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-D",
            "1a",
            "A",
            "a b",
            "a:b",
            "a/b",
            "$",
            "a$b",
            &"x".repeat(33),
        ] {
            assert!(!is_account_name(bad), "{bad}");
        }
    }

    #[test]
    fn dns1123_subdomains() {
        for ok in ["a", "node-1", "etcd.b", "x".repeat(63).as_str()] {
            assert!(is_dns1123_subdomain(ok), "{ok}");
        }
        for bad in ["", "A", "-a", "a-", "a..b", "a_b", &"x".repeat(64)] {
            assert!(!is_dns1123_subdomain(bad), "{bad}");
        }
    }
}
