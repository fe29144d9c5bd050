//! The target architectures kiln builds for, with the names each ecosystem gives them.

use serde::Deserialize;

/// A target architecture.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// x86-64.
    Amd64,
    /// 64-bit ARM.
    Arm64,
}

impl Arch {
    /// The name Kubernetes, Go and OCI platforms use (`amd64`).
    pub fn kube(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The name systemd uses (`ARCHITECTURE=` in extension-release, `%a` in sysupdate).
    pub fn systemd(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86-64",
            Arch::Arm64 => "arm64",
        }
    }
}
