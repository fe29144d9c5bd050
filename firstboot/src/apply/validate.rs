//! Checks a plan against the root before anything is written: every node apply will write (the
//! plan's own and those expanded from units, the host name, keys and sudoers rules), the
//! accounts, and the tree they land in.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::root::{Resolved, Root};
use crate::plan::{Existing, Node, Plan, Principal, Writer};
use crate::userdata::{Result, UserDataError};

/// Validates `plan` and all the `nodes` apply writes for it against `root`; returns the nodes
/// with their host paths, in apply order.
pub fn check<'a>(plan: &Plan, nodes: &'a [Node], root: &Root) -> Result<Vec<Resolved<'a>>> {
    root.check_databases()?;
    let mut seen: HashMap<PathBuf, &str> = HashMap::new();
    let mut resolved = Vec::new();
    for node in nodes {
        super::checks::shape(node)?;
        let host_path = host_path(node, root)?;
        if let Some(first) = seen.insert(host_path.clone(), node.origin()) {
            if !same_file_twice(nodes, first, node) {
                return Err(UserDataError::new(
                    node.origin(),
                    format!("{} is also claimed by {first}; a path can hold one file, directory or link", node.path().display()),
                ));
            }
        }
        check_existing(node, &host_path, root)?;
        resolved.push(Resolved { node, host_path });
    }
    check_parents(&resolved)?;
    super::checks::ancestors(&resolved, root)?;
    check_principals(plan, nodes, root)?;
    super::account_rules::check(plan, root)?;
    super::skel::check(plan, nodes, root)?;
    check_hard_links(nodes, root, &resolved)?;
    // Directories first, then files and symlinks by depth, hard links last (their targets first).
    resolved.sort_by_key(|r| match r.node {
        Node::Directory(_) => (0, depth(r)),
        Node::Link(l) if l.hard => (2, depth(r)),
        _ => (1, depth(r)),
    });
    Ok(resolved)
}

/// Where a node lands: its path, or for a file cloud-init writes, what a symlink there leads to.
fn host_path(node: &Node, root: &Root) -> Result<PathBuf> {
    let origin = format!("{}.path", node.origin());
    match node {
        Node::File(f) if matches!(f.writer, Writer::CloudInit { .. }) => {
            root.resolve_following(node.path(), &origin)
        }
        _ => root.resolve(node.path(), &origin),
    }
}

fn depth(r: &Resolved<'_>) -> usize {
    r.node.path().components().count()
}

/// cloud-config may append to one file from several entries (e.g. /etc/fstab); allowed when
/// both are plain file writes.
fn same_file_twice(nodes: &[Node], first_origin: &str, node: &Node) -> bool {
    let first = nodes.iter().find(|n| n.origin() == first_origin);
    matches!((first, node), (Some(Node::File(_)), Node::File(_)))
}

