//! The run's memory across crashes and reboots: which steps are complete. Written atomically
//! after every step, so the next boot resumes at the first unfinished one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The completed steps, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Names of completed steps.
    pub completed: Vec<String>,
}

impl State {
    /// Loads the state file; a missing file is a fresh start, a corrupt one is an error (a
    /// half-provisioned node must not silently start over).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                anyhow::anyhow!(
                    "{}: corrupt state file ({e}); inspect it, then remove it to start over",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
        }
    }

    /// Whether step `name` completed.
    pub fn done(&self, name: &str) -> bool {
        self.completed.iter().any(|s| s == name)
    }

    /// Records `name` as complete and saves the state durably.
    pub fn complete(&mut self, name: &str, path: &Path) -> anyhow::Result<()> {
        if !self.done(name) {
            self.completed.push(name.to_owned());
        }
        let bytes = serde_json::to_vec_pretty(self)?;
        kiln_core::fsutil::write_atomic(path, &bytes, 0o600)?;
        Ok(())
    }
}

/// Where the run keeps its files, below the node's root.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `/var/lib/kiln`.
    pub dir: PathBuf,
}

impl Paths {
    /// The paths below `root`.
    pub fn new(root: &Path) -> Self {
        Paths {
            dir: root.join("var/lib/kiln"),
        }
    }

    /// `state.json`: completed steps.
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// `status.json`: steps, timings, result; never secrets.
    pub fn status(&self) -> PathBuf {
        self.dir.join("status.json")
    }

    /// `done`: written only after a successful run; the unit's `ConditionPathExists=!` guard.
    pub fn done(&self) -> PathBuf {
        self.dir.join("done")
    }

    /// The join service's answer (0600: it holds the token), reused by a resumed run until the
    /// token expires: the service gives one token per instance.
    pub fn join_answer(&self) -> PathBuf {
        self.dir.join("join-answer.json")
    }

    /// The fetched user-data and metadata.
    pub fn fetched(&self) -> PathBuf {
        self.dir.join("fetched")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_rejects_corruption() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state.json");
        let mut s = State::load(&path).unwrap();
        assert!(!s.done("fetch"));
        s.complete("fetch", &path).unwrap();
        s.complete("fetch", &path).unwrap();
        assert_eq!(State::load(&path).unwrap().completed, ["fetch"]);
        std::fs::write(&path, "{not json").unwrap();
        assert!(State::load(&path)
            .unwrap_err()
            .to_string()
            .contains("corrupt state file"));
    }
}
