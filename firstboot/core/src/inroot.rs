//! Reading inside a root directory without ever leaving it: the one place kiln opens a file in a
//! tree it does not own (a node's root, `--root`, `--sys-root`, a scratch root in tests).
//!
//! Paths are resolved by the kernel with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: as
//! in a chroot, `..` and absolute symlinks stop at the root, and `/proc` magic links are refused.
//! Only regular files are read: the node is first looked at through an `O_PATH` descriptor (a
//! FIFO or a device is never opened for reading), then opened `O_NONBLOCK` and checked again (a
//! FIFO swapped in meanwhile cannot block), and never more than a cap is read (`/dev/zero` or a
//! huge file cannot eat memory). Kernels before 5.6 have no `openat2`: there the same
//! resolution is done one component at a time ([`InRoot::walk`]).

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io::{ErrorKind, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, Mode, SFlag};

use crate::{Error, Result};

/// How often an `openat2` that the kernel asks to retry (`EAGAIN`: a rename raced the
/// resolution) is tried before giving up.
const RETRIES: usize = 16;
/// How many symlinks one path may pass through (as Linux's MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

/// Whether a symlink in the last component of a path is followed (inside the root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Last {
    /// Follow it, as `stat` and `open` do.
    Follow,
    /// Look at the link itself, as `lstat` does; reading a symlink is refused.
    NoFollow,
}

/// A directory in which paths resolve as if it were `/`.
#[derive(Debug)]
pub struct InRoot {
    dir: OwnedFd,
    path: PathBuf,
}

impl InRoot {
    /// Opens the existing directory `path` as a root.
    pub fn open(path: &Path) -> Result<Self> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let dir =
            nix::fcntl::open(path, flags, Mode::empty()).map_err(|e| Error::io(path, e.into()))?;
        Ok(InRoot {
            dir,
            path: path.to_owned(),
        })
    }

    /// The root directory on the host.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The host path of `inside` (absolute or relative to the root), for messages only: it is
    /// not how `inside` is resolved.
    pub fn host_path(&self, inside: &Path) -> PathBuf {
        self.path.join(inside.strip_prefix("/").unwrap_or(inside))
    }

    /// The metadata of `inside`, `None` if it does not exist.
    pub fn metadata(&self, inside: &Path, last: Last) -> Result<Option<Metadata>> {
        match self.open_inside(inside, OFlag::O_PATH, last) {
            Ok(fd) => File::from(fd)
                .metadata()
                .map(Some)
                .map_err(|e| self.io(inside, e)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(inside, e)),
        }
    }

    /// The contents of the regular file `inside`, `None` if it does not exist. Anything else (a
    /// FIFO, a device, a directory, a symlink with [`Last::NoFollow`]) is an error, and so is a
    /// file over `max` bytes, found without reading more than `max + 1` bytes.
    pub fn read(&self, inside: &Path, last: Last, max: u64) -> Result<Option<Vec<u8>>> {
        match self.metadata(inside, last)? {
            Some(meta) => self.check(inside, &meta, max)?,
            None => return Ok(None),
        }
        let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        let file = match self.open_inside(inside, flags, last) {
            Ok(fd) => File::from(fd),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(inside, e)),
        };
        // It may have been replaced between the look and the open.
        let meta = file.metadata().map_err(|e| self.io(inside, e))?;
        self.check(inside, &meta, max)?;
        let mut bytes = Vec::new();
        file.take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| self.io(inside, e))?;
        if bytes.len() as u64 > max {
            return Err(self.io(inside, too_large(max)));
        }
        Ok(Some(bytes))
    }

    /// [`InRoot::read`] as UTF-8 text.
    pub fn read_to_string(&self, inside: &Path, last: Last, max: u64) -> Result<Option<String>> {
        self.read(inside, last, max)?
            .map(|b| {
                String::from_utf8(b).map_err(|_| {
                    self.io(
                        inside,
                        std::io::Error::new(ErrorKind::InvalidData, "not UTF-8"),
                    )
                })
            })
            .transpose()
    }

    /// Refuses anything but a regular file of at most `max` bytes (as `stat` reports it;
    /// files in /proc report 0, so the read is capped as well).
    fn check(&self, inside: &Path, meta: &Metadata, max: u64) -> Result<()> {
        if !meta.is_file() {
            let what = std::io::Error::new(
                ErrorKind::InvalidInput,
                format!("not a regular file ({})", kind(meta)),
            );
            return Err(self.io(inside, what));
        }
        if meta.len() > max {
            return Err(self.io(inside, too_large(max)));
        }
        Ok(())
    }

    /// `openat2` of `inside` below the root with `flags` (plus `O_CLOEXEC`, and `O_NOFOLLOW`
    /// for [`Last::NoFollow`]).
    fn open_inside(&self, inside: &Path, flags: OFlag, last: Last) -> std::io::Result<OwnedFd> {
        let mut flags = flags | OFlag::O_CLOEXEC;
        if last == Last::NoFollow {
            flags |= OFlag::O_NOFOLLOW;
        }
        let how = OpenHow::new()
            .flags(flags)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let rel = match inside.strip_prefix("/") {
            Ok(r) if r.as_os_str().is_empty() => Path::new("."),
            Ok(r) => r,
            Err(_) => inside,
        };
        let mut tries = 0;
        loop {
            match nix::fcntl::openat2(&self.dir, rel, how) {
                Err(Errno::EAGAIN) if tries < RETRIES => tries += 1,
                Err(Errno::ENOSYS) => return self.walk(rel, flags, last),
                other => return other.map_err(std::io::Error::from),
            }
        }
    }

    /// `RESOLVE_IN_ROOT` in user space, for kernels without `openat2`: every component is
    /// opened `O_PATH | O_NOFOLLOW` from its directory's descriptor, symlinks are read and
    /// resolved from the root (absolute) or their directory (relative), and `..` never climbs
    /// above the root. The last component is opened with `flags` (which hold `O_NOFOLLOW`
    /// unless it is to be followed, and then it is no symlink any more).
    fn walk(&self, rel: &Path, flags: OFlag, last: Last) -> std::io::Result<OwnedFd> {
        let path_flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut dirs: Vec<OwnedFd> = Vec::new();
        let mut pending: VecDeque<OsString> = parts(rel.as_os_str());
        let mut links = 0;
        while let Some(part) = pending.pop_front() {
            if part == ".." {
                dirs.pop();
                continue;
            }
            let dir = dirs.last().unwrap_or(&self.dir);
            let fd = nix::fcntl::openat(dir, part.as_os_str(), path_flags, Mode::empty())?;
            let is_link =
                SFlag::from_bits_truncate(fstat(&fd)?.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK;
            let is_last = pending.is_empty();
            if is_link && (!is_last || last == Last::Follow) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Errno::ELOOP.into());
                }
                let target = nix::fcntl::readlinkat(&fd, "")?;
                if target.as_bytes().starts_with(b"/") {
                    dirs.clear();
                }
                for (i, p) in parts(&target).into_iter().enumerate() {
                    pending.insert(i, p);
                }
            } else if is_last {
                // O_NOFOLLOW: a link swapped in since the look is not followed out.
                let flags = flags | OFlag::O_NOFOLLOW;
                return Ok(nix::fcntl::openat(
                    dir,
                    part.as_os_str(),
                    flags,
                    Mode::empty(),
                )?);
            } else {
                dirs.push(fd);
            }
        }
        let dir = dirs.last().unwrap_or(&self.dir);
        Ok(nix::fcntl::openat(dir, ".", flags, Mode::empty())?)
    }

    fn io(&self, inside: &Path, error: std::io::Error) -> Error {
        Error::io(self.host_path(inside), error)
    }
}

