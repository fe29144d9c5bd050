//! Durable, all-or-nothing file output.
//!
//! Everything kiln writes is first planned as a [`FileTree`] in memory. A tree is then either
//! published as a new directory (built under a temporary sibling name and renamed into place, so
//! the destination never exists half-written), or written file by file into an existing directory,
//! each file atomically: temp file in the same directory with its final mode, write, fsync,
//! rename, fsync the directory. Temp files get fixed-length [`STAGE_PREFIX`] names (a 255-byte
//! destination name still fits NAME_MAX), the only names kiln's cleanups remove. A batch that
//! must converge after a crash at any point goes through [`journal`].

use std::collections::BTreeMap;
use std::fs::{self, File, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

pub mod journal;

/// Mode of private key files.
pub const MODE_SECRET: u32 = 0o600;
/// Mode of certificates, public keys and configuration files.
pub const MODE_PUBLIC: u32 = 0o644;
/// Mode of directories kiln creates inside an output tree (as kubeadm creates them).
const MODE_DIR: u32 = 0o755;

/// One planned file: its bytes and its permission bits.
#[derive(Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// The file's contents.
    pub contents: Vec<u8>,
    /// Unix permission bits, e.g. `0o600`.
    pub mode: u32,
}

impl std::fmt::Debug for PlannedFile {
    // Contents may be private keys: show only size and mode.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PlannedFile({} bytes, {:o})",
            self.contents.len(),
            self.mode
        )
    }
}

/// A set of files to write, keyed by relative path; nothing touches the disk until it is written.
#[derive(Debug, Default, Clone)]
pub struct FileTree {
    files: BTreeMap<PathBuf, PlannedFile>,
}

impl FileTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Plans `contents` at the relative path `rel` with permission bits `mode`.
    pub fn add(&mut self, rel: impl Into<PathBuf>, contents: impl Into<Vec<u8>>, mode: u32) {
        let contents = contents.into();
        self.files
            .insert(rel.into(), PlannedFile { contents, mode });
    }

    /// Plans every file of `other` under the relative directory `prefix`.
    pub fn add_tree(&mut self, prefix: impl AsRef<Path>, other: FileTree) {
        for (rel, file) in other.files {
            self.files.insert(prefix.as_ref().join(rel), file);
        }
    }

    /// The planned file at `rel`, if any.
    pub fn get(&self, rel: impl AsRef<Path>) -> Option<&PlannedFile> {
        self.files.get(rel.as_ref())
    }

    /// The planned files in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&Path, &PlannedFile)> {
        self.files.iter().map(|(p, f)| (p.as_path(), f))
    }

    /// Planned files that already exist below `dest`.
    pub fn existing_in(&self, dest: &Path) -> Vec<PathBuf> {
        self.files
            .keys()
            .map(|rel| dest.join(rel))
            .filter(|p| p.symlink_metadata().is_ok())
            .collect()
    }

    /// Publishes the tree as the new directory `dest` (mode `dir_mode`): builds it under a
    /// temporary sibling name, fsyncs everything, then renames it into place. Fails, writing
    /// nothing, if `dest` exists.
    pub fn publish_new(&self, dest: &Path, dir_mode: u32) -> Result<()> {
        if dest.symlink_metadata().is_ok() {
            return Err(Error::Exists {
                path: dest.to_owned(),
                hint: "choose a new output directory or remove this one".into(),
            });
        }
        publish(dest, Replace::Never, |staging| {
            // Private while it is filled; `dir_mode` at the end.
            fs::DirBuilder::new()
                .mode(0o700)
                .create(staging)
                .map_err(|e| Error::io(staging, e))?;
            for (rel, file) in &self.files {
                write_file(&staging.join(rel), file)?;
            }
            fsync_tree_dirs(staging, self.files.keys())?;
            set_mode(staging, dir_mode)
        })
    }

    /// Writes every file below `dest` (created if missing), each atomically. Refuses, writing
    /// nothing, if any planned file exists and `overwrite` is false.
    pub fn write_into(&self, dest: &Path, overwrite: bool) -> Result<()> {
        if !overwrite {
            if let Some(path) = self.existing_in(dest).into_iter().next() {
                return Err(Error::Exists {
                    path,
                    hint: "pass --force to replace it".into(),
                });
            }
        }
        for (rel, file) in &self.files {
            write_atomic(&dest.join(rel), &file.contents, file.mode)?;
        }
        Ok(())
    }
}

