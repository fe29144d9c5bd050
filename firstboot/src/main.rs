//! `kiln-firstboot`: the node agent that runs once on a node's first boot.
//!
//! Its commands (fetch user-data, apply it, prepare the node, run kubeadm) are being built on top
//! of kiln-core; today the binary only identifies itself.

use clap::Parser;

/// Runs once on a node's first boot: finds the user-data, applies Ignition or cloud-config,
/// prepares containerd and runs `kubeadm init` or `kubeadm join` unattended.
///
/// This build has no commands yet; see README.md for the state of the node agent.
#[derive(Debug, Parser)]
#[command(name = "kiln-firstboot", version)]
struct Cli {}

fn main() -> std::process::ExitCode {
    let _cli = Cli::parse();
    eprintln!("kiln-firstboot: no commands in this build yet; see `kiln-firstboot --help`");
    std::process::ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
