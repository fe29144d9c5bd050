//! The target root: resolving user-data paths to host paths without ever leaving the root, and
//! reading what is already in it (its user and group databases, files kiln keeps or appends
//! to) through kiln-core's [`InRoot`]: links resolve inside the root, only regular files are
//! read, never more than [`MAX_READ`] bytes.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::Metadata;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use kiln_core::inroot::{InRoot, Last};

use crate::userdata::{Result, UserDataError};

/// How many symlinks one path may pass through (as Linux's MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

/// The most kiln reads of any one file already in the root (a user database, an
/// authorized_keys file, a file appended to).
pub const MAX_READ: u64 = 16 << 20;

/// The databases the shadow tools (`useradd --root`) and kiln read: they must be regular files.
const DATABASES: [&str; 4] = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"];

/// A planned node with the host path it lands on (from [`Root::resolve`]).
pub struct Resolved<'a> {
    /// The planned entry.
    pub node: &'a crate::plan::Node,
    /// Where it lands on the host.
    pub host_path: PathBuf,
}

/// The directory user-data is applied to (`/` on a node, a scratch directory in tests).
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
    inside: Arc<InRoot>,
}

impl Root {
    /// A root at `dir`, which must be an existing directory.
    pub fn new(dir: &Path) -> Result<Self> {
        let dir = dir
            .canonicalize()
            .map_err(|e| UserDataError::io("--root", dir, e))?;
        let inside = InRoot::open(&dir).map_err(|e| UserDataError::new("--root", e.to_string()))?;
        Ok(Root {
            dir,
            inside: Arc::new(inside),
        })
    }

