//! Groups and users, created with the root's shadow tools (`groupadd`/`useradd`/`usermod
//! --root`) exactly as Ignition does, then SSH keys (Ignition: `~/.ssh/authorized_keys.d/
//! ignition`; cloud-init: `~/.ssh/authorized_keys`) and cloud-init's sudoers rules.

use std::path::Path;
use std::process::Command;

use super::nodes::write_file;
use super::root::Root;
use crate::plan::{Group, KeyFile, Plan, User};
use crate::userdata::{Result, UserDataError};

/// cloud-init's sudoers drop-in for `users[].sudo`.
const SUDOERS_FILE: &str = "/etc/sudoers.d/90-cloud-init-users";

/// Creates groups, users, their keys and sudo rules.
pub fn apply(plan: &Plan, root: &Root) -> Result<()> {
    for group in &plan.groups {
        ensure_group(group, root)?;
    }
    for user in &plan.users {
        if user.create_groups {
            for name in user.groups.iter().filter(|g| root.group(g).is_none()) {
                let group = Group {
                    name: name.clone(),
                    ..Group::default()
                };
                ensure_group(&group, root)?;
            }
        }
        ensure_user(user, root)?;
        if user.lock_password && user.password_hash.is_some() {
            run(
                root,
                "usermod",
                &["--lock", &user.name],
                &format!("user {}", user.name),
            )?;
        }
        write_keys(user, root)?;
    }
    for group in &plan.groups {
        for member in &group.members {
            run(
                root,
                "usermod",
                &["--append", "--groups", &group.name, member],
                &format!("groups ({})", group.name),
            )?;
        }
    }
    write_sudoers(&plan.users, root)
}

fn ensure_group(group: &Group, root: &Root) -> Result<()> {
    if root.group(&group.name).is_some() {
        return Ok(());
    }
    let mut args: Vec<String> = Vec::new();
    if let Some(gid) = group.gid {
        args.extend(["--gid".into(), gid.to_string()]);
    }
    args.extend([
        "--password".into(),
        locked_if_empty(group.password_hash.as_deref()),
    ]);
    if group.system {
        args.push("--system".into());
    }
    args.push(group.name.clone());
    run(
        root,
        "groupadd",
        &strs(&args),
        &format!("group {}", group.name),
    )?;
    tracing::info!(group = %group.name, "added group");
    Ok(())
}

fn ensure_user(user: &User, root: &Root) -> Result<()> {
    let exists = root.user(&user.name).is_some();
    let mut args: Vec<String> = Vec::new();
    if !exists {
        args.push(
            if user.no_create_home {
                "--no-create-home"
            } else {
                "--create-home"
            }
            .into(),
        );
    }
    // New accounts get a locked password unless a hash is given (Ignition, cloud-init); an
    // existing account's password changes only when a hash is given.
    if !exists || user.password_hash.as_deref().is_some_and(|h| !h.is_empty()) {
        args.extend([
            "--password".into(),
            locked_if_empty(user.password_hash.as_deref()),
        ]);
    }
    let options = [
        ("--uid", user.uid.map(|u| u.to_string())),
        ("--comment", user.gecos.clone()),
        ("--home-dir", user.home_dir.clone()),
        ("--gid", user.primary_group.clone()),
        (
            "--groups",
            (!user.groups.is_empty()).then(|| user.groups.join(",")),
        ),
        ("--shell", user.shell.clone()),
    ];
    for (flag, value) in options {
        if let Some(v) = value {
            args.extend([flag.to_owned(), v]);
        }
    }
    if !exists && user.no_user_group {
        args.push("--no-user-group".into());
    }
    if !exists && user.system {
        args.push("--system".into());
    }
    args.push(user.name.clone());
    let tool = if exists { "usermod" } else { "useradd" };
    run(root, tool, &strs(&args), &format!("user {}", user.name))?;
    tracing::info!(user = %user.name, created = !exists, "configured user");
    Ok(())
}

