//! `--mirror FROM=TO`: rewrites download URLs and registry hosts, for air-gapped mirrors and tests.
//!
//! A URL mirror (`https://dl.k8s.io/release=http://127.0.0.1:8080/k8s`) replaces a URL prefix; the
//! longest matching FROM wins. A registry mirror (`registry.k8s.io=http://127.0.0.1:5000`) maps a
//! registry host to another registry; `http://` in TO means plain HTTP (local mirrors), `https://`
//! or no scheme means HTTPS.

use std::str::FromStr;

/// One `FROM=TO` rule as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// The URL prefix or registry host to replace.
    pub from: String,
    /// What to put in its place.
    pub to: String,
}

impl FromStr for Mirror {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (from, to) = s.split_once('=').ok_or_else(|| {
            format!(
                "{s:?}: expected FROM=TO, e.g. https://dl.k8s.io/release=http://mirror.local/k8s"
            )
        })?;
        if from.is_empty() || to.is_empty() {
            return Err(format!("{s:?}: FROM and TO must both be non-empty"));
        }
        Ok(Mirror {
            from: from.trim_end_matches('/').to_owned(),
            to: to.trim_end_matches('/').to_owned(),
        })
    }
}

/// Where a registry host is reached after mirroring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEndpoint {
    /// `host[:port]` to connect to.
    pub host: String,
    /// Plain HTTP instead of HTTPS (only when a mirror says `http://`).
    pub insecure_http: bool,
}

/// All mirror rules of one build.
#[derive(Debug, Clone, Default)]
pub struct Mirrors {
    rules: Vec<Mirror>,
}

impl Mirrors {
    /// The rules, longest FROM first so the most specific one wins.
    pub fn new(mut rules: Vec<Mirror>) -> Self {
        rules.sort_by_key(|r| std::cmp::Reverse(r.from.len()));
        Mirrors { rules }
    }

    /// `url` with the longest matching FROM prefix replaced (at a path boundary), or unchanged.
    pub fn rewrite_url(&self, url: &str) -> String {
        for rule in &self.rules {
            if let Some(rest) = url.strip_prefix(&rule.from) {
                if rest.is_empty() || rest.starts_with('/') {
                    return format!("{}{rest}", rule.to);
                }
            }
        }
        url.to_owned()
    }

    /// Where to reach registry `host` (e.g. `registry.k8s.io`, `docker.io`).
    pub fn registry(&self, host: &str) -> RegistryEndpoint {
        let to = self
            .rules
            .iter()
            .find(|r| r.from == host)
            .map(|r| r.to.as_str())
            .unwrap_or(host);
        match to.strip_prefix("http://") {
            Some(rest) => RegistryEndpoint {
                host: rest.to_owned(),
                insecure_http: true,
            },
            None => RegistryEndpoint {
                host: to.trim_start_matches("https://").to_owned(),
                insecure_http: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirrors(rules: &[&str]) -> Mirrors {
        Mirrors::new(rules.iter().map(|r| r.parse().unwrap()).collect())
    }

    #[test]
    fn longest_prefix_wins_at_path_boundaries() {
        let m = mirrors(&[
            "https://dl.k8s.io=http://127.0.0.1:1/a",
            "https://dl.k8s.io/release=http://127.0.0.1:1/b/",
        ]);
        assert_eq!(
            m.rewrite_url("https://dl.k8s.io/release/v1.31.0/bin/linux/amd64/kubeadm"),
            "http://127.0.0.1:1/b/v1.31.0/bin/linux/amd64/kubeadm"
        );
        assert_eq!(
            m.rewrite_url("https://dl.k8s.io/x"),
            "http://127.0.0.1:1/a/x"
        );
        assert_eq!(
            m.rewrite_url("https://dl.k8s.io.evil/x"),
            "https://dl.k8s.io.evil/x"
        );
    }

    #[test]
    fn registries_map_hosts_and_schemes() {
        let m = mirrors(&[
            "registry.k8s.io=http://127.0.0.1:5000",
            "docker.io=mirror.example:443",
        ]);
        assert_eq!(
            m.registry("registry.k8s.io"),
            RegistryEndpoint {
                host: "127.0.0.1:5000".into(),
                insecure_http: true
            }
        );
        assert_eq!(
            m.registry("docker.io"),
            RegistryEndpoint {
                host: "mirror.example:443".into(),
                insecure_http: false
            }
        );
        assert_eq!(m.registry("quay.io").host, "quay.io");
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!("nothing".parse::<Mirror>().is_err());
        assert!("=x".parse::<Mirror>().is_err());
    }
}