/// Writes `contents` to `path` atomically with permission bits `mode`: a temp file in the same
/// directory gets the mode before any byte is written, is fsynced and renamed over `path`, and
/// the directory is fsynced. Missing parent directories are created.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    write_atomic_as(path, contents, mode, None)
}

/// [`write_atomic`] with an owner `(uid, gid)` set on the temp file before the rename (then the
/// mode, since a chown clears set-id bits).
pub fn write_atomic_as(
    path: &Path,
    contents: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let staged = stage(path, contents, mode, owner)?;
    remove_stale_temps(&[parent_dir(path)], &[staged.tmp.as_ref()])?;
    File::open(&staged.tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(&staged.tmp, e))?;
    staged
        .tmp
        .persist(path)
        .map_err(|e| Error::io(path, e.error))?;
    fsync_dir(&parent_dir(path))
}

/// A file written and moded under a temporary name beside its destination, not yet visible.
/// [`commit`] makes a batch of them durable and renames them into place.
pub struct Staged {
    tmp: tempfile::TempPath,
    dest: PathBuf,
    /// An exclusive `flock` on the temp file while it is ours: the stale-temp cleanup of other
    /// writers in the same directory leaves it alone (a killed writer's lock goes with it).
    _lock: nix::fcntl::Flock<File>,
}

/// Writes `contents` to a temp file beside `path` with `mode` and `owner` (no fsync yet).
pub fn stage(path: &Path, contents: &[u8], mode: u32, owner: Option<(u32, u32)>) -> Result<Staged> {
    let dir = parent_dir(path);
    create_dirs(&dir)?;
    let (mut tmp, lock) = locked_temp(&dir, mode)?;
    if let Some((uid, gid)) = owner {
        nix::unistd::fchown(
            tmp.as_file(),
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .map_err(|e| Error::io(tmp.path(), e.into()))?;
    }
    // The umask may have narrowed the mode at creation; set it exactly (after the chown, which
    // clears set-id bits).
    set_mode(tmp.path(), mode)?;
    tmp.write_all(contents)
        .map_err(|e| Error::io(tmp.path(), e))?;
    Ok(Staged {
        tmp: tmp.into_temp_path(),
        dest: path.to_owned(),
        _lock: lock,
    })
}

/// A new [`STAGE_PREFIX`]`XXXXXXXXXXXXXXXX` in `dir`, locked before anything is written to it.
/// The name's length does not depend on the destination's, so a 255-byte file name can be
/// staged (a `.NAME.tmp-XXXXXX` name would pass NAME_MAX). Another
/// writer's stale-temp cleanup can only take it in the instant between its creation and the
/// lock; then the lock fails or the name no longer leads to our file, and a new one is made.
fn locked_temp(
    dir: &Path,
    mode: u32,
) -> Result<(tempfile::NamedTempFile, nix::fcntl::Flock<File>)> {
    let mut last = None;
    for _ in 0..5 {
        let tmp = tempfile::Builder::new()
            .prefix(STAGE_PREFIX)
            .rand_bytes(STAGE_RANDOM_LEN)
            .permissions(Permissions::from_mode(mode & 0o777 & !0o022))
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        match lock_temp(&tmp) {
            Ok(lock) if still_named(&tmp) => return Ok((tmp, lock)),
            Ok(_) => last = None,
            Err(e) => last = Some(e),
        }
        // Lost to a cleanup: the name is no longer ours to delete.
        let _ = tmp.into_temp_path().keep();
    }
    Err(last
        .unwrap_or_else(|| Error::io(dir, std::io::Error::other("temp files keep disappearing"))))
}

/// Whether the temp file's name still leads to the file we hold open.
fn still_named(tmp: &tempfile::NamedTempFile) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (tmp.as_file().metadata(), fs::symlink_metadata(tmp.path())) {
        (Ok(ours), Ok(named)) => ours.ino() == named.ino() && ours.dev() == named.dev(),
        _ => false,
    }
}

/// An exclusive lock on `tmp`, held through a second descriptor of the same open file.
fn lock_temp(tmp: &tempfile::NamedTempFile) -> Result<nix::fcntl::Flock<File>> {
    let file = tmp
        .as_file()
        .try_clone()
        .map_err(|e| Error::io(tmp.path(), e))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, errno)| Error::io(tmp.path(), errno.into()))
}

