//! `kiln-firstboot preflight`: the node's readiness for kubeadm, as a table with fixes.

use std::path::PathBuf;

use clap::Args;
use kiln_firstboot::node::preflight::{self, fix, Host, Role, Table};

/// Runs kubeadm's preflight checks natively (swap, CPUs and memory for control planes, free
/// ports, ip_forward, overlay and br_netfilter, required tools, host name, container runtime,
/// cgroup v2) and prints a table: check (kubeadm's name), result, and how to fix it. product_uuid
/// and MAC addresses are reported: they must be unique in the cluster. Exits non-zero if a
/// check fails.
#[derive(Debug, Args)]
pub struct PreflightArgs {
    /// The node's role: control planes need 2 CPUs, 1700 MB and more free ports.
    #[arg(long, value_enum, default_value = "worker")]
    role: Role,
    /// Root to read /proc, /sys and tools from (tests use a fake tree).
    #[arg(long, value_name = "DIR", default_value = "/")]
    sys_root: PathBuf,
    /// The CRI endpoint the node config names, e.g. unix:///var/run/containerd/containerd.sock.
    #[arg(long, value_name = "URL")]
    cri_socket: Option<String>,
    /// Repair what kiln can (ip_forward, kernel modules; persisted), then check again.
    #[arg(long)]
    fix: bool,
}

impl PreflightArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let host = Host {
            root: self.sys_root,
            cri_socket: self.cri_socket,
        };
        let mut checks = preflight::run(&host, self.role);
        if self.fix {
            for done in fix::apply(&host, &checks)? {
                tracing::info!("{done}");
            }
            checks = preflight::run(&host, self.role);
        }
        print!("{}", Table(&checks));
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| c.failed())
            .map(|c| c.name.as_str())
            .collect();
        if !failed.is_empty() {
            anyhow::bail!("preflight failed: {}", failed.join(", "));
        }
        Ok(())
    }
}
