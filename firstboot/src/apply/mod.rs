//! The executor: applies a [`Plan`] to a root directory, all or nothing, and convergent after
//! a crash.
//!
//! [`apply`] first expands everything it will write into plain nodes — the plan's files,
//! directories and links, unit files, drop-ins, masks, the preset file (its lines kept, the
//! plan's added), the host name, SSH key files and cloud-init's sudoers file (its rules kept,
//! the plan's appended) — and checks them and the accounts in one pass before the first effect:
//! paths stay inside the root, names fit NAME_MAX and PATH_MAX, every existing ancestor is a
//! directory, no two entries claim one path, nothing exists that must not be replaced, link
//! targets are valid and hard-link targets stay reachable, account names are ones `useradd`
//! accepts and their ids are free, every owner is known, `/etc/skel` agrees with files planned
//! in a new home. Only then: groups and users (with the root's own `groupadd`/`useradd --root`,
//! as Ignition does), directories, and every file and link in one journaled commit; commands
//! last, and only when asked.
//!
//! **Crashes**: the commit's journal (`/var/lib/kiln/apply.journal` in the root, see
//! [`kiln_core::fsutil::journal`]) lets the next run finish a commit a kill interrupted between
//! renames, or remove the temps of one killed while staging; the applied plan's digest is
//! recorded (`/var/lib/kiln/apply.done`), so the same plan applied again is recognised as done
//! (appends are not repeated). Files that already hold exactly what is planned count as done,
//! even with `overwrite: false`. The shadow tools do not write their four databases at once, so
//! the databases are saved before the first account is made and restored (and homes the killed
//! run made removed) by the next run, which then makes the accounts again ([`account_undo`]);
//! a failing tool undoes the accounts at once.

mod account_rules;
mod account_undo;
mod accounts;
mod checks;
mod commands;
mod nodes;
pub mod root;
mod skel;
mod units;
mod validate;

use std::path::Path;

use crate::plan::{Existing, File, Node, Owner, Phase, Plan, Writer};
use crate::userdata::{Result, UserDataError};
use kiln_core::fsutil::journal::{Journal, Recovered};
pub use root::Root;

/// The commit journal and the record of the last applied plan, inside the root.
const JOURNAL: &str = "/var/lib/kiln/apply.journal";
const DONE: &str = "/var/lib/kiln/apply.done";

/// Which of the plan's commands [`apply`] runs (in the root, via chroot unless it is `/`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Commands {
    /// None: they are only recorded in the plan.
    #[default]
    None,
    /// bootcmd and boothooks, before files are written (the boot-time run's `configure` step;
    /// runcmd and scripts come later through [`run_commands`]).
    Boot,
    /// All: bootcmd first, runcmd and scripts after everything is written.
    All,
}

/// What [`apply`] may do besides writing files.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Which commands to run.
    pub commands: Commands,
    /// Secrets to remove from command output before it is logged.
    pub redact: crate::redact::Redactor,
}

/// How far an earlier run got with this plan (by the digests it recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// Nothing of it is known to be written.
    Fresh,
    /// The files cloud-init writes before the accounts are in place.
    BeforeAccounts,
    /// All of it.
    Done,
}

/// Applies `plan` to `root` (see the module docs).
pub fn apply(plan: &Plan, root: &Root, options: &Options) -> Result<()> {
    let journal = journal(root)?;
    recover(&journal)?;
    if account_undo::recover(root)? {
        tracing::warn!("an earlier apply was killed while making accounts; they were undone");
    }
    let id = plan.digest();
    let early_id = format!("{id}.before-accounts");
    let progress = progress(&journal, &id, &early_id)?;
    if progress != Progress::Done {
        validate::check(plan, &all_nodes(plan, root, progress)?, root)?;
    }
    if options.commands != Commands::None {
        run_commands(plan, root, &[Phase::Boot], &options.redact)?;
    }
    if progress == Progress::Done {
        tracing::info!(plan = %id, "this user-data was applied already; nothing to write");
    } else {
        if progress == Progress::Fresh {
            commit_before_accounts(plan, root, &journal, &early_id)?;
        }
        make_accounts(plan, root)?;
        // bootcmd, the files above and useradd (copying /etc/skel) may have changed the tree:
        // expand and check again, now with the accounts' ids.
        let rest = all_nodes(plan, root, Progress::BeforeAccounts)?;
        let resolved = validate::check(plan, &rest, root)?;
        nodes::apply(&resolved, root, &journal, &id)?;
        units::remove_wants_links(&plan.units, root)?;
    }
    if options.commands == Commands::All {
        run_commands(plan, root, &[Phase::Run, Phase::Script], &options.redact)?;
    }
    Ok(())
}

