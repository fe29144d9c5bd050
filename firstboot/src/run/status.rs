//! `status.json`: what the run did, for operators and for `kiln-firstboot status`: each step's
//! outcome and duration, the result, the failed step and why, and the machine identity that must
//! be unique in the cluster. Never secrets: error texts pass through [`crate::redact::Redactor`].

use anyhow::Context as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step name.
    pub name: String,
    /// `done`, `skipped` (completed by an earlier run) or `failed`.
    pub outcome: String,
    /// Seconds it took.
    pub seconds: f64,
}

/// The whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// `running`, `success` or `failed`.
    pub result: String,
    /// The step that failed.
    pub failed_step: Option<String>,
    /// Why it failed (redacted).
    pub error: Option<String>,
    /// Every step so far.
    pub steps: Vec<StepRecord>,
    /// `/sys/class/dmi/id/product_uuid`.
    pub product_uuid: Option<String>,
    /// MAC addresses of the network interfaces.
    pub macs: Vec<String>,
    /// kiln-firstboot's peak resident memory so far, in KiB (`VmHWM` of /proc/self/status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_kib: Option<u64>,
}

/// This process's peak resident set size in KiB (`VmHWM` in /proc/self/status), if readable.
pub fn peak_rss_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Status {
    /// Writes the status atomically (mode 0644: it holds no secrets).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(self)?;
        kiln_core::fsutil::write_atomic(path, &bytes, 0o644)?;
        Ok(())
    }

    /// Reads a status file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
        Ok(serde_json::from_slice(&bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("status.json");
        let s = Status {
            result: "success".into(),
            ..Status::default()
        };
        s.save(&p).unwrap();
        assert_eq!(Status::load(&p).unwrap(), s);
    }
}
