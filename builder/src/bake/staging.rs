//! The build directory beside `--out` (`.kiln-build-XXXXXX`, same filesystem, so the result can
//! be renamed into place), and the clean-up of those a killed build left behind.
//!
//! A live build holds an exclusive `flock` on its directory for as long as it runs; the kernel
//! drops it when the process dies, however it dies. So a build directory whose lock can be
//! taken belongs to no running build, and the next build beside the same `--out` removes it.
//! One that was made in the last [`GRACE`] is left alone: its build may not have locked it yet.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use nix::fcntl::{Flock, FlockArg};

/// The name prefix of build directories.
const PREFIX: &str = ".kiln-build-";
/// How old an unlocked build directory must be to count as abandoned (it is created, then
/// locked, a few microseconds apart).
const GRACE: Duration = Duration::from_secs(10);

/// A build directory, locked while this value lives and removed when it is dropped.
pub struct Staging {
    dir: tempfile::TempDir,
    /// `None` on a filesystem without `flock` (the clean-up cannot lock it either, so it stays).
    _lock: Option<Flock<File>>,
}

impl Staging {
    /// A new locked build directory beside `out` (its parent is created if missing), after
    /// removing the build directories of builds that are no longer running.
    pub fn beside(out: &Path) -> anyhow::Result<Self> {
        let parent = kiln_core::fsutil::parent_dir(out);
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        remove_abandoned(&parent);
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in(&parent)
            .with_context(|| format!("creating a build directory in {}", parent.display()))?;
        let lock = match try_lock(dir.path()) {
            Ok(Some(lock)) => Some(lock),
            Ok(None) => anyhow::bail!("{}: locked by another build", dir.path().display()),
            Err(e) => {
                tracing::warn!(dir = %dir.path().display(), "cannot lock the build directory: {e}");
                None
            }
        };
        Ok(Staging { dir, _lock: lock })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes every build directory in `parent` that no running build holds; failures are
/// warnings (a leftover is untidy, not a reason to fail this build).
pub fn remove_abandoned(parent: &Path) {
    for dir in candidates(parent) {
        match abandoned(&dir) {
            Ok(Some(lock)) => {
                let removed = std::fs::remove_dir_all(&dir);
                drop(lock);
                match removed {
                    Ok(()) => tracing::info!(
                        dir = %dir.display(),
                        "removed the build directory of a build that is no longer running"
                    ),
                    Err(e) => tracing::warn!(dir = %dir.display(), "cannot remove: {e}"),
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(dir = %dir.display(), "cannot check: {e}"),
        }
    }
}

/// The directories named `.kiln-build-*` in `parent` (not following symlinks).
fn candidates(parent: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(PREFIX))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// The lock of `dir` if it is abandoned: unlocked and older than [`GRACE`].
fn abandoned(dir: &Path) -> std::io::Result<Option<Flock<File>>> {
    let modified = std::fs::symlink_metadata(dir)?.modified()?;
    let age = SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default();
    if age < GRACE {
        return Ok(None);
    }
    try_lock(dir)
}

/// An exclusive lock on directory `dir`, or `None` when a build holds it.
fn try_lock(dir: &Path) -> std::io::Result<Option<Flock<File>>> {
    let file = File::open(dir)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(errno.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes `dir` look `age` old.
    fn age(dir: &Path, age: Duration) {
        File::open(dir)
            .unwrap()
            .set_modified(SystemTime::now() - age)
            .unwrap();
    }

    #[test]
    fn only_abandoned_build_directories_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let live = Staging::beside(&out).unwrap();
        age(live.path(), Duration::from_secs(3600));
        let dead = tmp.path().join(".kiln-build-dead01");
        std::fs::create_dir_all(dead.join("amd64/usr")).unwrap();
        std::fs::write(dead.join("amd64/usr/kubeadm"), "x").unwrap();
        age(&dead, Duration::from_secs(3600));
        let fresh = tmp.path().join(".kiln-build-fresh1");
        std::fs::create_dir(&fresh).unwrap();
        let other = tmp.path().join("kiln-build-not-ours");
        std::fs::create_dir(&other).unwrap();
        age(&other, Duration::from_secs(3600));

        let second = Staging::beside(&out).unwrap();
        assert!(!dead.exists(), "the dead build's directory is still there");
        assert!(
            live.path().is_dir(),
            "a running build's directory was removed"
        );
        assert!(fresh.is_dir() && other.is_dir());
        assert!(second.path().is_dir());
        let path = second.path().to_owned();
        drop(second);
        assert!(!path.exists());
    }
}
