//! A journaled batch commit: files, symlinks and hard links staged beside their destinations
//! and renamed into place so that a run killed at any point is finished, or its staging
//! removed, by the next one.
//!
//! The protocol, each record written atomically and durably (0600):
//!
//! 1. **staging**: the journal names the batch (`id`) and every `(temp, destination)` pair,
//!    the temps' names ([`super::STAGE_PREFIX`] + random) chosen before any is created;
//! 2. the temps are created with their contents, mode and owner, then made durable (`syncfs`);
//! 3. **commit**: the journal is rewritten in the commit state;
//! 4. every temp is renamed over its destination (a directory there is swapped out and removed);
//! 5. the batch `id` is recorded in the done file, then the journal is removed.
//!
//! [`Journal::recover`] handles a journal a killed run left: in the staging state the listed
//! temps are removed (nothing was renamed yet: a roll-back); in the commit state every temp
//! that still exists is renamed (a temp already gone was renamed before the kill), then the id
//! is recorded: a roll-forward. Only the names the journal lists are ever removed.
//!
//! Test hook: in builds with debug assertions, `KILN_TEST_CRASH_AT=N` aborts the process at the
//! N-th crash point (each record, each temp, each rename), so tests can kill a run at every step.

use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::{create_dirs, parent_dir, remove_any, set_mode, stage_name, sync_filesystems};
use crate::{Error, Result};

/// What one destination becomes.
pub enum Content<'a> {
    /// A regular file with these bytes, permission bits and `(uid, gid)`.
    File {
        /// The bytes.
        contents: &'a [u8],
        /// Permission bits.
        mode: u32,
        /// Owner; `None` keeps the process's.
        owner: Option<(u32, u32)>,
    },
    /// A symbolic link to `target`, owned by `owner`.
    Symlink {
        /// The link's target, as written.
        target: &'a Path,
        /// Owner of the link itself.
        owner: Option<(u32, u32)>,
    },
    /// A hard link to the existing file `source` (or to a file earlier in the same batch).
    HardLink {
        /// The file linked to.
        source: &'a Path,
    },
}

/// One destination of a batch.
pub struct Item<'a> {
    /// Where it lands.
    pub dest: PathBuf,
    /// What it becomes.
    pub content: Content<'a>,
}

/// What [`Journal::recover`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// No journal: the last run finished (or never began a commit).
    Nothing,
    /// A run was killed while staging: its temps were removed, nothing had been renamed.
    RolledBack,
    /// A run was killed while renaming: the rest were renamed and the batch recorded as done.
    RolledForward {
        /// The batch id.
        id: String,
    },
}

/// A journal file and the file recording the last finished batch.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
    done: PathBuf,
}

/// The state a journal was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Staging,
    Commit,
}

/// A parsed journal.
struct Record {
    id: String,
    state: State,
    entries: Vec<(PathBuf, PathBuf)>,
}

const MAGIC: &str = "kiln-journal 1";

impl Journal {
    /// A journal at `path`, finished batches recorded in `done`.
    pub fn new(path: impl Into<PathBuf>, done: impl Into<PathBuf>) -> Self {
        Journal {
            path: path.into(),
            done: done.into(),
        }
    }

    /// The id of the last batch that finished, if any.
    pub fn done_id(&self) -> Result<Option<String>> {
        match fs::read_to_string(&self.done) {
            Ok(text) => Ok(Some(text.trim().to_owned()).filter(|t| !t.is_empty())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&self.done, e)),
        }
    }

    /// Finishes or rolls back the batch of a killed run (see the module docs).
    pub fn recover(&self) -> Result<Recovered> {
        let text = match fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Recovered::Nothing),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        let record = parse(&text).ok_or_else(|| {
            Error::invalid(format!(
                "{}: not a kiln journal; remove it to continue",
                self.path.display()
            ))
        })?;
        match record.state {
            State::Staging => {
                remove_temps(&record.entries)?;
                self.remove()?;
                Ok(Recovered::RolledBack)
            }
            State::Commit => {
                self.finish(&record.id, &record.entries)?;
                Ok(Recovered::RolledForward { id: record.id })
            }
        }
    }

    /// Writes `items` as one batch named `id` (see the module docs). On an error before the
    /// renames the temps and the journal are removed and no destination changed.
    pub fn commit(&self, id: &str, items: &[Item<'_>]) -> Result<()> {
        let entries = items
            .iter()
            .map(|i| Ok((stage_name(&parent_dir(&i.dest))?, i.dest.clone())))
            .collect::<Result<Vec<_>>>()?;
        self.write(id, State::Staging, &entries)?;
        let staged = stage_all(items, &entries).and_then(|()| sync_filesystems(&dirs(&entries)));
        if let Err(e) = staged {
            let _ = remove_temps(&entries);
            let _ = self.remove();
            return Err(e);
        }
        self.write(id, State::Commit, &entries)?;
        self.finish(id, &entries)
    }

    /// Renames every temp that still exists, records `id` as done and removes the journal.
    fn finish(&self, id: &str, entries: &[(PathBuf, PathBuf)]) -> Result<()> {
        for (tmp, dest) in entries {
            rename_into_place(tmp, dest)?;
            crash_point("rename");
        }
        sync_filesystems(&dirs(entries))?;
        super::write_atomic(&self.done, format!("{id}\n").as_bytes(), 0o600)?;
        crash_point("done");
        self.remove()
    }

    /// Writes the journal record durably.
    fn write(&self, id: &str, state: State, entries: &[(PathBuf, PathBuf)]) -> Result<()> {
        let mut text = format!("{MAGIC}\nid {id}\nstate {}\n", state_word(state));
        for (tmp, dest) in entries {
            let (t, d) = (tmp.as_os_str().as_bytes(), dest.as_os_str().as_bytes());
            text.push_str(&format!("entry {} {}\n", hex::encode(t), hex::encode(d)));
        }
        super::write_atomic(&self.path, text.as_bytes(), 0o600)?;
        crash_point("journal");
        Ok(())
    }

    fn remove(&self) -> Result<()> {
        remove_any(&self.path)?;
        super::fsync_dir(&parent_dir(&self.path))
    }
}