fn write_keys(user: &User, root: &Root) -> Result<()> {
    if user.ssh_authorized_keys.is_empty() {
        return Ok(());
    }
    let origin = format!("user {}", user.name);
    let (uid, gid, home) = root
        .user(&user.name)
        .ok_or_else(|| UserDataError::new(&origin, "user missing after useradd"))?;
    let ssh = Path::new(&home).join(".ssh");
    let file = match user.key_file {
        KeyFile::IgnitionFragment => ssh.join("authorized_keys.d/ignition"),
        KeyFile::AuthorizedKeys => ssh.join("authorized_keys"),
    };
    let text = key_file_text(user, root, &file, &origin)?;
    let mut dirs: Vec<&Path> = file
        .ancestors()
        .skip(1)
        .take_while(|d| d.starts_with(&ssh))
        .collect();
    dirs.reverse();
    for dir in dirs {
        let host = root.resolve(dir, &origin)?;
        if host.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
            return Err(UserDataError::new(
                &origin,
                format!(
                    "{} is not a directory (a symlink?); refusing to write keys through it",
                    dir.display()
                ),
            ));
        }
        std::fs::create_dir_all(&host).map_err(|e| UserDataError::io(&origin, &host, e))?;
        std::os::unix::fs::lchown(&host, Some(uid), Some(gid))
            .map_err(|e| UserDataError::new(&origin, e.to_string()))?;
        std::fs::set_permissions(&host, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|e| UserDataError::new(&origin, e.to_string()))?;
    }
    write_file(
        &root.resolve(&file, &origin)?,
        text.as_bytes(),
        0o600,
        (uid, gid),
        &origin,
    )?;
    tracing::info!(user = %user.name, keys = user.ssh_authorized_keys.len(), "wrote authorized keys");
    Ok(())
}

fn write_sudoers(users: &[User], root: &Root) -> Result<()> {
    let rules: String = users
        .iter()
        .filter(|u| !u.sudo.is_empty())
        .map(|u| {
            let lines: String = u.sudo.iter().map(|r| format!("{} {r}\n", u.name)).collect();
            format!("\n# User rules for {}\n{lines}", u.name)
        })
        .collect();
    if rules.is_empty() {
        return Ok(());
    }
    let text = format!("# Created by kiln-firstboot from cloud-config users[].sudo{rules}");
    write_file(
        &root.resolve(Path::new(SUDOERS_FILE), "users")?,
        text.as_bytes(),
        0o440,
        (0, 0),
        "users",
    )
}

/// Runs a shadow tool with `--root`, putting its stderr into the error.
fn run(root: &Root, tool: &str, args: &[&str], origin: &str) -> Result<()> {
    let mut cmd = Command::new(tool);
    cmd.arg("--root").arg(root.dir()).args(args);
    kiln_core::command::Run::new(&mut cmd, tool)
        .run()
        .map_err(|e| UserDataError::new(origin, e.to_string()))?;
    Ok(())
}

/// The key file's new contents: Ignition's fragment is kiln's alone; cloud-init's
/// authorized_keys keeps the keys already there (read inside the root) and adds the new ones.
fn key_file_text(user: &User, root: &Root, file: &Path, origin: &str) -> Result<String> {
    let mut keys: Vec<String> = match user.key_file {
        KeyFile::IgnitionFragment => Vec::new(),
        KeyFile::AuthorizedKeys => {
            String::from_utf8_lossy(&root.read(file, origin)?.unwrap_or_default())
                .lines()
                .map(str::to_owned)
                .collect()
        }
    };
    for key in &user.ssh_authorized_keys {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    let mut text = keys.join("\n");
    text.push('\n');
    Ok(text)
}

/// A password hash, with missing or empty meaning locked (`*`): an empty hash would allow
/// logging in without a password.
fn locked_if_empty(hash: Option<&str>) -> String {
    match hash {
        Some(h) if !h.is_empty() => h.to_owned(),
        _ => "*".into(),
    }
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
