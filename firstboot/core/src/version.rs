//! Kubernetes release versions (`v1.31.2`) and the kubeadm config API each kubeadm speaks.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The oldest kubeadm kiln renders for: v1beta3 arrived in kubeadm 1.22.
pub const OLDEST_KUBEADM_MINOR: u32 = 22;
/// The first kubeadm that reads `kubeadm.k8s.io/v1beta4`.
pub const V1BETA4_MINOR: u32 = 31;
/// The first kubeadm that no longer reads `kubeadm.k8s.io/v1beta3` (kubernetes/kubernetes#136016,
/// CHANGELOG-1.37: "removed the v1beta3 API which was deprecated since v1.31").
pub const V1BETA3_REMOVED_MINOR: u32 = 37;

/// A Kubernetes version `vMAJOR.MINOR.PATCH[-PRE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeVersion {
    /// Major version (1).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
    /// Pre-release suffix without the dash, e.g. `rc.1`.
    pub pre: Option<String>,
}

impl KubeVersion {
    /// The kubeadm config API version this kubeadm reads best: v1beta4 from 1.31, else v1beta3.
    /// Still v1beta4 from 1.37: kubeadm 1.37's `kubeadm.k8s.io/v1` is a placeholder that cannot
    /// be used yet. Errors for kubeadm older than 1.22 (v1beta2 only), which kiln does not render
    /// for.
    pub fn kubeadm_api(&self) -> Result<ApiVersion, Error> {
        if self.major != 1 || self.minor < OLDEST_KUBEADM_MINOR {
            return Err(Error::invalid(format!(
                "kubeadm {self} is too old: kiln needs kubeadm >= v1.{OLDEST_KUBEADM_MINOR} (kubeadm.k8s.io/v1beta3)"
            )));
        }
        Ok(if self.minor >= V1BETA4_MINOR {
            ApiVersion::V1beta4
        } else {
            ApiVersion::V1beta3
        })
    }

    /// Whether this kubeadm can read `api` at all: v1beta3 from 1.22 to 1.36, v1beta4 from 1.31.
    pub fn reads(&self, api: ApiVersion) -> bool {
        match api {
            ApiVersion::V1beta3 => self.minor < V1BETA3_REMOVED_MINOR,
            ApiVersion::V1beta4 => self.minor >= V1BETA4_MINOR,
        }
    }
}

impl FromStr for KubeVersion {
    type Err = Error;

    /// Parses `v1.31.2`, `1.31.2` or `v1.32.0-rc.1`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || {
            Error::invalid(format!(
                "{s:?} is not a Kubernetes version; use the form v1.31.2"
            ))
        };
        let rest = s.strip_prefix('v').unwrap_or(s);
        let (core, pre) = match rest.split_once('-') {
            Some((c, p)) if !p.is_empty() => (c, Some(p.to_owned())),
            Some(_) => return Err(bad()),
            None => (rest, None),
        };
        let nums: Vec<u32> = core
            .split('.')
            .map(|n| {
                (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| n.parse().ok())
                    .flatten()
            })
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        match nums[..] {
            [major, minor, patch] => Ok(KubeVersion {
                major,
                minor,
                patch,
                pre,
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        Ok(())
    }
}

/// The kubeadm configuration API group.
pub const API_GROUP: &str = "kubeadm.k8s.io";

/// A kubeadm configuration API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiVersion {
    /// `kubeadm.k8s.io/v1beta3`: kubeadm 1.22 to 1.30, still read by 1.31 to 1.36; kubeadm 1.37
    /// removed it.
    V1beta3,
    /// `kubeadm.k8s.io/v1beta4`: kubeadm 1.31 and later; extraArgs are name/value lists.
    #[default]
    V1beta4,
}

impl ApiVersion {
    /// The short name, `v1beta3` or `v1beta4`.
    pub fn name(self) -> &'static str {
        match self {
            ApiVersion::V1beta3 => "v1beta3",
            ApiVersion::V1beta4 => "v1beta4",
        }
    }

    /// The `apiVersion` value, e.g. `kubeadm.k8s.io/v1beta4`.
    pub fn api_version(self) -> String {
        format!("{API_GROUP}/{}", self.name())
    }
}

impl FromStr for ApiVersion {
    type Err = Error;

    /// Accepts `v1beta3`, `v1beta4` or the full `kubeadm.k8s.io/...` form. `v1` (kubeadm 1.37's
    /// placeholder) is refused with its own message.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.strip_prefix("kubeadm.k8s.io/").unwrap_or(s) {
            "v1beta3" => Ok(ApiVersion::V1beta3),
            "v1beta4" => Ok(ApiVersion::V1beta4),
            "v1" => Err(Error::invalid(format!(
                "{API_GROUP}/v1 is a placeholder in kubeadm v1.37, not usable yet; use v1beta4"
            ))),
            _ => Err(Error::invalid(format!(
                "unknown kubeadm API version {s:?}; use v1beta4 (kubeadm >= 1.31) or v1beta3 (kubeadm < 1.37)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let v: KubeVersion = "v1.31.2".parse().unwrap();
        assert_eq!((v.major, v.minor, v.patch), (1, 31, 2));
        assert_eq!(v.to_string(), "v1.31.2");
        assert_eq!(
            "1.32.0-rc.1".parse::<KubeVersion>().unwrap().to_string(),
            "v1.32.0-rc.1"
        );
        for bad in ["", "v1.31", "v1.31.x", "1..2", "v1.31.2-", "latest"] {
            assert!(bad.parse::<KubeVersion>().is_err(), "{bad}");
        }
    }

    #[test]
    fn api_version_switches_at_1_31() {
        let api = |s: &str| s.parse::<KubeVersion>().unwrap().kubeadm_api();
        assert_eq!(api("v1.30.9").unwrap(), ApiVersion::V1beta3);
        assert_eq!(api("v1.31.0").unwrap(), ApiVersion::V1beta4);
        assert!(api("v1.21.0").unwrap_err().to_string().contains("too old"));
        let old: KubeVersion = "v1.30.1".parse().unwrap();
        assert!(!old.reads(ApiVersion::V1beta4));
        assert!(old.reads(ApiVersion::V1beta3));
    }

    #[test]
    fn v1beta3_is_gone_from_1_37_and_v1_is_not_used() {
        let v = |s: &str| s.parse::<KubeVersion>().unwrap();
        assert!(v("v1.36.3").reads(ApiVersion::V1beta3));
        assert!(v("v1.36.3").reads(ApiVersion::V1beta4));
        assert!(!v("v1.37.0-rc.0").reads(ApiVersion::V1beta3));
        assert!(v("v1.37.0").reads(ApiVersion::V1beta4));
        assert_eq!(v("v1.37.0").kubeadm_api().unwrap(), ApiVersion::V1beta4);
    }
}