    /// The root directory on the host.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The host path for `path` (absolute, as seen inside the root). Symlinks in the parent
    /// components are followed as a chroot would follow them (absolute targets start again at
    /// the root); the last component is not followed. A path that would leave the root through
    /// `..` or a symlink is an error naming `origin`.
    pub fn resolve(&self, path: &Path, origin: &str) -> Result<PathBuf> {
        let escape = || {
            UserDataError::new(
                origin,
                format!(
                    "{} escapes the root through a symlink or ..",
                    path.display()
                ),
            )
        };
        let mut pending: VecDeque<OsString> = components(path);
        let last = pending
            .pop_back()
            .ok_or_else(|| UserDataError::new(origin, "the path is the root itself"))?;
        let mut current: Vec<OsString> = Vec::new();
        let mut links = 0;
        while let Some(part) = pending.pop_front() {
            if part == ".." {
                current.pop().ok_or_else(escape)?;
                continue;
            }
            let candidate = self.join(&current).join(&part);
            match std::fs::read_link(&candidate) {
                Ok(target) => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(UserDataError::new(
                            origin,
                            format!("{}: too many levels of symlinks", path.display()),
                        ));
                    }
                    if target.is_absolute() {
                        current.clear();
                    }
                    for (i, c) in components(&target).into_iter().enumerate() {
                        pending.insert(i, c);
                    }
                }
                Err(_) => current.push(part),
            }
        }
        if last == ".." {
            return Err(escape());
        }
        Ok(self.join(&current).join(last))
    }

    /// Like [`Root::resolve`], but a symlink at the last component is followed too, inside the
    /// root, as a program that opens the path would follow it: where cloud-init's writes land
    /// (`/etc/resolv.conf` -> `/run/systemd/resolve/stub-resolv.conf`).
    pub fn resolve_following(&self, path: &Path, origin: &str) -> Result<PathBuf> {
        let mut inside = path.to_path_buf();
        for _ in 0..MAX_SYMLINKS {
            let host = self.resolve(&inside, origin)?;
            let Ok(target) = std::fs::read_link(&host) else {
                return Ok(host);
            };
            let dir = host.parent().and_then(|p| p.strip_prefix(&self.dir).ok());
            inside = Path::new("/")
                .join(dir.unwrap_or(Path::new("")))
                .join(target);
        }
        Err(UserDataError::new(
            origin,
            format!("{}: too many levels of symlinks", path.display()),
        ))
    }

    fn join(&self, parts: &[OsString]) -> PathBuf {
        parts.iter().fold(self.dir.clone(), |p, c| p.join(c))
    }

    /// The metadata of `path` (absolute, as seen inside the root), following symlinks inside
    /// the root; `None` if it does not exist or cannot be looked at.
    pub fn metadata(&self, path: &Path) -> Option<Metadata> {
        // Parents as `resolve` sees them (a `..` after a missing directory still means its
        // parent), then the last component by the kernel, inside the root.
        let host = self.resolve(path, "metadata").ok()?;
        let inside = self.inside_path(&host, "metadata").ok()?;
        self.inside.metadata(&inside, Last::Follow).ok().flatten()
    }

    /// Whether anything is at `path` (absolute, as seen inside the root), following symlinks
    /// inside the root.
    pub fn has(&self, path: &Path) -> bool {
        self.metadata(path).is_some()
    }

    /// The contents of the regular file at `path` (absolute, as seen inside the root),
    /// following symlinks inside the root; `None` if it does not exist. A FIFO, device or
    /// directory, or a file over [`MAX_READ`] bytes, is an error naming `origin`.
    pub fn read(&self, path: &Path, origin: &str) -> Result<Option<Vec<u8>>> {
        self.inside
            .read(path, Last::Follow, MAX_READ)
            .map_err(|e| UserDataError::new(origin, e.to_string()))
    }

    /// The contents of the file at the host path `host` (from [`Root::resolve`]) that a write
    /// there keeps: `None` if there is none, or a symlink or directory is there (the write
    /// replaces a link, and refuses a directory). A FIFO, device or socket is an error naming
    /// `origin`, as is a file over [`MAX_READ`] bytes.
    pub fn existing(&self, host: &Path, origin: &str) -> Result<Option<Vec<u8>>> {
        let inside = self.inside_path(host, origin)?;
        let meta = self
            .inside
            .metadata(&inside, Last::NoFollow)
            .map_err(|e| UserDataError::new(origin, e.to_string()))?;
        match meta {
            Some(m) if m.is_symlink() || m.is_dir() => Ok(None),
            Some(_) => self
                .inside
                .read(&inside, Last::NoFollow, MAX_READ)
                .map_err(|e| UserDataError::new(origin, e.to_string())),
            None => Ok(None),
        }
    }

    /// `host` (below the root directory) as a path inside the root.
    fn inside_path(&self, host: &Path, origin: &str) -> Result<PathBuf> {
        host.strip_prefix(&self.dir)
            .map(|rel| Path::new("/").join(rel))
            .map_err(|_| {
                UserDataError::new(origin, format!("{} is not below the root", host.display()))
            })
    }

    /// Checks that the user and group databases, where present, are regular files of at most
    /// [`MAX_READ`] bytes: kiln and the shadow tools would otherwise block on a FIFO or read a
    /// device without end.
    pub fn check_databases(&self) -> Result<()> {
        for db in DATABASES {
            self.read(Path::new(db), db)?;
        }
        Ok(())
    }

    /// Looks `name` up in the root's /etc/passwd: `(uid, gid, home)`.
    pub fn user(&self, name: &str) -> Option<(u32, u32, String)> {
        self.database("/etc/passwd", name).and_then(|f| {
            Some((
                f.get(1)?.parse().ok()?,
                f.get(2)?.parse().ok()?,
                f.get(4)?.clone(),
            ))
        })
    }

    /// Looks `name` up in the root's /etc/group: the gid.
    pub fn group(&self, name: &str) -> Option<u32> {
        self.database("/etc/group", name)
            .and_then(|f| f.get(1)?.parse().ok())
    }

    /// The fields after the name of the line for `name` in a colon-separated database (an
    /// unreadable one, which [`Root::check_databases`] reports, has no lines).
    fn database(&self, file: &str, name: &str) -> Option<Vec<String>> {
        let bytes = match self.read(Path::new(file), file) {
            Ok(bytes) => bytes?,
            Err(e) => {
                tracing::warn!("{e}");
                return None;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        text.lines().find_map(|line| {
            let mut fields = line.split(':');
            (fields.next() == Some(name)).then(|| fields.map(str::to_owned).collect())
        })
    }
}

fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_are_followed_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path()).unwrap();
        std::fs::create_dir_all(tmp.path().join("usr/etc")).unwrap();
        symlink("/usr/etc", tmp.path().join("etc")).unwrap();
        symlink("../..", tmp.path().join("usr/etc/up")).unwrap();
        let r = root.resolve(Path::new("/etc/x.conf"), "f").unwrap();
        assert_eq!(r, root.dir().join("usr/etc/x.conf"));
        let r = root.resolve(Path::new("/etc/up/etc/y"), "f").unwrap();
        assert_eq!(r, root.dir().join("usr/etc/y"));
        // The last component is not followed: writing /etc replaces the link itself.
        assert_eq!(
            root.resolve(Path::new("/etc"), "f").unwrap(),
            root.dir().join("etc")
        );
    }

    #[test]
    fn a_final_symlink_is_followed_inside_the_root_when_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path()).unwrap();
        std::fs::create_dir_all(tmp.path().join("etc")).unwrap();
        std::fs::create_dir_all(tmp.path().join("run/resolve")).unwrap();
        symlink(
            "../run/resolve/stub.conf",
            tmp.path().join("etc/resolv.conf"),
        )
        .unwrap();
        symlink("/etc/resolv.conf", tmp.path().join("etc/again")).unwrap();
        let want = root.dir().join("run/resolve/stub.conf");
        for path in ["/etc/resolv.conf", "/etc/again"] {
            assert_eq!(root.resolve_following(Path::new(path), "f").unwrap(), want);
        }
        symlink("../../../../../tmp/x", tmp.path().join("etc/out")).unwrap();
        assert_eq!(
            root.resolve_following(Path::new("/etc/out"), "f")
                .unwrap_err()
                .field,
            "f"
        );
        symlink("loop", tmp.path().join("etc/loop")).unwrap();
        assert!(root.resolve_following(Path::new("/etc/loop"), "f").is_err());
    }

    #[test]
    fn databases_are_read_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("passwd"), "intruder:x:0:0::/:/bin/sh\n").unwrap();
        let r = tmp.path().join("r");
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::create_dir_all(r.join("usr/etc")).unwrap();
        std::fs::write(r.join("usr/etc/group"), "wheel:x:10:\n").unwrap();
        symlink(host.path().join("passwd"), r.join("etc/passwd")).unwrap();
        symlink("../usr/etc/group", r.join("etc/group")).unwrap();
        let root = Root::new(&r).unwrap();
        assert_eq!(root.user("intruder"), None);
        assert_eq!(root.group("wheel"), Some(10));
        root.check_databases().unwrap();
        std::fs::remove_file(r.join("etc/group")).unwrap();
        nix::unistd::mkfifo(&r.join("etc/group"), nix::sys::stat::Mode::S_IRUSR).unwrap();
        let err = root.check_databases().unwrap_err();
        assert_eq!(err.field, "/etc/group");
        assert!(err.message.contains("not a regular file (a FIFO)"), "{err}");
        assert_eq!(root.group("wheel"), None);
    }

    #[test]
    fn existing_contents_are_those_of_a_regular_file_only() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path()).unwrap();
        let at = |p: &str| root.resolve(Path::new(p), "f").unwrap();
        std::fs::write(tmp.path().join("file"), "kept").unwrap();
        std::fs::create_dir(tmp.path().join("dir")).unwrap();
        symlink("/file", tmp.path().join("link")).unwrap();
        nix::unistd::mkfifo(&tmp.path().join("fifo"), nix::sys::stat::Mode::S_IRUSR).unwrap();
        assert_eq!(root.existing(&at("/file"), "f").unwrap().unwrap(), b"kept");
        for replaced in ["/dir", "/link", "/missing"] {
            assert_eq!(
                root.existing(&at(replaced), "f").unwrap(),
                None,
                "{replaced}"
            );
        }
        let err = root.existing(&at("/fifo"), "files[0]").unwrap_err();
        assert_eq!(err.field, "files[0]");
        assert!(
            err.message.contains("fifo: not a regular file (a FIFO)"),
            "{err}"
        );
        assert!(root.has(Path::new("/link")) && !root.has(Path::new("/missing")));
    }

    #[test]
    fn escaping_symlinks_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path()).unwrap();
        symlink("../../../../..", tmp.path().join("out")).unwrap();
        let err = root
            .resolve(Path::new("/out/etc/passwd"), "storage.files[0].path")
            .unwrap_err();
        assert_eq!(err.field, "storage.files[0].path");
        assert!(err.message.contains("escapes the root"), "{err}");
        symlink("loop", tmp.path().join("loop")).unwrap();
        assert!(root
            .resolve(Path::new("/loop/x"), "f")
            .unwrap_err()
            .message
            .contains("too many"));
    }
}
