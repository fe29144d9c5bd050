//! The `kiln-firstboot` command line: one module per subcommand, each an options struct with
//! `run`.

mod apply;

use clap::{Parser, Subcommand};

/// Runs once on a node's first boot: finds the user-data, applies Ignition or cloud-config,
/// prepares containerd and runs `kubeadm init` or `kubeadm join` unattended.
#[derive(Debug, Parser)]
#[command(name = "kiln-firstboot", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply user-data (Ignition or cloud-config) to a root directory, all or nothing.
    Apply(apply::ApplyArgs),
}

impl Cli {
    /// Runs the chosen command.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Apply(args) => args.run(),
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