fn state_word(state: State) -> &'static str {
    match state {
        State::Staging => "staging",
        State::Commit => "commit",
    }
}

/// The journal in `text`; `None` if it is not one (ids have no whitespace).
fn parse(text: &[u8]) -> Option<Record> {
    let text = std::str::from_utf8(text).ok()?;
    let mut lines = text.lines();
    (lines.next()? == MAGIC).then_some(())?;
    let id = lines.next()?.strip_prefix("id ")?.to_owned();
    let state = match lines.next()?.strip_prefix("state ")? {
        "staging" => State::Staging,
        "commit" => State::Commit,
        _ => return None,
    };
    let path = |h: &str| -> Option<PathBuf> {
        let bytes = hex::decode(h).ok()?;
        Some(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
    };
    let entries = lines
        .map(|l| {
            let mut f = l.strip_prefix("entry ")?.split(' ');
            Some((path(f.next()?)?, path(f.next()?)?))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Record { id, state, entries })
}

/// Creates every temp of a batch; a hard link to a file of the same batch links its temp.
fn stage_all(items: &[Item<'_>], entries: &[(PathBuf, PathBuf)]) -> Result<()> {
    for (item, (tmp, _)) in items.iter().zip(entries) {
        create_dirs(&parent_dir(tmp))?;
        match &item.content {
            Content::File {
                contents,
                mode,
                owner,
            } => stage_file(tmp, contents, *mode, *owner)?,
            Content::Symlink { target, owner } => stage_symlink(tmp, target, *owner)?,
            Content::HardLink { source } => {
                let planned = entries.iter().find(|(_, d)| d == source).map(|(t, _)| t);
                fs::hard_link(planned.map_or(*source, PathBuf::as_path), tmp)
                    .map_err(|e| Error::io(tmp, e))?
            }
        }
        crash_point("stage");
    }
    Ok(())
}

/// A new file at `tmp`: owner first, then the exact mode (a chown clears set-id bits), then
/// the bytes.
fn stage_file(tmp: &Path, contents: &[u8], mode: u32, owner: Option<(u32, u32)>) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|e| Error::io(tmp, e))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(|e| Error::io(tmp, e))?;
    }
    set_mode(tmp, mode)?;
    f.write_all(contents).map_err(|e| Error::io(tmp, e))
}

fn stage_symlink(tmp: &Path, target: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    std::os::unix::fs::symlink(target, tmp).map_err(|e| Error::io(tmp, e))?;
    match owner {
        Some((uid, gid)) => {
            std::os::unix::fs::lchown(tmp, Some(uid), Some(gid)).map_err(|e| Error::io(tmp, e))
        }
        None => Ok(()),
    }
}

/// Renames `tmp` over `dest`; a directory at `dest` is swapped out (`RENAME_EXCHANGE`) and then
/// removed. A missing temp was renamed before; a directory at `tmp` is the swapped-out old one
/// (kiln never stages directories), which a killed run had not yet removed.
fn rename_into_place(tmp: &Path, dest: &Path) -> Result<()> {
    match fs::symlink_metadata(tmp) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(tmp, e)),
        Ok(m) if m.is_dir() => return remove_any(tmp),
        Ok(_) => {}
    }
    if fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir()) {
        super::rename2(tmp, dest, nix::fcntl::RenameFlags::RENAME_EXCHANGE)?;
        return remove_any(tmp);
    }
    fs::rename(tmp, dest).map_err(|e| Error::io(dest, e))
}