/// Makes every staged file durable (one `syncfs` per filesystem instead of an fsync per file),
/// renames them into place in order, and makes the renames durable. A crash leaves each
/// destination either old or complete, never partial.
pub fn commit(staged: Vec<Staged>) -> Result<()> {
    let dirs: Vec<PathBuf> = staged.iter().map(|s| parent_dir(&s.dest)).collect();
    let ours: Vec<&Path> = staged.iter().map(|s| s.tmp.as_ref()).collect();
    remove_stale_temps(&dirs, &ours)?;
    sync_filesystems(&dirs)?;
    for s in staged {
        let dest = s.dest;
        s.tmp
            .persist(&dest)
            .map_err(|e| Error::io(&dest, e.error))?;
    }
    sync_filesystems(&dirs)
}

/// Removes temp files an earlier, killed writer left in `dirs` (the [`STAGE_PREFIX`] names
/// [`stage`] gives; never another program's `.NAME.tmp-XXXXXX`), except `keep` and those a live writer still holds locked: a crash never
/// leaves partial files behind for long, and concurrent writers never lose theirs.
fn remove_stale_temps(dirs: &[PathBuf], keep: &[&Path]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for dir in dirs.iter().filter(|d| seen.insert(d.as_path())) {
        let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let candidate = is_our_temp(&entry.file_name().to_string_lossy())
                && entry.file_type().is_ok_and(|t| t.is_file())
                && !keep.contains(&path.as_path());
            if candidate {
                remove_if_stale(&path)?;
            }
        }
    }
    Ok(())
}

/// Removes `tmp` unless a live writer holds its lock; the lock is held while removing, so a
/// writer that locks its new temp afterwards finds its name gone (see [`locked_temp`]).
fn remove_if_stale(tmp: &Path) -> Result<()> {
    let Ok(file) = File::open(tmp) else {
        return Ok(());
    };
    let Ok(_held) = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
    else {
        return Ok(());
    };
    match fs::remove_file(tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(tmp, e)),
        _ => Ok(()),
    }
}

/// The start of every name kiln stages a file under (then [`STAGE_RANDOM_LEN`] random letters
/// and digits); the only names kiln's cleanups ever remove.
pub const STAGE_PREFIX: &str = ".kiln-stage-";
/// Length of the random part of a staging name.
const STAGE_RANDOM_LEN: usize = 16;

/// Whether `name` is one of kiln's staging names ([`STAGE_PREFIX`] + 16 letters or digits).
pub fn is_our_temp(name: &str) -> bool {
    name.strip_prefix(STAGE_PREFIX).is_some_and(|suffix| {
        suffix.len() == STAGE_RANDOM_LEN && suffix.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// A new staging name in `dir` (random, [`STAGE_PREFIX`] + 16 hex digits), for a temp the
/// caller creates itself.
pub fn stage_name(dir: &Path) -> Result<PathBuf> {
    let mut random = [0u8; STAGE_RANDOM_LEN / 2];
    getrandom::fill(&mut random)
        .map_err(|e| Error::io(dir, std::io::Error::other(e.to_string())))?;
    Ok(dir.join(format!("{STAGE_PREFIX}{}", hex::encode(random))))
}

/// `syncfs` once for each distinct filesystem holding one of `dirs`.
fn sync_filesystems(dirs: &[PathBuf]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    for dir in dirs {
        let f = File::open(dir).map_err(|e| Error::io(dir, e))?;
        let dev = f.metadata().map_err(|e| Error::io(dir, e))?.dev();
        if seen.insert(dev) {
            nix::unistd::syncfs(&f).map_err(|e| Error::io(dir, e.into()))?;
        }
    }
    Ok(())
}

/// Writes a new file (used inside a private staging directory, where nobody else looks).
fn write_file(path: &Path, file: &PlannedFile) -> Result<()> {
    create_dirs(&parent_dir(path))?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    set_mode(path, file.mode)?;
    f.write_all(&file.contents)
        .map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

fn create_dirs(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(MODE_DIR)
        .create(dir)
        .map_err(|e| Error::io(dir, e))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, Permissions::from_mode(mode)).map_err(|e| Error::io(path, e))
}

/// Fsyncs `root` and every directory that holds a planned file.
fn fsync_tree_dirs<'a>(root: &Path, rels: impl Iterator<Item = &'a PathBuf>) -> Result<()> {
    let mut dirs: Vec<PathBuf> = rels
        .flat_map(|rel| rel.ancestors().skip(1).map(|a| root.join(a)))
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs.iter().try_for_each(|d| fsync_dir(d))
}

/// Fsyncs a directory, making renames and new entries in it durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Renames `from` to `to`, failing if `to` exists (`RENAME_NOREPLACE`).
pub fn rename_no_replace(from: &Path, to: &Path) -> Result<()> {
    rename2(from, to, nix::fcntl::RenameFlags::RENAME_NOREPLACE)
}

/// `renameat2(2)` with `flags`.
fn rename2(from: &Path, to: &Path, flags: nix::fcntl::RenameFlags) -> Result<()> {
    nix::fcntl::renameat2(nix::fcntl::AT_FDCWD, from, nix::fcntl::AT_FDCWD, to, flags)
        .map_err(|e| Error::io(to, e.into()))
}

/// How [`publish`] and [`move_into_place`] treat an existing destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Fail if the destination exists (`RENAME_NOREPLACE`).
    Never,
    /// Replace it: a file by `rename`, a directory by swapping it out atomically
    /// (`RENAME_EXCHANGE`) and then removing the old one, so it is never lost half-way.
    Existing,
}

/// Makes `dest` (a file or a directory) durably and all at once: `fill` writes it under a
/// temporary name beside `dest` (see [`temp_beside`]), which is then fsynced and moved into
/// place as `replace` says, and the directory fsynced. On any error the temporary is removed
/// and `dest` is untouched. One writer per destination at a time: the temporary's name is fixed
/// (so a re-run after a crash removes the leftover), and a second concurrent publisher of the
/// same `dest` would replace it.
pub fn publish<E: From<Error>>(
    dest: &Path,
    replace: Replace,
    fill: impl FnOnce(&Path) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let tmp = temp_beside(dest)?;
    let result = fill(&tmp).and_then(|()| {
        sync_unless_link(&tmp)?;
        Ok(move_into_place(&tmp, dest, replace)?)
    });
    if result.is_err() {
        let _ = remove_any(&tmp);
    }
    result
}

/// fsyncs a file or directory; a symlink has no data of its own to sync (and may dangle).
fn sync_unless_link(path: &Path) -> Result<()> {
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Ok(());
    }
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(path, e))
}

