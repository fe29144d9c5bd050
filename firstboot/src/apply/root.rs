//! The target root: resolving user-data paths to host paths without ever leaving the root, and
//! reading its user and group databases.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::userdata::{Result, UserDataError};

/// How many symlinks one path may pass through (as Linux's MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

/// The directory user-data is applied to (`/` on a node, a scratch directory in tests).
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// A root at `dir`, which must be an existing directory.
    pub fn new(dir: &Path) -> Result<Self> {
        let dir = dir
            .canonicalize()
            .map_err(|e| UserDataError::io("--root", dir, e))?;
        Ok(Root { dir })
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

    /// Looks `name` up in the root's /etc/passwd: `(uid, gid, home)`.
    pub fn user(&self, name: &str) -> Option<(u32, u32, String)> {
        self.database("etc/passwd", name).and_then(|f| {
            Some((
                f.get(1)?.parse().ok()?,
                f.get(2)?.parse().ok()?,
                f.get(4)?.clone(),
            ))
        })
    }

    /// Looks `name` up in the root's /etc/group: the gid.
    pub fn group(&self, name: &str) -> Option<u32> {
        self.database("etc/group", name)
            .and_then(|f| f.get(1)?.parse().ok())
    }

    /// The fields after the name of the line for `name` in a colon-separated database.
    fn database(&self, file: &str, name: &str) -> Option<Vec<String>> {
        let text = std::fs::read_to_string(self.dir.join(file)).ok()?;
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