/// Removes the temps a batch lists (only kiln staging names, never a directory).
fn remove_temps(entries: &[(PathBuf, PathBuf)]) -> Result<()> {
    for (tmp, _) in entries {
        let ours = tmp
            .file_name()
            .is_some_and(|n| super::is_our_temp(&n.to_string_lossy()));
        let is_dir = fs::symlink_metadata(tmp).is_ok_and(|m| m.is_dir());
        if ours && !is_dir {
            remove_any(tmp)?;
        }
    }
    Ok(())
}

fn dirs(entries: &[(PathBuf, PathBuf)]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = entries.iter().map(|(_, d)| parent_dir(d)).collect();
    dirs.sort();
    dirs.dedup();
    dirs.retain(|d| d.exists());
    dirs
}

/// The test hook of the module docs; nothing in builds without debug assertions.
fn crash_point(what: &str) {
    #[cfg(debug_assertions)]
    {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static PASSED: AtomicUsize = AtomicUsize::new(0);
        let at = std::env::var("KILN_TEST_CRASH_AT").ok();
        if let Some(n) = at.and_then(|v| v.parse::<usize>().ok()) {
            if PASSED.fetch_add(1, Ordering::SeqCst) + 1 == n {
                eprintln!("KILN_TEST_CRASH_AT={n}: aborting after {what}");
                std::process::abort();
            }
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = what;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(dir: &Path) -> Journal {
        Journal::new(dir.join("state/journal"), dir.join("state/done"))
    }

    fn file(dest: PathBuf, text: &'static str) -> Item<'static> {
        Item {
            dest,
            content: Content::File {
                contents: text.as_bytes(),
                mode: 0o640,
                owner: None,
            },
        }
    }

    #[test]
    fn a_batch_lands_and_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir(d.join("old")).unwrap();
        fs::write(d.join("old/x"), "x").unwrap();
        let j = journal(d);
        let items = [
            file(d.join("a/f"), "A"),
            Item {
                dest: d.join("a/h"),
                content: Content::HardLink {
                    source: &d.join("a/f"),
                },
            },
            Item {
                dest: d.join("old"),
                content: Content::Symlink {
                    target: Path::new("a"),
                    owner: None,
                },
            },
        ];
        j.commit("id1", &items).unwrap();
        assert_eq!(fs::read(d.join("a/h")).unwrap(), b"A");
        assert_eq!(fs::read_link(d.join("old")).unwrap(), Path::new("a"));
        assert_eq!(j.done_id().unwrap().as_deref(), Some("id1"));
        assert!(!d.join("state/journal").exists());
        assert_eq!(j.recover().unwrap(), Recovered::Nothing);
        let names: Vec<_> = fs::read_dir(d.join("a")).unwrap().collect();
        assert_eq!(names.len(), 2, "no temp left");
    }

    #[test]
    fn a_commit_record_is_rolled_forward_and_staging_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let j = journal(d);
        let (t1, t2) = (
            d.join(".kiln-stage-0000000000000001"),
            d.join(".kiln-stage-0000000000000002"),
        );
        fs::write(&t2, "two").unwrap();
        // t1 was renamed before the kill; t2 was not.
        fs::write(d.join("one"), "one").unwrap();
        let entries = [(t1.clone(), d.join("one")), (t2.clone(), d.join("two"))];
        j.write("id2", State::Commit, &entries).unwrap();
        assert_eq!(
            j.recover().unwrap(),
            Recovered::RolledForward { id: "id2".into() }
        );
        assert_eq!(fs::read(d.join("two")).unwrap(), b"two");
        assert_eq!(j.done_id().unwrap().as_deref(), Some("id2"));

        fs::write(&t1, "partial").unwrap();
        fs::write(d.join(".other.tmp-abcdef"), "not ours").unwrap();
        j.write("id3", State::Staging, &[(t1.clone(), d.join("one"))])
            .unwrap();
        assert_eq!(j.recover().unwrap(), Recovered::RolledBack);
        assert!(!t1.exists() && d.join(".other.tmp-abcdef").exists());
        assert_eq!(fs::read(d.join("one")).unwrap(), b"one");
        assert_eq!(j.done_id().unwrap().as_deref(), Some("id2"));
    }

    #[test]
    fn a_journal_that_is_not_ours_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        fs::create_dir_all(dir.path().join("state")).unwrap();
        fs::write(dir.path().join("state/journal"), "garbage").unwrap();
        assert!(j
            .recover()
            .unwrap_err()
            .to_string()
            .contains("not a kiln journal"));
    }
}