/// `.kiln-partial-HASH` in the directory of `dest`, HASH the first 16 hex digits of the SHA-256
/// of `dest`'s file name: fixed-length (a 255-byte name still fits NAME_MAX) and the same for
/// every run, so a leftover of a crashed run is removed first and a re-run converges. (Not a
/// [`STAGE_PREFIX`] name: those are [`stage`]'s, which the stale-temp cleanup may remove.)
pub fn temp_beside(dest: &Path) -> Result<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let name = dest.file_name().map(|n| n.as_bytes()).unwrap_or(b"out");
    let hash = crate::digest::sha256_hex(name);
    let tmp = parent_dir(dest).join(format!(".kiln-partial-{}", &hash[..16]));
    remove_any(&tmp)?;
    Ok(tmp)
}

/// Moves the finished `from` (beside `dest`, on the same filesystem) to `dest` as `replace`
/// says, and fsyncs the directory.
pub fn move_into_place(from: &Path, dest: &Path, replace: Replace) -> Result<()> {
    let dir_exists = fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir());
    match replace {
        Replace::Never => rename_no_replace(from, dest)?,
        Replace::Existing if dir_exists => {
            rename2(from, dest, nix::fcntl::RenameFlags::RENAME_EXCHANGE)?;
            fsync_dir(&parent_dir(dest))?;
            // `from` now holds the old `dest`.
            return remove_any(from);
        }
        Replace::Existing => fs::rename(from, dest).map_err(|e| Error::io(dest, e))?,
    }
    fsync_dir(&parent_dir(dest))
}

/// Removes the file or directory tree at `path`; nothing there is fine.
fn remove_any(path: &Path) -> Result<()> {
    let removed = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    removed.map_err(|e| Error::io(path, e))
}

