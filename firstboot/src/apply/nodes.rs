//! Writes the validated nodes: directories first (each made, owned and moded in place, which a
//! re-run repeats harmlessly), then every file and link in one journaled commit
//! ([`kiln_core::fsutil::journal`]): staged beside its destination with mode and owner, made
//! durable, renamed into place, so a run killed at any point is finished by the next. A file or
//! link that already is exactly what is planned (bytes, mode, owner; target) is left alone.

use kiln_core::fsutil::journal::{Content, Item, Journal};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::root::{Resolved, Root};
use crate::plan::{Directory, File, Link, Node, Owner, Principal};
use crate::userdata::{Result, UserDataError};

/// Default mode of new files and directories (Ignition and cloud-init).
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

/// A file's final state, computed before anything is written.
struct Planned {
    host: PathBuf,
    shown: PathBuf,
    bytes: Vec<u8>,
    mode: u32,
    owner: (u32, u32),
}

/// A link's final state.
struct PlannedLink<'a> {
    link: &'a Link,
    host: PathBuf,
    /// The host path of a hard link's target.
    source: Option<PathBuf>,
    owner: (u32, u32),
}

/// Applies the validated nodes: directories, then files and links as the journaled batch `id`.
pub fn apply(nodes: &[Resolved<'_>], root: &Root, journal: &Journal, id: &str) -> Result<()> {
    for r in nodes {
        if let Node::Directory(d) = r.node {
            directory(d, &r.host_path, ids(&d.owner, root, &d.origin)?)?;
        }
    }
    let files = planned_files(nodes, root)?;
    let links = planned_links(nodes, root, &files)?;
    let files: Vec<&Planned> = files.iter().filter(|p| !unchanged(p, root)).collect();
    let batch = |path: &Path| files.iter().any(|p| p.host == path);
    let links: Vec<&PlannedLink<'_>> = links.iter().filter(|l| !link_in_place(l, &batch)).collect();
    let mut items: Vec<Item<'_>> = files.iter().map(|p| file_item(p)).collect();
    items.extend(links.iter().map(|l| link_item(l)));
    journal
        .commit(id, &items)
        .map_err(|e| UserDataError::new("storage", e.to_string()))?;
    for p in files {
        tracing::info!(path = %p.shown.display(), bytes = p.bytes.len(), mode = format!("{:04o}", p.mode), "wrote file");
    }
    for l in links {
        tracing::info!(path = %l.link.path.display(), target = %l.link.target.display(), hard = l.link.hard, "created link");
    }
    Ok(())
}

fn file_item(p: &Planned) -> Item<'_> {
    Item {
        dest: p.host.clone(),
        content: Content::File {
            contents: &p.bytes,
            mode: p.mode,
            owner: Some(p.owner),
        },
    }
}

fn link_item<'a>(l: &'a PlannedLink<'_>) -> Item<'a> {
    let content = match &l.source {
        Some(source) => Content::HardLink { source },
        None => Content::Symlink {
            target: &l.link.target,
            owner: Some(l.owner),
        },
    };
    Item {
        dest: l.host.clone(),
        content,
    }
}

/// Every file's final state, in order; a second entry for one path (cloud-config appends)
/// builds on the first.
fn planned_files(nodes: &[Resolved<'_>], root: &Root) -> Result<Vec<Planned>> {
    let mut out: Vec<Planned> = Vec::new();
    for r in nodes {
        let Node::File(f) = r.node else { continue };
        let owner = ids(&f.owner, root, &f.origin)?;
        let prior = out.iter().position(|p| p.host == r.host_path);
        let planned = plan_file(f, &r.host_path, owner, prior.map(|i| &out[i]), root)?;
        match prior {
            Some(i) => out[i] = planned,
            None => out.push(planned),
        }
    }
    Ok(out)
}

/// Every link with its owner and, for hard links, the target's host path.
fn planned_links<'a>(
    nodes: &[Resolved<'a>],
    root: &Root,
    files: &[Planned],
) -> Result<Vec<PlannedLink<'a>>> {
    let mut out = Vec::new();
    for r in nodes {
        let Node::Link(l) = r.node else { continue };
        let owner = ids(&l.owner, root, &l.origin)?;
        let source = match l.hard {
            true => Some(root.resolve(&l.target, &format!("{}.target", l.origin))?),
            false => None,
        };
        out.push(PlannedLink {
            link: l,
            owner: symlink_default_owner(l, &r.host_path, root, owner, files),
            host: r.host_path.clone(),
            source,
        });
    }
    Ok(out)
}