/// The components of `path` without the empty ones and `.`.
fn parts(path: &OsStr) -> VecDeque<OsString> {
    path.as_bytes()
        .split(|b| *b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .map(|p| OsStr::from_bytes(p).to_owned())
        .collect()
}

/// The error for a file over `max` bytes.
fn too_large(max: u64) -> std::io::Error {
    std::io::Error::new(
        ErrorKind::FileTooLarge,
        format!("larger than the limit of {max} bytes"),
    )
}

/// What kind of node `meta` describes, for messages.
fn kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    match () {
        _ if t.is_dir() => "a directory",
        _ if t.is_symlink() => "a symlink",
        _ if t.is_fifo() => "a FIFO",
        _ if t.is_socket() => "a socket",
        _ if t.is_char_device() => "a character device",
        _ if t.is_block_device() => "a block device",
        _ => "not a file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn fifo(path: &Path) {
        nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600)).unwrap();
    }

    /// A root `r` beside a directory `outside` holding a secret.
    fn setup() -> (tempfile::TempDir, InRoot) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("r/etc")).unwrap();
        std::fs::create_dir(tmp.path().join("outside")).unwrap();
        std::fs::write(tmp.path().join("outside/secret"), "host secret").unwrap();
        let root = InRoot::open(&tmp.path().join("r")).unwrap();
        (tmp, root)
    }

    #[test]
    fn links_resolve_inside_the_root() {
        let (tmp, root) = setup();
        let r = tmp.path().join("r");
        std::fs::write(r.join("etc/real"), "inside").unwrap();
        symlink("/etc/real", r.join("abs")).unwrap();
        symlink("../../../../etc/real", r.join("etc/up")).unwrap();
        let host_secret = tmp.path().join("outside/secret");
        symlink(&host_secret, r.join("host")).unwrap();
        symlink("../outside/secret", r.join("rel")).unwrap();
        for p in ["/abs", "/etc/up", "etc/real"] {
            let got = root.read(Path::new(p), Last::Follow, 100).unwrap();
            assert_eq!(got.as_deref(), Some(&b"inside"[..]), "{p}");
        }
        // Both escape attempts land inside the root, where nothing is.
        for p in ["/host", "/rel"] {
            assert_eq!(root.read(Path::new(p), Last::Follow, 100).unwrap(), None);
            assert!(root.metadata(Path::new(p), Last::Follow).unwrap().is_none());
        }
        let err = root
            .read(Path::new("/abs"), Last::NoFollow, 100)
            .unwrap_err();
        assert!(
            err.to_string().contains("not a regular file (a symlink)"),
            "{err}"
        );
        assert!(root
            .metadata(Path::new("/abs"), Last::NoFollow)
            .unwrap()
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let (tmp, root) = setup();
        let r = tmp.path().join("r");
        fifo(&r.join("etc/fifo"));
        symlink("/etc/fifo", r.join("etc/to-fifo")).unwrap();
        for p in ["/etc/fifo", "/etc/to-fifo"] {
            let err = root.read(Path::new(p), Last::Follow, 100).unwrap_err();
            assert!(
                err.to_string().contains("not a regular file (a FIFO)"),
                "{err}"
            );
        }
        let err = root.read(Path::new("/etc"), Last::Follow, 100).unwrap_err();
        assert!(err.to_string().contains("(a directory)"), "{err}");
        // The host's /dev/zero, as the root itself: refused, nothing read.
        let host = InRoot::open(Path::new("/")).unwrap();
        let err = host
            .read(Path::new("/dev/zero"), Last::Follow, 100)
            .unwrap_err();
        assert!(err.to_string().contains("a character device"), "{err}");
    }

    #[test]
    fn the_fallback_walk_resolves_as_openat2_does() {
        let (tmp, root) = setup();
        let r = tmp.path().join("r");
        std::fs::create_dir_all(r.join("usr/etc")).unwrap();
        std::fs::write(r.join("usr/etc/passwd"), "x").unwrap();
        symlink("/usr/etc", r.join("etc/alt")).unwrap();
        symlink("../usr/etc/passwd", r.join("etc/passwd")).unwrap();
        symlink("../../../../../../outside/secret", r.join("up")).unwrap();
        symlink(tmp.path().join("outside"), r.join("abs")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        fifo(&r.join("fifo"));
        let id = |fd: std::io::Result<OwnedFd>| {
            fd.map(|fd| {
                let st = fstat(&fd).unwrap();
                (st.st_dev, st.st_ino)
            })
            .map_err(|e| e.raw_os_error())
        };
        let flags = [
            (OFlag::O_PATH | OFlag::O_CLOEXEC, Last::Follow),
            (
                OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
                Last::NoFollow,
            ),
            (
                OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                Last::Follow,
            ),
        ];
        let paths = [
            "/",
            "etc",
            "etc/passwd",
            "/etc/alt/passwd",
            "etc/alt/../etc/passwd",
            "../../etc",
            "up",
            "abs/secret",
            "loop",
            "loop/x",
            "fifo",
            "etc/passwd/x",
            "missing/x",
        ];
        for (flags, last) in flags {
            for p in paths {
                let rel = match p.trim_start_matches('/') {
                    "" => Path::new("."),
                    r => Path::new(r),
                };
                assert_eq!(
                    id(root.walk(rel, flags, last)),
                    id(root.open_inside(Path::new(p), flags, last)),
                    "{p} {flags:?} {last:?}"
                );
            }
        }
    }

    #[test]
    fn the_cap_is_enforced_before_and_while_reading() {
        let (tmp, root) = setup();
        let r = tmp.path().join("r");
        std::fs::write(r.join("etc/small"), "12345").unwrap();
        assert!(root.read(Path::new("etc/small"), Last::Follow, 5).is_ok());
        let err = root
            .read(Path::new("etc/small"), Last::Follow, 4)
            .unwrap_err();
        assert!(
            err.to_string().contains("larger than the limit of 4 bytes"),
            "{err}"
        );
        assert!(err.to_string().contains("etc/small"), "{err}");
        // /proc files report a size of 0: only the capped read notices.
        let host = InRoot::open(Path::new("/")).unwrap();
        let err = host
            .read(Path::new("/proc/self/maps"), Last::Follow, 1)
            .unwrap_err();
        assert!(err.to_string().contains("larger than the limit"), "{err}");
    }
}
