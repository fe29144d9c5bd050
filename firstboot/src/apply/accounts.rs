//! Groups and users, created with the root's shadow tools (`groupadd`/`useradd`/`usermod
//! --root`) exactly as Ignition does; SSH keys (Ignition: `~/.ssh/authorized_keys.d/
//! ignition`; cloud-init: `~/.ssh/authorized_keys`) and cloud-init's sudoers rules as nodes
//! that are validated and committed with every other file.

use std::path::Path;
use std::process::Command;

use super::root::Root;
use crate::plan::{
    Directory, Existing, File, Group, KeyFile, Node, Owner, Plan, Principal, User, Writer,
};
use crate::userdata::{Result, UserDataError};

/// cloud-init's sudoers drop-in for `users[].sudo`.
const SUDOERS_FILE: &str = "/etc/sudoers.d/90-cloud-init-users";

/// Creates groups and users (their keys and sudo rules are nodes: see [`nodes`]). The plan
/// was validated: names are ones the shadow tools accept, ids are free.
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
                &["--lock", "--", &user.name],
                &format!("user {}", user.name),
            )?;
        }
    }
    for group in &plan.groups {
        for member in &group.members {
            run(
                root,
                "usermod",
                &["--append", "--groups", &group.name, "--", member],
                &format!("groups ({})", group.name),
            )?;
        }
    }
    Ok(())
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
    args.extend(["--".into(), group.name.clone()]);
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
    args.extend(["--".into(), user.name.clone()]);
    let tool = if exists { "usermod" } else { "useradd" };
    run(root, tool, &strs(&args), &format!("user {}", user.name))?;
    tracing::info!(user = %user.name, created = !exists, "configured user");
    Ok(())
}

/// The nodes for the plan's SSH keys and sudoers rules (written with everything else, after
/// the accounts exist).
pub fn nodes(plan: &Plan, root: &Root) -> Result<Vec<Node>> {
    let mut out = Vec::new();
    for user in plan
        .users
        .iter()
        .filter(|u| !u.ssh_authorized_keys.is_empty())
    {
        out.extend(key_nodes(user, root)?);
    }
    out.extend(sudoers_node(&plan.users, root)?);
    Ok(out)
}

/// `~/.ssh` (and Ignition's `authorized_keys.d`), 0700, and the key file, 0600, all owned by
/// the user. The home is the plan's, else the account's, else `/home/NAME` (useradd's default).
fn key_nodes(user: &User, root: &Root) -> Result<Vec<Node>> {
    let origin = format!("user {}", user.name);
    let account = root.user(&user.name);
    let home = (user.home_dir.clone())
        .or_else(|| account.as_ref().map(|(_, _, h)| h.clone()))
        .unwrap_or_else(|| format!("/home/{}", user.name));
    let owner = key_owner(user, account.as_ref().map(|(u, g, _)| (*u, *g)));
    let ssh = Path::new(&home).join(".ssh");
    let (dirs, file) = match user.key_file {
        KeyFile::IgnitionFragment => (
            vec![ssh.clone(), ssh.join("authorized_keys.d")],
            ssh.join("authorized_keys.d/ignition"),
        ),
        KeyFile::AuthorizedKeys => (vec![ssh.clone()], ssh.join("authorized_keys")),
    };
    let mut out = Vec::new();
    for dir in dirs {
        let host = root.resolve(&dir, &origin)?;
        if host.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
            return Err(UserDataError::new(
                &origin,
                format!(
                    "{} is not a directory (a symlink?); refusing to write keys through it",
                    dir.display()
                ),
            ));
        }
        out.push(Node::Directory(Directory {
            path: dir,
            mode: Some(0o700),
            owner: owner.clone(),
            overwrite: false,
            origin: origin.clone(),
        }));
    }
    let text = key_file_text(user, root, &file, &origin)?;
    out.push(Node::File(File {
        path: file,
        contents: Some(text.into_bytes()),
        append: Vec::new(),
        existing: Existing::Overwrite,
        mode: Some(0o600),
        owner,
        writer: Writer::Replace,
        origin,
    }));
    Ok(out)
}

/// The key files' owner: the account's ids once it exists; before (validation only) its name
/// and the group useradd will give it.
fn key_owner(user: &User, ids: Option<(u32, u32)>) -> Owner {
    if let Some((uid, gid)) = ids {
        return Owner {
            user: Some(Principal::Id(uid)),
            group: Some(Principal::Id(gid)),
        };
    }
    let own_group = (!user.no_user_group).then(|| user.name.clone());
    let group = user
        .primary_group
        .clone()
        .or(own_group)
        .map(|g| match g.parse() {
            Ok(id) => Principal::Id(id),
            Err(_) => Principal::Name(g),
        });
    Owner {
        user: Some(Principal::Name(user.name.clone())),
        group,
    }
}

/// cloud-init's sudoers file with the plan's rules appended, as cloud-init appends them; rules
/// already in the file are not added again.
fn sudoers_node(users: &[User], root: &Root) -> Result<Option<Node>> {
    if users.iter().all(|u| u.sudo.is_empty()) {
        return Ok(None);
    }
    let existing = read_sudoers(root)?;
    let present: Vec<&str> = existing.as_deref().unwrap_or("").lines().collect();
    let mut text = existing
        .clone()
        .unwrap_or_else(|| "# Created by kiln-firstboot from cloud-config users[].sudo".to_owned());
    let mut any = false;
    for u in users.iter().filter(|u| !u.sudo.is_empty()) {
        any = true;
        let lines: Vec<String> = (u.sudo.iter().map(|r| format!("{} {r}", u.name)))
            .filter(|l| !present.contains(&l.as_str()))
            .collect();
        if !lines.is_empty() {
            text.push_str(&format!(
                "\n# User rules for {}\n{}\n",
                u.name,
                lines.join("\n")
            ));
        }
    }
    Ok(any.then(|| {
        Node::File(File {
            path: SUDOERS_FILE.into(),
            contents: Some(text.into_bytes()),
            append: Vec::new(),
            existing: Existing::Overwrite,
            mode: Some(0o440),
            owner: Owner::default(),
            writer: Writer::Replace,
            origin: "users".into(),
        })
    }))
}

/// The sudoers file as it is now, if it exists, read inside the root.
fn read_sudoers(root: &Root) -> Result<Option<String>> {
    let bytes = root.read(Path::new(SUDOERS_FILE), "users")?;
    Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Runs a shadow tool with `--root`, putting its stderr into the error with the `--password`
/// hashes of `args` redacted (a tool may echo them; the error never shows argv).
fn run(root: &Root, tool: &str, args: &[&str], origin: &str) -> Result<()> {
    let mut cmd = Command::new(tool);
    cmd.arg("--root").arg(root.dir()).args(args);
    let mut redactor = crate::redact::Redactor::default();
    for pair in args.windows(2).filter(|p| p[0] == "--password") {
        redactor.add(pair[1]);
    }
    let clean = |text: &str| redactor.clean(text);
    kiln_core::command::Run::new(&mut cmd, tool)
        .redact(&clean)
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