/// Whether `p` is already on disk exactly: a regular file with its bytes, mode and owner.
fn unchanged(p: &Planned, root: &Root) -> bool {
    let Ok(meta) = fs::symlink_metadata(&p.host) else {
        return false;
    };
    meta.is_file()
        && meta.mode() & 0o7777 == p.mode
        && (meta.uid(), meta.gid()) == p.owner
        && root
            .existing(&p.host, "storage")
            .is_ok_and(|b| b.as_deref() == Some(&p.bytes[..]))
}

/// Whether a link is already in place: a symlink with its target and owner, or a hard link to
/// its target's inode (unless that target is rewritten in this batch).
fn link_in_place(l: &PlannedLink<'_>, in_batch: &dyn Fn(&Path) -> bool) -> bool {
    let Ok(meta) = fs::symlink_metadata(&l.host) else {
        return false;
    };
    match &l.source {
        Some(source) => {
            !in_batch(source)
                && fs::symlink_metadata(source)
                    .is_ok_and(|s| (s.dev(), s.ino()) == (meta.dev(), meta.ino()))
        }
        None => {
            meta.file_type().is_symlink()
                && (meta.uid(), meta.gid()) == l.owner
                && fs::read_link(&l.host).is_ok_and(|t| t == l.link.target)
        }
    }
}

/// Whether the existing file at `host` already holds exactly what `f` plans (an `overwrite:
/// false` file that a killed run wrote counts as done).
pub fn holds(f: &File, host: &Path, root: &Root) -> bool {
    let Ok(owner) = ids(&f.owner, root, &f.origin) else {
        return false;
    };
    plan_file(f, host, owner, None, root).is_ok_and(|p| unchanged(&p, root))
}

/// A symlink without an explicit owner takes the owner of the node it points to, as Ignition
/// does (Ignition stats the new link); kiln resolves the target inside the root (a file of the
/// same batch by its planned owner), where Ignition would look up absolute targets on the host.
fn symlink_default_owner(
    l: &Link,
    host: &Path,
    root: &Root,
    (uid, gid): (u32, u32),
    files: &[Planned],
) -> (u32, u32) {
    if l.hard || (l.owner.user.is_some() && l.owner.group.is_some()) {
        return (uid, gid);
    }
    let inside = if l.target.is_absolute() {
        l.target.clone()
    } else {
        let dir = host
            .parent()
            .and_then(|p| p.strip_prefix(root.dir()).ok())
            .unwrap_or(Path::new(""));
        Path::new("/").join(dir).join(&l.target)
    };
    let target = root.resolve(&inside, &l.origin).ok();
    let planned = target
        .as_ref()
        .and_then(|t| files.iter().find(|p| &p.host == t))
        .map(|p| p.owner);
    let existing = || {
        let m = root.metadata(&inside)?;
        Some((m.uid(), m.gid()))
    };
    match planned.or_else(existing) {
        Some((tu, tg)) => (
            if l.owner.user.is_some() { uid } else { tu },
            if l.owner.group.is_some() { gid } else { tg },
        ),
        None => (uid, gid),
    }
}

/// Numeric `(uid, gid)` of an owner, names looked up in the root (after users were created).
pub fn ids(owner: &Owner, root: &Root, origin: &str) -> Result<(u32, u32)> {
    let uid = match &owner.user {
        None => 0,
        Some(Principal::Id(id)) => *id,
        Some(Principal::Name(n)) => root.user(n).map(|(uid, _, _)| uid).ok_or_else(|| {
            UserDataError::new(format!("{origin}.user"), format!("unknown user {n:?}"))
        })?,
    };
    let gid = match &owner.group {
        None => 0,
        Some(Principal::Id(id)) => *id,
        Some(Principal::Name(n)) => root.group(n).ok_or_else(|| {
            UserDataError::new(format!("{origin}.group"), format!("unknown group {n:?}"))
        })?,
    };
    Ok((uid, gid))
}

