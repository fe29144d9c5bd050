//! Shape checks of the nodes apply writes (name and path lengths, link targets), the types of
//! the existing directories they land in, and hard-link targets that must stay reachable.

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::root::{Resolved, Root};
use crate::plan::{Link, Node};
use crate::userdata::{Result, UserDataError};

/// Longest file name Linux accepts (NAME_MAX).
const NAME_MAX: usize = 255;
/// Longest path Linux accepts, without the terminating NUL (PATH_MAX - 1).
const PATH_MAX: usize = 4095;

/// Path lengths of every node, and symlink targets that `symlink(2)` accepts.
pub fn shape(node: &Node) -> Result<()> {
    lengths(node.path(), node.origin())?;
    let Node::Link(l) = node else { return Ok(()) };
    let target = l.target.as_os_str().as_bytes();
    let field = format!("{}.target", l.origin);
    let problem = if target.is_empty() {
        Some("the link target is empty".to_owned())
    } else if target.contains(&0) {
        Some("the link target contains a NUL byte".to_owned())
    } else if target.len() > PATH_MAX {
        Some(format!("the link target is longer than {PATH_MAX} bytes"))
    } else {
        None
    };
    match problem {
        Some(p) => Err(UserDataError::new(field, p)),
        None if l.hard => lengths(&l.target, &field),
        None => Ok(()),
    }
}

/// Each component at most NAME_MAX bytes, the whole at most PATH_MAX.
fn lengths(path: &Path, origin: &str) -> Result<()> {
    let long = path.components().find(|c| c.as_os_str().len() > NAME_MAX);
    if let Some(c) = long {
        return Err(UserDataError::new(
            origin,
            format!(
                "{}: the name {:?}… is longer than {NAME_MAX} bytes",
                path.display(),
                String::from_utf8_lossy(&c.as_os_str().as_bytes()[..16])
            ),
        ));
    }
    if path.as_os_str().len() > PATH_MAX {
        return Err(UserDataError::new(
            origin,
            format!("the path is longer than {PATH_MAX} bytes"),
        ));
    }
    Ok(())
}

/// Every existing ancestor of every node is a directory (or a planned directory replaces it):
/// found now, not after half the tree was made.
pub fn ancestors(resolved: &[Resolved<'_>], root: &Root) -> Result<()> {
    let planned_dirs: HashSet<&PathBuf> = resolved
        .iter()
        .filter(|r| matches!(r.node, Node::Directory(_)))
        .map(|r| &r.host_path)
        .collect();
    for r in resolved {
        let inside = r.host_path.ancestors().skip(1);
        for ancestor in inside.take_while(|a| a.starts_with(root.dir()) && *a != root.dir()) {
            let not_dir = ancestor.symlink_metadata().is_ok_and(|m| !m.is_dir());
            if not_dir && !planned_dirs.contains(&ancestor.to_path_buf()) {
                return Err(UserDataError::new(
                    r.node.origin(),
                    format!(
                        "{} cannot be made: {} exists and is not a directory",
                        r.node.path().display(),
                        shown(ancestor, root).display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A hard link's target (host path `target`) is not replaced by another node, nor below a
/// planned file or link (a symlink replacing the directory it was in).
pub fn reachable(target: &Path, link: &Link, resolved: &[Resolved<'_>]) -> Result<()> {
    for r in resolved {
        let replaced = r.host_path == target && !matches!(r.node, Node::File(_));
        let leaf = !matches!(r.node, Node::Directory(_));
        let below = leaf && target != r.host_path && target.starts_with(&r.host_path);
        if replaced || below {
            return Err(UserDataError::new(
                format!("{}.target", link.origin),
                format!(
                    "hard link target {} would no longer be reachable: {} replaces {}",
                    link.target.display(),
                    r.node.origin(),
                    r.node.path().display()
                ),
            ));
        }
    }
    Ok(())
}

/// A host path as seen inside the root.
fn shown(host: &Path, root: &Root) -> PathBuf {
    Path::new("/").join(host.strip_prefix(root.dir()).unwrap_or(host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Owner;

    fn link(target: &str) -> Node {
        Node::Link(Link {
            path: "/l".into(),
            target: target.into(),
            hard: false,
            overwrite: false,
            owner: Owner::default(),
            origin: "storage.links[0]".into(),
        })
    }

    #[test]
    fn link_targets_and_lengths() {
        assert!(shape(&link("/etc/a")).is_ok());
        let e = shape(&link("a\0b")).unwrap_err();
        assert_eq!(e.field, "storage.links[0].target");
        assert!(e.message.contains("NUL"), "{e}");
        assert!(shape(&link("")).unwrap_err().message.contains("empty"));
        let Node::Link(mut l) = link("x") else {
            unreachable!()
        };
        l.path = PathBuf::from(format!("/etc/{}", "n".repeat(255)));
        assert!(shape(&Node::Link(l.clone())).is_ok());
        l.path = PathBuf::from(format!("/etc/{}", "n".repeat(256)));
        assert!(shape(&Node::Link(l))
            .unwrap_err()
            .message
            .contains("longer"));
    }
}