/// The directory `path` is in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn sample() -> FileTree {
        let mut t = FileTree::new();
        t.add("a/key", "secret", MODE_SECRET);
        t.add("b.crt", "public", MODE_PUBLIC);
        t
    }

    #[test]
    fn publish_new_writes_modes_and_leaves_no_staging() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        sample().publish_new(&dest, 0o700).unwrap();
        assert_eq!(fs::read_to_string(dest.join("a/key")).unwrap(), "secret");
        assert_eq!(mode_of(&dest.join("a/key")), 0o600);
        assert_eq!(mode_of(&dest.join("b.crt")), 0o644);
        assert_eq!(mode_of(&dest), 0o700);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn publish_new_refuses_existing_destination() {
        let dir = tempfile::tempdir().unwrap();
        let err = sample().publish_new(dir.path(), 0o700).unwrap_err();
        assert!(matches!(err, Error::Exists { .. }), "{err}");
    }

    #[test]
    fn write_into_refuses_existing_files_without_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("b.crt"), "old").unwrap();
        let err = sample().write_into(dir.path(), false).unwrap_err();
        assert!(err.to_string().contains("b.crt"), "{err}");
        assert!(!dir.path().join("a").exists(), "something was written");
        sample().write_into(dir.path(), true).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("b.crt")).unwrap(),
            "public"
        );
    }

    #[test]
    fn write_atomic_replaces_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomic(&p, b"one", 0o644).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(mode_of(&p), 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn staged_files_appear_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("sub/a");
        let staged = vec![stage(&a, b"A", 0o640, None).unwrap()];
        assert!(!a.exists());
        commit(staged).unwrap();
        assert_eq!(fs::read(&a).unwrap(), b"A");
        assert_eq!(mode_of(&a), 0o640);
        assert_eq!(fs::read_dir(dir.path().join("sub")).unwrap().count(), 1);
    }

    #[test]
    fn stale_temps_of_a_killed_writer_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".kiln-stage-Ab12Cd34Ef56Gh78"), "partial").unwrap();
        // Another program's temp names are never ours to remove.
        fs::write(dir.path().join(".a.tmp-Ab12Cd"), "not ours").unwrap();
        fs::write(dir.path().join(".keep.tmp-old"), "not ours").unwrap();
        write_atomic(&dir.path().join("a"), b"A", 0o644).unwrap();
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [".a.tmp-Ab12Cd", ".keep.tmp-old", "a"]);
        let fresh = stage_name(dir.path()).unwrap();
        assert!(is_our_temp(&fresh.file_name().unwrap().to_string_lossy()));
        assert!(
            !is_our_temp(".x.conf.tmp-Zz9xY1")
                && !is_our_temp(".kiln-stage-short")
                && !is_our_temp(".kiln-stage-Ab12Cd34Ef56Gh78x")
        );
    }

    #[test]
    fn a_concurrent_writers_temp_survives_the_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let pending = stage(&dir.path().join("a"), b"A", 0o644, None).unwrap();
        // Another writer in the same directory cleans up stale temps: not this live one.
        write_atomic(&dir.path().join("b"), b"B", 0o644).unwrap();
        commit(vec![pending]).unwrap();
        assert_eq!(fs::read(dir.path().join("a")).unwrap(), b"A");
        assert_eq!(fs::read(dir.path().join("b")).unwrap(), b"B");
    }

    #[test]
    fn writers_on_many_threads_in_one_directory_all_land() {
        let dir = tempfile::tempdir().unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let dir = dir.path();
                s.spawn(move || {
                    for n in 0..50 {
                        let path = dir.join(format!("f{t}-{n}"));
                        write_atomic(&path, b"x", 0o644).unwrap();
                    }
                });
            }
        });
        let count = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(count, 200, "no temp left, no file lost");
    }

    #[test]
    fn names_of_255_bytes_are_staged_and_published() {
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("n".repeat(255));
        write_atomic(&long, b"A", 0o644).unwrap();
        publish::<Error>(&long, Replace::Existing, |tmp| {
            fs::write(tmp, "B").map_err(|e| Error::io(tmp, e))
        })
        .unwrap();
        assert_eq!(fs::read(&long).unwrap(), b"B");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn debug_hides_contents() {
        let t = sample();
        assert!(!format!("{t:?}").contains("secret"));
    }

    #[test]
    fn publish_replaces_a_file_and_a_directory_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let (f, d) = (dir.path().join("f"), dir.path().join("d"));
        for text in ["one", "two"] {
            publish::<Error>(&f, Replace::Existing, |tmp| {
                fs::write(tmp, text).map_err(|e| Error::io(tmp, e))
            })
            .unwrap();
            publish::<Error>(&d, Replace::Existing, |tmp| {
                fs::create_dir(tmp).map_err(|e| Error::io(tmp, e))?;
                fs::write(tmp.join(text), text).map_err(|e| Error::io(tmp, e))
            })
            .unwrap();
        }
        assert_eq!(fs::read_to_string(&f).unwrap(), "two");
        assert!(d.join("two").exists() && !d.join("one").exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn publish_failure_removes_the_temp_and_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, "old").unwrap();
        let err = publish(&f, Replace::Existing, |tmp| {
            fs::write(tmp, "partial").unwrap();
            Err(Error::invalid("boom"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "boom");
        assert_eq!(fs::read_to_string(&f).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let err = publish::<Error>(&f, Replace::Never, |tmp| {
            fs::write(tmp, "new").map_err(|e| Error::io(tmp, e))
        })
        .unwrap_err();
        assert!(err.to_string().contains("exists"), "{err}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
