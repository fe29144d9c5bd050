//! The `kiln` command line: one module per subcommand, each an options struct with `run`.

mod build;
mod certificate_key;
mod images;
mod kubeconfig;
mod pki;
mod pull;
mod token;
mod versions;

use clap::{Parser, Subcommand, ValueEnum};

/// kiln bakes Kubernetes nodes and makes a cluster's shared secrets offline.
///
/// Start with `kiln pki init --out pki` to make the cluster CAs, then `kiln token generate` and
/// `kiln certificate-key` for the join secrets your nodes' user-data will carry.
#[derive(Debug, Parser)]
#[command(
    name = "kiln",
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
    /// Make and inspect the cluster PKI (CAs, service-account key, external etcd certificates).
    #[command(subcommand)]
    Pki(pki::PkiCommand),
    /// Bootstrap tokens for `kubeadm join`.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Print a new certificate key (64 hex characters) for `kubeadm join --control-plane`.
    CertificateKey(certificate_key::CertificateKeyArgs),
    /// Kubeconfig files signed by the cluster CA.
    #[command(subcommand)]
    Kubeconfig(kubeconfig::KubeconfigCommand),
    /// Bake Kubernetes from a recipe into a sysext image and an /opt tree.
    Build(build::BuildArgs),
    /// The container images kubeadm needs for a Kubernetes version (`kubeadm config images list`).
    #[command(subcommand)]
    Images(images::ImagesCommand),
    /// Pull images into verified, reproducible archives for nodes to import (air gap).
    Pull(pull::PullArgs),
    /// The Kubernetes releases this kiln knows: per minor the newest patch, the kubeadm config
    /// API, and whether independent checksums are pinned (`--checksums V` prints them).
    Versions(versions::VersionsArgs),
}

/// How a listing command prints: for people, or for programs.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    /// Lines of text.
    Text,
    /// One JSON document.
    Json,
}

impl Cli {
    /// Runs the chosen command.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Pki(cmd) => cmd.run(),
            Command::Token(cmd) => cmd.run(),
            Command::CertificateKey(args) => args.run(),
            Command::Kubeconfig(cmd) => cmd.run(),
            Command::Build(args) => args.run(),
            Command::Images(cmd) => cmd.run(),
            Command::Pull(args) => args.run(),
            Command::Versions(args) => args.run(),
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
