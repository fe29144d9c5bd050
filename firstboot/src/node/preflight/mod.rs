//! Preflight: the kubeadm install page's requirements and kubeadm's own preflight checks, run
//! natively before kubeadm so a failure comes with a fix. Check names are kubeadm's, so they map
//! onto `ignorePreflightErrors`.
//!
//! - [`checks`]: the checks, reading a (possibly fake) system root.
//! - [`fix`]: what kiln repairs itself (ip_forward, kernel modules), persisted across reboots.

pub mod checks;
pub mod fix;

use std::fmt;
use std::path::PathBuf;

/// Which kind of node is checked (control planes need more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// `kubeadm init` or `kubeadm join --control-plane`.
    ControlPlane,
    /// `kubeadm join`.
    Worker,
}

/// The machine being checked: `/proc`, `/sys` and tools are read below `root` (`/` on a node,
/// a fake tree in tests); ports are probed on the live network stack.
#[derive(Debug, Clone)]
pub struct Host {
    /// Where `/proc`, `/sys`, `/usr/bin`, ... are read.
    pub root: PathBuf,
    /// The CRI endpoint configured by the node config, if any.
    pub cri_socket: Option<String>,
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Fine.
    Pass,
    /// Information for the operator (e.g. product_uuid, MACs).
    Info(String),
    /// Not fatal, but worth fixing.
    Warn(String),
    /// kubeadm would fail (or the node would not work).
    Fail(String),
}

/// One check, its outcome and how to fix a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// kubeadm's name for it.
    pub name: String,
    /// What was found.
    pub outcome: Outcome,
    /// What to do if it is not [`Outcome::Pass`].
    pub fix: String,
}

impl Check {
    fn new(name: impl Into<String>, outcome: Outcome, fix: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            outcome,
            fix: fix.into(),
        }
    }

    /// Whether this check stops the node from being provisioned.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail(_))
    }
}

/// Runs every check for `role` on `host`.
pub fn run(host: &Host, role: Role) -> Vec<Check> {
    let mut out = vec![checks::swap(host), checks::ip_forward(host)];
    out.extend(checks::modules(host));
    if role == Role::ControlPlane {
        out.push(checks::cpus(host));
        out.push(checks::memory(host));
    }
    out.extend(checks::ports(role));
    out.extend(checks::tools(host));
    out.push(checks::hostname(host));
    out.push(checks::cri(host));
    out.push(checks::cgroup_v2(host));
    out.push(checks::identity(host));
    out
}

/// A table of checks: name, result, detail and fix.
pub struct Table<'a>(pub &'a [Check]);

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .0
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        writeln!(
            f,
            "{:<width$}  {:<6}  DETAIL / HOW TO FIX",
            "CHECK", "RESULT"
        )?;
        for c in self.0 {
            let (result, detail) = match &c.outcome {
                Outcome::Pass => ("ok", String::new()),
                Outcome::Info(d) => ("info", d.clone()),
                Outcome::Warn(d) => ("warn", format!("{d}; {}", c.fix)),
                Outcome::Fail(d) => ("FAIL", format!("{d}; {}", c.fix)),
            };
            let line = format!("{:<width$}  {result:<6}  {detail}", c.name);
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}
