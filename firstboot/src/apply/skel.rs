//! `/etc/skel` meets the plan: `useradd --create-home` copies the root's skeleton into a new
//! home before kiln writes its files, so a planned node inside that home must agree with what
//! the copy puts there. The rule: a planned file or link replaces a skeleton file of the same
//! name (kiln writes after the copy) unless it may not replace anything (`overwrite: false`);
//! a type clash (a file where the skeleton has a directory, or the other way round) is an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::root::Root;
use crate::plan::{Existing, Node, Plan};
use crate::userdata::{Result, UserDataError};

/// Checks every node below the home of an account the plan creates.
pub fn check(plan: &Plan, nodes: &[Node], root: &Root) -> Result<()> {
    let new_homes = plan.users.iter().filter(|u| !u.no_create_home);
    for user in new_homes.filter(|u| root.user(&u.name).is_none()) {
        let home = PathBuf::from(
            user.home_dir
                .clone()
                .unwrap_or_else(|| format!("/home/{}", user.name)),
        );
        if root.resolve(&home, "home").is_ok_and(|h| h.exists()) {
            continue; // useradd copies nothing into an existing home
        }
        let skeleton = skeleton(root);
        for node in nodes {
            if let Ok(rel) = node.path().strip_prefix(&home) {
                clash(node, rel, &skeleton)?;
            }
        }
    }
    Ok(())
}

/// The error, if `node` (at `rel` inside the new home) cannot follow the skeleton's copy.
fn clash(node: &Node, rel: &Path, skeleton: &BTreeMap<PathBuf, bool>) -> Result<()> {
    let fail = |what: String| {
        Err(UserDataError::new(
            node.origin(),
            format!(
                "{} collides with /etc/skel/{what}, which useradd copies into the new home",
                node.path().display()
            ),
        ))
    };
    for ancestor in rel
        .ancestors()
        .skip(1)
        .filter(|a| !a.as_os_str().is_empty())
    {
        if skeleton.get(ancestor) == Some(&false) {
            return fail(format!("{} (a file)", ancestor.display()));
        }
    }
    let Some(&is_dir) = skeleton.get(rel) else {
        return Ok(());
    };
    let refused = match node {
        Node::Directory(d) => !is_dir && !d.overwrite,
        Node::File(f) => is_dir || f.existing == Existing::Refuse,
        Node::Link(l) => is_dir || !l.overwrite,
    };
    if refused {
        return fail(rel.display().to_string());
    }
    Ok(())
}

/// Relative path → is a directory, for everything below the root's /etc/skel (a link there
/// followed inside the root, as the chrooted useradd follows it; links below it not followed).
fn skeleton(root: &Root) -> BTreeMap<PathBuf, bool> {
    let mut out = BTreeMap::new();
    if let Ok(skel) = root.resolve_following(Path::new("/etc/skel"), "/etc/skel") {
        walk(&skel, Path::new(""), &mut out);
    }
    out
}

fn walk(dir: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, bool>) {
    let Ok(entries) = std::fs::read_dir(dir.join(rel)) else {
        return;
    };
    for entry in entries.flatten() {
        let path = rel.join(entry.file_name());
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        out.insert(path.clone(), is_dir);
        if is_dir {
            walk(dir, &path, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{File, Owner, User};

    fn file(path: &str, existing: Existing) -> Node {
        Node::File(File {
            path: path.into(),
            contents: Some(b"x".to_vec()),
            append: vec![],
            existing,
            mode: None,
            owner: Owner::default(),
            writer: crate::plan::Writer::Replace,
            origin: "storage.files[0]".into(),
        })
    }

    #[test]
    fn skeleton_clashes_are_found_before_useradd() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/skel/.config")).unwrap();
        std::fs::write(dir.path().join("etc/skel/.bashrc"), "x").unwrap();
        std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        let root = Root::new(dir.path()).unwrap();
        let plan = Plan {
            users: vec![User {
                name: "core".into(),
                ..User::default()
            }],
            ..Plan::default()
        };
        let ok = [
            file("/home/core/.bashrc", Existing::Overwrite),
            file("/home/core/.config/x", Existing::Refuse),
        ];
        assert!(check(&plan, &ok, &root).is_ok());
        for bad in [
            file("/home/core/.bashrc", Existing::Refuse),
            file("/home/core/.config", Existing::Overwrite),
            file("/home/core/.bashrc/inner", Existing::Overwrite),
        ] {
            let e = check(&plan, std::slice::from_ref(&bad), &root).unwrap_err();
            assert!(e.message.contains("/etc/skel/"), "{e}");
        }
    }
}
