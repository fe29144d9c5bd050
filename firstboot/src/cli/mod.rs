//! The `kiln-firstboot` command line: one module per subcommand, each an options struct with
//! `run`.

mod apply;
mod fetch;
mod join_service;
mod limits;
mod preflight;
mod render;
mod run;

use clap::{Parser, Subcommand};

/// Runs once on a node's first boot: finds the user-data, applies Ignition or cloud-config,
/// prepares containerd and runs `kubeadm init` or `kubeadm join` unattended.
#[derive(Debug, Parser)]
#[command(
    name = "kiln-firstboot",
    version,
    propagate_version = true,
    after_help = kiln_core::cli_main::EXIT_STATUS_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply user-data (Ignition or cloud-config) to a root directory, all or nothing.
    Apply(apply::ApplyArgs),
    /// Find this machine's datasource and fetch its user-data and instance metadata.
    ///
    /// Searches, cheapest first: the kernel command line, QEMU fw_cfg, NoCloud and config drive
    /// media, the DMI identity of known clouds, then a bounded probe of 169.254.169.254.
    Fetch(fetch::FetchArgs),
    /// Serve joining nodes short-lived tokens for their signed platform identity (control plane).
    JoinService(join_service::JoinServiceArgs),
    /// Check the node against kubeadm's requirements and print a table with fixes.
    Preflight(preflight::PreflightArgs),
    /// Provision the node once: fetch, configure, preflight, commands; resumable.
    Run(run::RunArgs),
    /// Print what the last run did.
    Status(run::StatusArgs),
    /// Print the kubeadm config this node will use (node config or Cluster API data).
    Render(render::RenderArgs),
}

impl Cli {
    /// Runs the chosen command.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Apply(args) => args.run(),
            Command::Fetch(args) => args.run(),
            Command::JoinService(args) => args.run(),
            Command::Preflight(args) => args.run(),
            Command::Run(args) => args.run(),
            Command::Status(args) => args.run(),
            Command::Render(args) => args.run(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
