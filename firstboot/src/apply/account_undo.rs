//! The accounts phase made convergent. The shadow tools write passwd, group, shadow and gshadow
//! one after another, not all at once: a run killed inside them can leave a group in
//! /etc/group but not in /etc/gshadow, or a user without its home. So before the first tool
//! runs, the four databases (bytes, mode, owner) and the homes that do not exist yet are saved
//! in one atomically written file; it is removed once the last tool ran. A run that finds it
//! restores the databases, removes the homes the killed run made, and then creates the
//! accounts again from the same start.

use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::root::Root;
use crate::plan::Plan;
use crate::userdata::{Result, UserDataError};

/// The save, inside the root.
const UNDO: &str = "/var/lib/kiln/accounts.undo";
/// The databases the shadow tools write.
const DATABASES: [&str; 4] = ["etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"];
const MAGIC: &str = "kiln-accounts-undo 1";

/// Saves the databases and the missing homes before the plan's accounts are made.
pub fn save(plan: &Plan, root: &Root) -> Result<()> {
    let mut text = format!("{MAGIC}\n");
    for db in DATABASES {
        text.push_str(&database_line(db, root)?);
    }
    for user in plan.users.iter().filter(|u| !u.no_create_home) {
        let home = (user.home_dir.clone()).unwrap_or_else(|| format!("/home/{}", user.name));
        let host = root.resolve(Path::new(&home), &format!("user {}", user.name))?;
        if root.user(&user.name).is_none() && host.symlink_metadata().is_err() {
            text.push_str(&format!(
                "home {}\n",
                hex::encode(host.as_os_str().as_bytes())
            ));
        }
    }
    let path = undo_path(root)?;
    kiln_core::fsutil::write_atomic(&path, text.as_bytes(), 0o600).map_err(fail)
}

/// Removes the save: the accounts are made.
pub fn done(root: &Root) -> Result<()> {
    let path = undo_path(root)?;
    fs::remove_file(&path).map_err(|e| UserDataError::io("accounts", &path, e))?;
    kiln_core::fsutil::fsync_dir(&kiln_core::fsutil::parent_dir(&path)).map_err(fail)
}

/// Restores the state a killed accounts phase started from; `true` if there was one.
pub fn recover(root: &Root) -> Result<bool> {
    let path = undo_path(root)?;
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(UserDataError::io("accounts", &path, e)),
    };
    let bad = || {
        UserDataError::new(
            "accounts",
            format!("{}: not kiln's; remove it to continue", path.display()),
        )
    };
    let mut lines = text.lines();
    (lines.next() == Some(MAGIC))
        .then_some(())
        .ok_or_else(bad)?;
    for line in lines {
        restore(line, root).ok_or_else(bad)??;
    }
    done(root)?;
    Ok(true)
}

/// The host path of database `db`, resolved inside the root (as the shadow tools, chrooted by
/// `--root`, see it).
fn database_path(db: &str, root: &Root) -> Result<PathBuf> {
    root.resolve(&Path::new("/").join(db), "accounts")
}

/// `db PATH absent` or `db PATH MODE UID GID HEX` for database `db`, read inside the root.
fn database_line(db: &str, root: &Root) -> Result<String> {
    let host = database_path(db, root)?;
    match (
        fs::symlink_metadata(&host),
        root.existing(&host, "accounts")?,
    ) {
        (Ok(m), Some(bytes)) => Ok(format!(
            "db {db} {:o} {} {} {}\n",
            m.mode() & 0o7777,
            m.uid(),
            m.gid(),
            hex::encode(bytes)
        )),
        _ => Ok(format!("db {db} absent\n")),
    }
}

/// Undoes one line of the save; `None` if it is malformed.
fn restore(line: &str, root: &Root) -> Option<Result<()>> {
    let f: Vec<&str> = line.split(' ').collect();
    match f.as_slice() {
        ["db", db, "absent"] if DATABASES.contains(db) => {
            let host = database_path(db, root).ok()?;
            Some(remove(&host, fs::remove_file(&host)))
        }
        ["db", db, mode, uid, gid, bytes] if DATABASES.contains(db) => {
            let (mode, owner) = (
                u32::from_str_radix(mode, 8).ok()?,
                (uid.parse().ok()?, gid.parse().ok()?),
            );
            let bytes = hex::decode(bytes).ok()?;
            let host = database_path(db, root).ok()?;
            Some(kiln_core::fsutil::write_atomic_as(&host, &bytes, mode, Some(owner)).map_err(fail))
        }
        ["home", home] => {
            let host = PathBuf::from(std::ffi::OsString::from_vec(hex::decode(home).ok()?));
            host.starts_with(root.dir()).then_some(())?;
            Some(remove(&host, fs::remove_dir_all(&host)))
        }
        _ => None,
    }
}

/// A removal's result; what is already gone is fine.
fn remove(path: &Path, result: std::io::Result<()>) -> Result<()> {
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(UserDataError::io("accounts", path, e))
        }
        _ => Ok(()),
    }
}

fn undo_path(root: &Root) -> Result<PathBuf> {
    root.resolve(Path::new(UNDO), "--root")
}

fn fail(e: kiln_core::Error) -> UserDataError {
    UserDataError::new("accounts", e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::User;

    #[test]
    fn a_killed_accounts_phase_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir(d.join("etc")).unwrap();
        fs::write(d.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        fs::write(d.join("etc/group"), "root:x:0:\n").unwrap();
        let root = Root::new(d).unwrap();
        let plan = Plan {
            users: vec![User {
                name: "core".into(),
                ..User::default()
            }],
            ..Plan::default()
        };
        save(&plan, &root).unwrap();
        // The killed run got half-way.
        fs::write(
            d.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\ncore:x:1000:1000::/home/core:/bin/sh\n",
        )
        .unwrap();
        fs::write(d.join("etc/gshadow"), "core:!::\n").unwrap();
        fs::create_dir_all(d.join("home/core")).unwrap();
        assert!(recover(&root).unwrap());
        assert_eq!(
            fs::read_to_string(d.join("etc/passwd")).unwrap(),
            "root:x:0:0::/root:/bin/sh\n"
        );
        assert!(!d.join("etc/gshadow").exists() && !d.join("home/core").exists());
        assert!(d.join("home").exists());
        assert!(!recover(&root).unwrap());
    }
}
