//! Writes files, directories and links, each atomically with mode and owner set before it
//! appears at its path.

use kiln_core::fsutil::Replace;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use super::root::Root;
use super::validate::Resolved;
use crate::plan::{Directory, File, Link, Node, Owner, Principal};
use crate::userdata::{Result, UserDataError};

/// Default mode of new files and directories (Ignition and cloud-init).
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

/// Applies the validated nodes in order: directories at once, files staged and committed
/// together (one filesystem sync instead of one per file), then links.
pub fn apply(nodes: &[Resolved<'_>], root: &Root) -> Result<()> {
    let mut staged = Vec::new();
    let mut staged_paths = std::collections::HashSet::new();
    for r in nodes {
        let owner = ids(node_owner(r.node), root, r.node.origin())?;
        match r.node {
            Node::Directory(d) => directory(d, &r.host_path, owner)?,
            Node::File(f) => {
                // A second entry for one path (cloud-config appends) builds on the first.
                if !staged_paths.insert(r.host_path.clone()) {
                    commit(std::mem::take(&mut staged))?;
                    staged_paths = std::iter::once(r.host_path.clone()).collect();
                }
                staged.push(file(f, &r.host_path, owner, root)?)
            }
            Node::Link(_) => {}
        }
    }
    commit(staged)?;
    // Links after the files: hard links need their targets, symlinks take their owner.
    for r in nodes {
        if let Node::Link(l) = r.node {
            let owner = ids(&l.owner, root, &l.origin)?;
            let owner = symlink_default_owner(l, &r.host_path, root, owner);
            link(l, &r.host_path, owner, root)?;
        }
    }
    Ok(())
}

/// A symlink without an explicit owner takes the owner of the node it points to, as Ignition
/// does (Ignition stats the new link); kiln resolves the target inside the root, where
/// Ignition would look up absolute targets on the host.
fn symlink_default_owner(l: &Link, host: &Path, root: &Root, (uid, gid): (u32, u32)) -> (u32, u32) {
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
    let target = root.metadata(&inside);
    match target {
        Some(m) => (
            if l.owner.user.is_some() { uid } else { m.uid() },
            if l.owner.group.is_some() {
                gid
            } else {
                m.gid()
            },
        ),
        None => (uid, gid),
    }
}

fn commit(staged: Vec<kiln_core::fsutil::Staged>) -> Result<()> {
    kiln_core::fsutil::commit(staged).map_err(|e| UserDataError::new("storage", e.to_string()))
}

fn node_owner(node: &Node) -> &Owner {
    match node {
        Node::Directory(d) => &d.owner,
        Node::File(f) => &f.owner,
        Node::Link(l) => &l.owner,
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

fn file(
    f: &File,
    host: &Path,
    owner: (u32, u32),
    root: &Root,
) -> Result<kiln_core::fsutil::Staged> {
    let existing = fs::symlink_metadata(host).ok().filter(|m| m.is_file());
    let mut bytes = match &f.contents {
        Some(c) => c.clone(),
        None => root.existing(host, &f.origin)?.unwrap_or_default(),
    };
    for fragment in &f.append {
        bytes.extend_from_slice(fragment);
    }
    // Ignition: an existing file keeps its mode only when its contents are kept too.
    let keeps_contents = f.contents.is_none() && f.existing != crate::plan::Existing::Overwrite;
    let mode = f
        .mode
        .or_else(|| {
            existing
                .as_ref()
                .filter(|_| keeps_contents)
                .map(|m| m.permissions().mode() & 0o7777)
        })
        .unwrap_or(FILE_MODE);
    if fs::symlink_metadata(host).is_ok_and(|m| m.is_dir()) {
        return Err(UserDataError::new(
            &f.origin,
            format!("{} is a directory", f.path.display()),
        ));
    }
    make_parents(host, &f.origin)?;
    let staged = kiln_core::fsutil::stage(host, &bytes, mode, Some(owner))
        .map_err(|e| UserDataError::new(&f.origin, e.to_string()))?;
    tracing::info!(path = %f.path.display(), bytes = bytes.len(), mode = format!("{mode:04o}"), "wrote file");
    Ok(staged)
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

fn link(l: &Link, host: &Path, (uid, gid): (u32, u32), root: &Root) -> Result<()> {
    make_parents(host, &l.origin)?;
    let hard_target = match l.hard {
        true => Some(root.resolve(&l.target, &format!("{}.target", l.origin))?),
        false => None,
    };
    // A link (or a directory) already there is replaced all at once.
    kiln_core::fsutil::publish(host, Replace::Existing, |tmp| {
        let made = match &hard_target {
            Some(target) => fs::hard_link(target, tmp),
            None => std::os::unix::fs::symlink(&l.target, tmp)
                .and_then(|()| std::os::unix::fs::lchown(tmp, Some(uid), Some(gid))),
        };
        made.map_err(|e| kiln_core::Error::io(tmp, e))
    })
    .map_err(|e| UserDataError::io(&l.origin, host, e))?;
    tracing::info!(path = %l.path.display(), target = %l.target.display(), hard = l.hard, "created link");
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