/// The final state of file `f` at `host`: its contents (or the existing file's, or those an
/// earlier entry for the same path planned) with the fragments appended, mode and owner.
fn plan_file(
    f: &File,
    host: &Path,
    owner: (u32, u32),
    prior: Option<&Planned>,
    root: &Root,
) -> Result<Planned> {
    let existing = match prior {
        Some(p) => Some((p.bytes.clone(), p.mode)),
        None => existing_file(root, host, &f.origin)?,
    };
    let mut bytes = match (&f.contents, &existing) {
        (Some(c), _) => c.clone(),
        (None, Some((b, _))) => b.clone(),
        (None, None) => Vec::new(),
    };
    for fragment in &f.append {
        bytes.extend_from_slice(fragment);
    }
    // Ignition: an existing file keeps its mode only when its contents are kept too.
    let keeps_contents = f.contents.is_none() && f.existing != crate::plan::Existing::Overwrite;
    let kept_mode = existing.filter(|_| keeps_contents).map(|(_, m)| m);
    Ok(Planned {
        host: host.to_owned(),
        shown: f.path.clone(),
        bytes,
        mode: f.mode.or(kept_mode).unwrap_or(FILE_MODE),
        owner,
    })
}

/// The bytes (read inside the root) and mode of the regular file at `host`, if there is one.
fn existing_file(root: &Root, host: &Path, origin: &str) -> Result<Option<(Vec<u8>, u32)>> {
    let Some(bytes) = root.existing(host, origin)? else {
        return Ok(None);
    };
    let meta = fs::symlink_metadata(host).map_err(|e| io(origin, host, e))?;
    Ok(Some((bytes, meta.mode() & 0o7777)))
}

/// Writes one file atomically with mode and owner (kiln-core's durable write).
pub fn write_file(
    host: &Path,
    bytes: &[u8],
    mode: u32,
    owner: (u32, u32),
    origin: &str,
) -> Result<()> {
    kiln_core::fsutil::write_atomic_as(host, bytes, mode, Some(owner))
        .map_err(|e| UserDataError::new(origin, e.to_string()))
}

fn directory(d: &Directory, host: &Path, (uid, gid): (u32, u32)) -> Result<()> {
    let meta = fs::symlink_metadata(host).ok();
    if meta.as_ref().is_some_and(|m| !m.is_dir()) {
        // Validation allowed this only with overwrite: true.
        fs::remove_file(host).map_err(|e| io(&d.origin, host, e))?;
    }
    let existed = meta.is_some_and(|m| m.is_dir());
    make_parents(host, &d.origin)?;
    if !existed {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(host)
            .map_err(|e| io(&d.origin, host, e))?;
    }
    let mode = d.mode.unwrap_or(if existed {
        current_mode(host)
    } else {
        DIR_MODE
    });
    std::os::unix::fs::lchown(host, Some(uid), Some(gid)).map_err(|e| io(&d.origin, host, e))?;
    fs::set_permissions(host, fs::Permissions::from_mode(mode))
        .map_err(|e| io(&d.origin, host, e))?;
    sync_parent(host, &d.origin)?;
    tracing::info!(path = %d.path.display(), mode = format!("{mode:04o}"), "created directory");
    Ok(())
}

/// Creates missing parent directories, 0755 root:root, as Ignition does.
fn make_parents(host: &Path, origin: &str) -> Result<()> {
    let Some(parent) = host.parent() else {
        return Ok(());
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(parent)
        .map_err(|e| io(origin, parent, e))
}

fn current_mode(path: &Path) -> u32 {
    fs::metadata(path)
        .map(|m| m.mode() & 0o7777)
        .unwrap_or(DIR_MODE)
}

fn sync_parent(host: &Path, origin: &str) -> Result<()> {
    match host.parent() {
        Some(p) => kiln_core::fsutil::fsync_dir(p).map_err(|e| UserDataError::io(origin, p, e)),
        None => Ok(()),
    }
}

fn io(origin: &str, path: &Path, e: std::io::Error) -> UserDataError {
    UserDataError::io(origin, path, e)
}
