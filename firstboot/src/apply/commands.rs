//! Runs the plan's commands of one phase, in order, inside the root (chroot unless the root is
//! `/`). Their output goes to the log line by line with known secrets redacted; a failing
//! command stops the run with its exit status.

use std::process::Command as Process;

use super::root::Root;
use crate::plan::{Phase, Plan};
use crate::redact::Redactor;
use crate::userdata::{Result, UserDataError};

/// Where scripts from user-data are written before they run (inside the root).
const SCRIPT_DIR: &str = "/var/lib/kiln/scripts";

/// Runs every command of `phase`.
pub fn run(plan: &Plan, root: &Root, phase: Phase, redact: &Redactor) -> Result<()> {
    for (i, cmd) in plan
        .commands
        .iter()
        .enumerate()
        .filter(|(_, c)| c.phase == phase)
    {
        let argv = match &cmd.script {
            Some(body) => {
                let path = format!("{SCRIPT_DIR}/part-{i:03}");
                let host = root.resolve(std::path::Path::new(&path), &cmd.origin)?;
                super::nodes::write_file(&host, body, 0o700, (0, 0), &cmd.origin)?;
                // Without a #! line (boothooks), the shell runs it, as cloud-init does.
                if body.starts_with(b"#!") {
                    vec![path]
                } else {
                    vec!["sh".into(), path]
                }
            }
            None => cmd.argv.clone(),
        };
        if argv.is_empty() {
            return Err(UserDataError::new(&cmd.origin, "empty command"));
        }
        let process = if root.dir() == std::path::Path::new("/") {
            let mut p = Process::new(&argv[0]);
            p.args(&argv[1..]);
            p
        } else {
            let mut p = Process::new("chroot");
            p.arg(root.dir()).args(&argv);
            p
        };
        tracing::info!(origin = %cmd.origin, phase = ?phase, "running command");
        let done = crate::process::run_logged(process, &cmd.origin, redact)
            .map_err(|e| UserDataError::new(&cmd.origin, format!("cannot run: {e}")))?;
        if !done.status.success() {
            return Err(UserDataError::new(
                &cmd.origin,
                format!("command failed ({}): {}", done.status, done.detail()),
            ));
        }
    }
    Ok(())
}
