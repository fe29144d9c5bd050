//! Checks a plan against the root before anything is written.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::root::Root;
use crate::plan::{Existing, Node, Plan, Principal};
use crate::userdata::{Result, UserDataError};

/// A node with its host path.
pub struct Resolved<'a> {
    /// The planned entry.
    pub node: &'a Node,
    /// Where it lands on the host.
    pub host_path: PathBuf,
}

/// Validates `plan` against `root`; returns the nodes with their host paths, in apply order.
pub fn check<'a>(plan: &'a Plan, root: &Root) -> Result<Vec<Resolved<'a>>> {
    let mut seen: HashMap<PathBuf, &str> = HashMap::new();
    let mut resolved = Vec::new();
    for node in &plan.nodes {
        let host_path = root.resolve(node.path(), &format!("{}.path", node.origin()))?;
        if let Some(first) = seen.insert(host_path.clone(), node.origin()) {
            if !same_file_twice(plan, first, node) {
                return Err(UserDataError::new(
                    node.origin(),
                    format!("{} is also claimed by {first}; a path can hold one file, directory or link", node.path().display()),
                ));
            }
        }
        check_existing(node, &host_path)?;
        resolved.push(Resolved { node, host_path });
    }
    check_parents(&resolved)?;
    check_principals(plan, root)?;
    check_hard_links(plan, root, &resolved)?;
    // Directories first, then files and symlinks by depth, hard links last (their targets first).
    resolved.sort_by_key(|r| match r.node {
        Node::Directory(_) => (0, depth(r)),
        Node::Link(l) if l.hard => (2, depth(r)),
        _ => (1, depth(r)),
    });
    Ok(resolved)
}

fn depth(r: &Resolved<'_>) -> usize {
    r.node.path().components().count()
}

/// cloud-config may append to one file from several entries (e.g. /etc/fstab); allowed when
/// both are plain file writes.
fn same_file_twice(plan: &Plan, first_origin: &str, node: &Node) -> bool {
    let first = plan.nodes.iter().find(|n| n.origin() == first_origin);
    matches!((first, node), (Some(Node::File(_)), Node::File(_)))
}

fn check_existing(node: &Node, host: &std::path::Path) -> Result<()> {
    let Ok(meta) = host.symlink_metadata() else {
        return Ok(());
    };
    let problem = match node {
        Node::File(f) if meta.is_dir() => Some("is a directory"),
        Node::File(f) if f.existing == Existing::Refuse => {
            Some("already exists; set overwrite: true to replace it")
        }
        Node::Directory(d) if !meta.is_dir() && !d.overwrite => {
            Some("exists and is not a directory; set overwrite: true")
        }
        Node::Link(l) if !l.overwrite && !same_symlink(l, host) => {
            Some("already exists; set overwrite: true to replace it")
        }
        _ => None,
    };
    match problem {
        Some(p) => Err(UserDataError::new(
            node.origin(),
            format!("{} {p}", node.path().display()),
        )),
        None => Ok(()),
    }
}

fn same_symlink(link: &crate::plan::Link, host: &std::path::Path) -> bool {
    !link.hard && std::fs::read_link(host).is_ok_and(|t| t == link.target)
}

/// Every user and group named as an owner or membership must exist or be created by the plan.
fn check_principals(plan: &Plan, root: &Root) -> Result<()> {
    let new_users: HashSet<&str> = plan.users.iter().map(|u| u.name.as_str()).collect();
    let new_groups: HashSet<&str> = plan
        .groups
        .iter()
        .map(|g| g.name.as_str())
        .chain(
            plan.users
                .iter()
                .filter(|u| !u.no_user_group)
                .map(|u| u.name.as_str()),
        )
        .collect();
    let user_known = |n: &str| new_users.contains(n) || root.user(n).is_some();
    let group_known = |n: &str| new_groups.contains(n) || root.group(n).is_some();
    for node in &plan.nodes {
        let owner = match node {
            Node::File(f) => &f.owner,
            Node::Directory(d) => &d.owner,
            Node::Link(l) => &l.owner,
        };
        if let Some(Principal::Name(n)) = &owner.user {
            if !user_known(n) {
                return Err(UserDataError::new(
                    format!("{}.user", node.origin()),
                    format!("unknown user {n:?}"),
                ));
            }
        }
        if let Some(Principal::Name(n)) = &owner.group {
            if !group_known(n) {
                return Err(UserDataError::new(
                    format!("{}.group", node.origin()),
                    format!("unknown group {n:?}"),
                ));
            }
        }
    }
    for (i, user) in plan.users.iter().enumerate() {
        let supplementary = user.groups.iter().filter(|_| !user.create_groups);
        for g in supplementary.chain(&user.primary_group) {
            if !group_known(g) {
                return Err(UserDataError::new(
                    format!("users[{i}] ({})", user.name),
                    format!("unknown group {g:?}"),
                ));
            }
        }
    }
    for group in &plan.groups {
        for m in &group.members {
            if !user_known(m) {
                return Err(UserDataError::new(
                    format!("groups ({})", group.name),
                    format!("unknown member {m:?}"),
                ));
            }
        }
    }
    Ok(())
}

/// No entry may sit below a planned file or link: the file would be replaced by a directory,
/// or the entry would end up on the other side of the link.
fn check_parents(resolved: &[Resolved<'_>]) -> Result<()> {
    let leaves: HashMap<&PathBuf, &Node> = resolved
        .iter()
        .filter(|r| !matches!(r.node, Node::Directory(_)))
        .map(|r| (&r.host_path, r.node))
        .collect();
    for r in resolved {
        for ancestor in r.host_path.ancestors().skip(1) {
            if let Some(parent) = leaves.get(&ancestor.to_path_buf()) {
                return Err(UserDataError::new(
                    r.node.origin(),
                    format!(
                        "{} is below {}, which {} makes a file or link",
                        r.node.path().display(),
                        parent.path().display(),
                        parent.origin()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Hard-link targets must be regular files, existing or planned.
fn check_hard_links(plan: &Plan, root: &Root, resolved: &[Resolved<'_>]) -> Result<()> {
    for node in &plan.nodes {
        let Node::Link(l) = node else { continue };
        if !l.hard {
            continue;
        }
        let field = format!("{}.target", l.origin);
        let target = root.resolve(&l.target, &field)?;
        let planned_file = resolved
            .iter()
            .any(|r| r.host_path == target && matches!(r.node, Node::File(_)));
        let existing_file = target.symlink_metadata().is_ok_and(|m| m.is_file());
        if !planned_file && !existing_file {
            return Err(UserDataError::new(
                field,
                format!(
                    "hard link target {} is not an existing or planned regular file",
                    l.target.display()
                ),
            ));
        }
    }
    Ok(())
}
