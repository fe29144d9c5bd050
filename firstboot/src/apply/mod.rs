//! The executor: applies a [`Plan`] to a root directory, all or nothing.
//!
//! [`apply`] first checks everything that can be checked without writing (paths stay inside the
//! root, no two entries claim one path, nothing exists that must not be replaced, every owner and
//! group is known, hard-link targets exist), then writes: groups and users (with the root's own
//! `groupadd`/`useradd --root`, as Ignition does), files, directories and links (each atomically,
//! mode and owner set before the rename), units and presets, the host name; commands last, and
//! only when asked.

mod accounts;
mod commands;
mod nodes;
pub mod root;
mod units;
mod validate;

use crate::plan::Plan;
use crate::userdata::Result;
pub use root::Root;

/// What [`apply`] may do besides writing files.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Run bootcmd, runcmd and scripts (in the root, via chroot unless it is `/`).
    pub run_commands: bool,
    /// Secrets to remove from command output before it is logged.
    pub redact: crate::redact::Redactor,
}

/// Applies `plan` to `root`.
pub fn apply(plan: &Plan, root: &Root, options: &Options) -> Result<()> {
    validate::check(plan, root)?;
    if options.run_commands {
        commands::run(plan, root, crate::plan::Phase::Boot, &options.redact)?;
    }
    accounts::apply(plan, root)?;
    // bootcmd and useradd (copying /etc/skel) may have changed the tree: resolve paths again.
    let resolved = validate::check(plan, root)?;
    nodes::apply(&resolved, root)?;
    units::apply(&plan.units, root)?;
    if let Some(name) = &plan.hostname {
        let path = root.resolve(std::path::Path::new("/etc/hostname"), "hostname")?;
        nodes::write_file(
            &path,
            format!("{name}\n").as_bytes(),
            0o644,
            (0, 0),
            "hostname",
        )?;
    }
    if options.run_commands {
        commands::run(plan, root, crate::plan::Phase::Run, &options.redact)?;
        commands::run(plan, root, crate::plan::Phase::Script, &options.redact)?;
    }
    Ok(())
}