fn progress(journal: &Journal, id: &str, early_id: &str) -> Result<Progress> {
    let done = journal
        .done_id()
        .map_err(|e| UserDataError::new("--root", e.to_string()))?;
    Ok(match done.as_deref() {
        Some(d) if d == id => Progress::Done,
        Some(d) if d == early_id => Progress::BeforeAccounts,
        _ => Progress::Fresh,
    })
}

/// cloud-init's `write_files` (without `defer`) and `mounts` run before `users_groups`: their
/// files are committed first, in a journaled batch of their own, so `/etc/skel` content or a
/// file in a new home is there before `useradd` looks.
fn commit_before_accounts(plan: &Plan, root: &Root, journal: &Journal, id: &str) -> Result<()> {
    let early: Vec<Node> = plan.nodes.iter().filter(|n| is_early(n)).cloned().collect();
    if early.is_empty() {
        return Ok(());
    }
    let resolved = validate::check(plan, &early, root)?;
    nodes::apply(&resolved, root, journal, id)
}

fn is_early(node: &Node) -> bool {
    matches!(node, Node::File(f) if f.before_accounts())
}

/// Groups and users, undone as a whole if a tool fails (and by the next run if this one is
/// killed: see [`account_undo`]).
fn make_accounts(plan: &Plan, root: &Root) -> Result<()> {
    if plan.groups.is_empty() && plan.users.is_empty() {
        return Ok(());
    }
    account_undo::save(plan, root)?;
    if let Err(e) = accounts::apply(plan, root) {
        account_undo::recover(root)?;
        return Err(e);
    }
    account_undo::done(root)
}

/// Every node apply writes: the plan's own, then units, the host name, keys and sudoers;
/// without those written before the accounts once that `progress` is reached.
fn all_nodes(plan: &Plan, root: &Root, progress: Progress) -> Result<Vec<Node>> {
    let written = |n: &Node| progress != Progress::Fresh && is_early(n);
    let mut all: Vec<Node> = plan.nodes.iter().filter(|n| !written(n)).cloned().collect();
    all.extend(units::nodes(&plan.units, root)?);
    all.extend(plan.hostname.as_deref().map(hostname).transpose()?);
    all.extend(accounts::nodes(plan, root)?);
    Ok(all)
}

/// `/etc/hostname`: one line, a name the kernel takes (at most 64 bytes of letters, digits,
/// `-` and `.`).
fn hostname(name: &str) -> Result<Node> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.';
    if name.is_empty() || name.len() > 64 || !name.bytes().all(ok) || name.starts_with('-') {
        return Err(UserDataError::new(
            "hostname",
            format!("{name:?} is not a valid host name"),
        ));
    }
    Ok(Node::File(File {
        path: "/etc/hostname".into(),
        contents: Some(format!("{name}\n").into_bytes()),
        append: Vec::new(),
        existing: Existing::Overwrite,
        mode: Some(0o644),
        owner: Owner::default(),
        writer: Writer::Replace,
        origin: "hostname".into(),
    }))
}

/// The root's journal.
fn journal(root: &Root) -> Result<Journal> {
    let path = root.resolve(Path::new(JOURNAL), "--root")?;
    let done = root.resolve(Path::new(DONE), "--root")?;
    Ok(Journal::new(path, done))
}

/// Finishes (or rolls back) the commit of a run that was killed.
fn recover(journal: &Journal) -> Result<()> {
    match journal.recover() {
        Ok(Recovered::Nothing) => {}
        Ok(Recovered::RolledBack) => {
            tracing::warn!("an earlier apply was killed while staging; its temp files were removed")
        }
        Ok(Recovered::RolledForward { id }) => {
            tracing::warn!(plan = %id, "an earlier apply was killed while committing; finished it")
        }
        Err(e) => return Err(UserDataError::new("--root", e.to_string())),
    }
    Ok(())
}

/// Runs the plan's commands of `phases`, phase by phase, in order.
pub fn run_commands(
    plan: &Plan,
    root: &Root,
    phases: &[Phase],
    redact: &crate::redact::Redactor,
) -> Result<()> {
    for &phase in phases {
        commands::run(plan, root, phase, redact)?;
    }
    Ok(())
}