/// What is at a node's path must be replaceable by it. A file that already holds exactly what
/// is planned (bytes, mode, owner) counts as done, even with `overwrite: false`: a re-run after
/// a crash converges.
fn check_existing(node: &Node, host: &std::path::Path, root: &Root) -> Result<()> {
    let Ok(meta) = host.symlink_metadata() else {
        return Ok(());
    };
    let problem = match node {
        Node::File(_) if meta.is_dir() => Some("is a directory"),
        // Ignition: "A non regular file exists there already and overwrite is false".
        Node::File(f) if !meta.is_file() && f.existing != Existing::Overwrite => {
            Some("exists and is not a regular file; set overwrite: true to replace it")
        }
        Node::File(f) if f.existing == Existing::Refuse && !super::nodes::holds(f, host, root) => {
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
fn check_principals(plan: &Plan, nodes: &[Node], root: &Root) -> Result<()> {
    let known = Known::new(plan, root);
    check_owners(nodes, &known)?;
    check_user_groups(plan, &known)?;
    check_group_members(plan, &known)
}

/// The users and groups that exist after the plan's accounts are created.
struct Known<'a> {
    new_users: HashSet<&'a str>,
    /// The plan's groups and the users' own groups (unless `no_user_group`).
    new_groups: HashSet<&'a str>,
    root: &'a Root,
}

impl<'a> Known<'a> {
    fn new(plan: &'a Plan, root: &'a Root) -> Self {
        let users = plan.users.iter();
        let own_groups = users.clone().filter(|u| !u.no_user_group);
        Known {
            new_users: users.map(|u| u.name.as_str()).collect(),
            new_groups: (plan.groups.iter().map(|g| g.name.as_str()))
                .chain(own_groups.map(|u| u.name.as_str()))
                .collect(),
            root,
        }
    }

    fn user(&self, name: &str) -> bool {
        self.new_users.contains(name) || self.root.user(name).is_some()
    }

    fn group(&self, name: &str) -> bool {
        self.new_groups.contains(name) || self.root.group(name).is_some()
    }
}

/// Owners of files, directories and links named by name.
fn check_owners(nodes: &[Node], known: &Known<'_>) -> Result<()> {
    for node in nodes {
        let owner = match node {
            Node::File(f) => &f.owner,
            Node::Directory(d) => &d.owner,
            Node::Link(l) => &l.owner,
        };
        // cloud-init writes these before it makes accounts: only existing ones can own them.
        let early = matches!(node, Node::File(f) if f.before_accounts());
        if let Some(Principal::Name(n)) = &owner.user {
            let exists = known.root.user(n).is_some();
            check_owner(
                node,
                "user",
                n,
                exists,
                early && known.new_users.contains(n.as_str()),
            )
            .and_then(|()| known_or(node, "user", n, known.user(n)))?;
        }
        if let Some(Principal::Name(n)) = &owner.group {
            let exists = known.root.group(n).is_some();
            check_owner(
                node,
                "group",
                n,
                exists,
                early && known.new_groups.contains(n.as_str()),
            )
            .and_then(|()| known_or(node, "group", n, known.group(n)))?;
        }
    }
    Ok(())
}

/// An owner the plan makes only after a file written before the accounts.
fn check_owner(node: &Node, kind: &str, name: &str, exists: bool, made_later: bool) -> Result<()> {
    if exists || !made_later {
        return Ok(());
    }
    Err(UserDataError::new(
        format!("{}.owner", node.origin()),
        format!("{kind} {name:?} is made by this user-data after the file is written (cloud-init writes files before users_groups); set defer: true"),
    ))
}

fn known_or(node: &Node, kind: &str, name: &str, known: bool) -> Result<()> {
    if known {
        return Ok(());
    }
    Err(UserDataError::new(
        format!("{}.{kind}", node.origin()),
        format!("unknown {kind} {name:?}"),
    ))
}

/// Users' primary groups, and their supplementary groups unless the plan creates missing ones.
fn check_user_groups(plan: &Plan, known: &Known<'_>) -> Result<()> {
    for (i, user) in plan.users.iter().enumerate() {
        let supplementary = user.groups.iter().filter(|_| !user.create_groups);
        for g in supplementary.chain(&user.primary_group) {
            if !known.group(g) {
                return Err(UserDataError::new(
                    format!("users[{i}] ({})", user.name),
                    format!("unknown group {g:?}"),
                ));
            }
        }
    }
    Ok(())
}

fn check_group_members(plan: &Plan, known: &Known<'_>) -> Result<()> {
    for group in &plan.groups {
        for m in &group.members {
            if !known.user(m) {
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

/// Hard-link targets must be regular files, existing or planned, and stay reachable: no planned
/// link or file replaces the target or a directory on its way.
fn check_hard_links(nodes: &[Node], root: &Root, resolved: &[Resolved<'_>]) -> Result<()> {
    for node in nodes {
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
        super::checks::reachable(&target, l, resolved)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Directory, Group, Owner, User};

    fn root_with_accounts() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nwheel:x:10:\n").unwrap();
        let root = Root::new(dir.path()).unwrap();
        (dir, root)
    }

    fn user(name: &str, no_user_group: bool) -> User {
        User {
            name: name.into(),
            no_user_group,
            ..User::default()
        }
    }

    #[test]
    fn known_counts_the_root_and_the_plan() {
        let (_dir, root) = root_with_accounts();
        let plan = Plan {
            users: vec![user("core", false), user("svc", true)],
            groups: vec![Group {
                name: "ops".into(),
                ..Group::default()
            }],
            ..Plan::default()
        };
        let known = Known::new(&plan, &root);
        assert!(known.user("root") && known.user("core") && known.user("svc"));
        assert!(!known.user("nobody"));
        assert!(known.group("wheel") && known.group("ops") && known.group("core"));
        assert!(!known.group("svc"));
    }

    #[test]
    fn unknown_principals_name_where_they_are_used() {
        let (_dir, root) = root_with_accounts();
        let owned_by = |group: &str| Plan {
            nodes: vec![Node::Directory(Directory {
                path: "/d".into(),
                mode: None,
                owner: Owner {
                    user: Some(Principal::Name("root".into())),
                    group: Some(Principal::Name(group.into())),
                },
                overwrite: false,
                origin: "storage.directories[0]".into(),
            })],
            ..Plan::default()
        };
        let wheel = owned_by("wheel");
        assert!(check_principals(&wheel, &wheel.nodes, &root).is_ok());
        let nope = owned_by("nope");
        let e = check_principals(&nope, &nope.nodes, &root).unwrap_err();
        assert_eq!(e.field, "storage.directories[0].group");
        let mut member = Plan::default();
        member.groups.push(Group {
            name: "ops".into(),
            members: vec!["ghost".into()],
            ..Group::default()
        });
        let e = check_principals(&member, &[], &root).unwrap_err();
        assert_eq!(e.field, "groups (ops)");
        let mut primary = Plan::default();
        primary.users.push(User {
            primary_group: Some("ghost".into()),
            ..user("core", false)
        });
        let e = check_principals(&primary, &[], &root).unwrap_err();
        assert_eq!(e.field, "users[0] (core)");
    }
}
