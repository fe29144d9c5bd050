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

use crate::plan::{Phase, Plan};
use crate::userdata::Result;
pub use root::Root;

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

/// Applies `plan` to `root`.
pub fn apply(plan: &Plan, root: &Root, options: &Options) -> Result<()> {
    validate::check(plan, root)?;
    if options.commands != Commands::None {
        run_commands(plan, root, &[Phase::Boot], &options.redact)?;
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
    if options.commands == Commands::All {
        run_commands(plan, root, &[Phase::Run, Phase::Script], &options.redact)?;
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
