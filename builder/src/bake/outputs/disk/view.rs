//! The node's root as a copy-on-write view of the cached Debian root, so a warm build copies
//! nothing: an overlayfs whose lower layer is the cache's unpacked tree (overlayfs never writes
//! it) and whose upper layer, in the build's scratch directory, takes every write of the layout.
//! Where overlayfs cannot be mounted (a work directory on a filesystem it refuses as an upper
//! layer: overlayfs itself, as in a container) the tree is copied instead
//! (`cp -a --reflink=auto`: instant on btrfs and XFS).
//!
//! The mounts live in a mount namespace of the build's own ([`in_private_mounts`]): they are
//! seen by the build and the programs it starts, never by the host, and they vanish with the
//! build, a killed one included; the scratch directory holds plain directories afterwards.

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use kiln_core::command::Run;
use nix::mount::{mount, MsFlags};

/// Runs `work` on a thread of its own, in a mount namespace of its own with every mount
/// private (none propagates to the host's); the namespace and its mounts end with the thread.
pub fn in_private_mounts<R: Send>(
    work: impl FnOnce() -> anyhow::Result<R> + Send,
) -> anyhow::Result<R> {
    std::thread::scope(|scope| {
        let thread = scope.spawn(|| {
            // Only this thread (and what it starts) moves: unshare gives it its own fs state.
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                .context("making a mount namespace for the disk build (it runs as root)")?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .context("making the disk build's mounts private")?;
            work()
        });
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Makes `root` (a new directory) the writable view of `lower` in `scratch`: an overlay mount,
/// or a copy where overlayfs is refused. Returns whether it is an overlay.
pub fn root_view(lower: &Path, scratch: &Path, root: &Path) -> anyhow::Result<bool> {
    let (upper, work) = (scratch.join("overlay/upper"), scratch.join("overlay/work"));
    for dir in [&upper, &work, &root.to_path_buf()] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        escape(lower),
        escape(&upper),
        escape(&work)
    );
    match mount(
        Some("kiln-root"),
        root,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    ) {
        Ok(()) => Ok(true),
        Err(errno) => {
            tracing::warn!(%errno, work_dir = %scratch.display(), "overlayfs refused the work directory's filesystem; copying the cached Debian root instead");
            copy_tree(lower, root, "copying the cached Debian root")?;
            Ok(false)
        }
    }
}

/// An overlayfs mount option's path: `\`, `,` and `:` escaped.
fn escape(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        if matches!(c, '\\' | ',' | ':') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Copies everything in the directory `from` into the directory `to`, as it is (owners, modes,
/// times, xattrs; shared extents where the filesystem can). `what` names it in an error.
pub fn copy_tree(from: &Path, to: &Path, what: &str) -> anyhow::Result<()> {
    Run::new(
        Command::new("cp")
            .args(["-a", "--reflink=auto"])
            .arg(from.join("."))
            .arg(to),
        what,
    )
    .run()?;
    Ok(())
}

/// Mounts the directory `from` at `at` (which must exist) as well.
pub fn bind(from: &Path, at: &Path) -> anyhow::Result<()> {
    mount(Some(from), at, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .with_context(|| format!("bind-mounting {} at {}", from.display(), at.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_paths_are_escaped() {
        assert_eq!(escape(Path::new("/a,b:c\\d")), "/a\\,b\\:c\\\\d");
        assert_eq!(escape(Path::new("/plain/dir")), "/plain/dir");
    }

    /// Needs root (mount namespaces): the e2e and CI run as root.
    #[test]
    fn the_view_takes_writes_and_leaves_the_lower_tree_and_the_host_alone() {
        if !nix::unistd::Uid::effective().is_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let (lower, scratch) = (tmp.path().join("lower"), tmp.path().join("scratch"));
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/hostname"), "cache").unwrap();
        let root = scratch.join("root");
        let overlay = in_private_mounts(|| {
            let overlay = root_view(&lower, &scratch, &root)?;
            std::fs::write(root.join("etc/hostname"), "node")?;
            std::fs::write(root.join("etc/new"), "x")?;
            assert_eq!(std::fs::read_to_string(root.join("etc/hostname"))?, "node");
            Ok(overlay)
        })
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(lower.join("etc/hostname")).unwrap(),
            "cache"
        );
        assert!(!lower.join("etc/new").exists());
        if overlay {
            // The host never saw the mount: the mount point is an empty directory here.
            assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
        }
    }

    /// Needs root. A scratch directory on an overlayfs (a container's root): overlayfs refuses
    /// it as an upper layer, so the tree is copied, and the copy takes the writes.
    #[test]
    fn a_scratch_directory_overlayfs_refuses_gets_a_copy() {
        if !nix::unistd::Uid::effective().is_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let lower = t.join("lower");
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/hostname"), "cache").unwrap();
        let overlay = in_private_mounts(|| {
            // A container-like filesystem: an overlayfs holding the scratch directory.
            let (c_lower, c) = (t.join("c-lower"), t.join("container"));
            std::fs::create_dir_all(&c_lower)?;
            root_view(&c_lower, &t.join("c-scratch"), &c)?;
            let scratch = c.join("scratch");
            let root = scratch.join("root");
            let overlay = root_view(&lower, &scratch, &root)?;
            std::fs::write(root.join("etc/hostname"), "node")?;
            assert_eq!(std::fs::read_to_string(root.join("etc/hostname"))?, "node");
            Ok(overlay)
        })
        .unwrap();
        assert!(!overlay, "overlayfs took an overlayfs upper layer");
        assert_eq!(
            std::fs::read_to_string(lower.join("etc/hostname")).unwrap(),
            "cache"
        );
    }
}
