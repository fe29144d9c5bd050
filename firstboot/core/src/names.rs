//! Kubernetes naming rules shared by the PKI, preflight and node configuration.

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

#[cfg(test)]
mod tests {
    use super::*;

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
