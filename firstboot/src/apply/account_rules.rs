//! The accounts a plan creates, checked before any is: names the shadow tools accept (never an
//! option such as `-D`), uids and gids that no other account holds, in the root or in the
//! plan, and SSH keys and sudo rules that are one line each.

use std::collections::HashMap;

use super::root::Root;
use crate::plan::Plan;
use crate::userdata::{Result, UserDataError};
use kiln_core::names::is_account_name;

/// Checks names and ids of every group and user of `plan`.
pub fn check(plan: &Plan, root: &Root) -> Result<()> {
    let mut gids = ids(&database(root, "etc/group"));
    for (i, g) in plan.groups.iter().enumerate() {
        let field = format!("groups[{i}] ({})", g.name);
        names(&field, std::iter::once(&g.name).chain(&g.members))?;
        if let Some(gid) = g.gid {
            claim(&mut gids, gid, &g.name, &field, "gid")?;
        }
    }
    let mut uids = ids(&database(root, "etc/passwd"));
    for (i, u) in plan.users.iter().enumerate() {
        let field = format!("users[{i}] ({})", u.name);
        let primary = u.primary_group.iter().filter(|g| g.parse::<u32>().is_err());
        names(
            &field,
            std::iter::once(&u.name).chain(&u.groups).chain(primary),
        )?;
        if let Some(uid) = u.uid {
            claim(&mut uids, uid, &u.name, &field, "uid")?;
        }
        one_line(&field, "SSH key", &u.ssh_authorized_keys)?;
        one_line(&field, "sudo rule", &u.sudo)?;
    }
    Ok(())
}

/// Each entry is one non-empty line: a newline would add a line of its own to
/// authorized_keys or sudoers.
fn one_line(field: &str, what: &str, entries: &[String]) -> Result<()> {
    for (i, entry) in entries.iter().enumerate() {
        if entry.trim().is_empty() || entry.contains(['\n', '\r', '\0']) {
            return Err(UserDataError::new(
                field,
                format!("{what} {i} must be one non-empty line"),
            ));
        }
    }
    Ok(())
}

/// Every name is one `useradd`/`groupadd` accept.
fn names<'a>(field: &str, names: impl Iterator<Item = &'a String>) -> Result<()> {
    for name in names {
        if !is_account_name(name) {
            return Err(UserDataError::new(
                field,
                format!("{name:?} is not a valid user or group name ([a-z_][a-z0-9_-]*, at most 32 characters)"),
            ));
        }
    }
    Ok(())
}

/// Records that `name` holds `id`; an error if another account already does.
fn claim(
    taken: &mut HashMap<u32, String>,
    id: u32,
    name: &str,
    field: &str,
    what: &str,
) -> Result<()> {
    match taken.get(&id) {
        Some(other) if other != name => Err(UserDataError::new(
            field,
            format!("{what} {id} already belongs to {other:?}"),
        )),
        _ => {
            taken.insert(id, name.to_owned());
            Ok(())
        }
    }
}

/// id → name of a colon-separated database (`name:x:id:...`).
fn ids(lines: &str) -> HashMap<u32, String> {
    lines
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            Some((f.nth(1)?.parse().ok()?, name.to_owned()))
        })
        .collect()
}

/// The text of the root's `file` (empty if missing or unreadable: [`Root::check_databases`]
/// reports what is wrong with it), read inside the root.
fn database(root: &Root, file: &str) -> String {
    let bytes = root
        .read(&std::path::Path::new("/").join(file), file)
        .ok()
        .flatten();
    String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Group, User};

    fn root() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\ncore:x:1000:1000::/home/core:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nwheel:x:10:\n").unwrap();
        let root = Root::new(dir.path()).unwrap();
        (dir, root)
    }

    fn user(name: &str, uid: Option<u32>) -> User {
        User {
            name: name.into(),
            uid,
            ..User::default()
        }
    }

    #[test]
    fn names_that_are_options_or_invalid_are_refused() {
        let (_d, root) = root();
        for bad in ["-D", "Core", "a:b"] {
            let plan = Plan {
                users: vec![user(bad, None)],
                ..Plan::default()
            };
            let e = check(&plan, &root).unwrap_err();
            assert!(e.message.contains("not a valid user or group name"), "{e}");
        }
        let plan = Plan {
            groups: vec![Group {
                name: "ops".into(),
                members: vec!["--help".into()],
                ..Group::default()
            }],
            ..Plan::default()
        };
        assert_eq!(check(&plan, &root).unwrap_err().field, "groups[0] (ops)");
    }

    #[test]
    fn ids_held_by_another_account_are_refused() {
        let (_d, root) = root();
        let ok = Plan {
            users: vec![user("core", Some(1000)), user("dev", Some(1001))],
            ..Plan::default()
        };
        assert!(check(&ok, &root).is_ok());
        let taken = Plan {
            users: vec![user("dev", Some(1000))],
            ..Plan::default()
        };
        let e = check(&taken, &root).unwrap_err();
        assert_eq!(e.message, "uid 1000 already belongs to \"core\"");
        let twice = Plan {
            users: vec![user("a", Some(2000)), user("b", Some(2000))],
            ..Plan::default()
        };
        assert_eq!(check(&twice, &root).unwrap_err().field, "users[1] (b)");
        let gid = Plan {
            groups: vec![Group {
                name: "ops".into(),
                gid: Some(10),
                ..Group::default()
            }],
            ..Plan::default()
        };
        assert!(check(&gid, &root).unwrap_err().message.contains("wheel"));
    }

    #[test]
    fn keys_and_sudo_rules_are_one_line_each() {
        let (_d, root) = root();
        let with = |keys: &[&str], sudo: &[&str]| Plan {
            users: vec![User {
                ssh_authorized_keys: keys.iter().map(|k| k.to_string()).collect(),
                sudo: sudo.iter().map(|k| k.to_string()).collect(),
                ..user("core", None)
            }],
            ..Plan::default()
        };
        assert!(check(&with(&["ssh-ed25519 AAAA a"], &["ALL=(ALL) ALL"]), &root).is_ok());
        let e = check(&with(&["ssh-ed25519 AAAA a\ncommand=x"], &[]), &root).unwrap_err();
        assert_eq!(e.message, "SSH key 0 must be one non-empty line");
        assert!(check(&with(&[], &["ALL\nroot ALL"]), &root).is_err());
        assert!(check(&with(&[""], &[]), &root).is_err());
    }
}
