//! `kiln kubeconfig`: kubeconfig files with client certificates signed by the cluster CA.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use kiln_core::kubeconfig::{render_user_kubeconfig, UserRequest};
use kiln_core::pki::{Ca, KeyType};
use time::{Duration, OffsetDateTime};

use kiln_core::duration::parse_cli;

#[derive(Debug, Subcommand)]
pub enum KubeconfigCommand {
    /// Print a kubeconfig for a user, with a client certificate signed by the cluster CA.
    ///
    /// Like `kubeadm kubeconfig user`, offline. To repair a node whose kubelet client
    /// certificate expired ("Kubelet client certificate rotation fails"):
    /// `kiln kubeconfig user --ca-dir pki --org system:nodes --client-name system:node:NODE
    /// --server https://CONTROL_PLANE:6443 > kubelet.conf`.
    /// The output holds a private key: write it to a file readable only by its user.
    User(UserArgs),
}

impl KubeconfigCommand {
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            KubeconfigCommand::User(args) => args.run(),
        }
    }
}

#[derive(Debug, Args)]
pub struct UserArgs {
    /// Cluster PKI directory holding ca.crt and ca.key.
    #[arg(long, value_name = "DIR")]
    ca_dir: PathBuf,
    /// The user name: the certificate's CN (e.g. system:node:worker-1).
    #[arg(long, value_name = "NAME")]
    client_name: String,
    /// A group: the certificate's O (e.g. system:nodes); repeat for several.
    #[arg(long = "org", value_name = "ORG")]
    orgs: Vec<String>,
    /// The API server URL, e.g. https://10.0.0.10:6443.
    #[arg(long, value_name = "URL")]
    server: String,
    /// The cluster's name in the kubeconfig.
    #[arg(long, value_name = "NAME", default_value = "kubernetes")]
    cluster_name: String,
    /// How long the client certificate is valid, e.g. 8760h or 30d.
    #[arg(long, value_name = "DURATION", default_value = "8760h", value_parser = parse_cli)]
    validity_period: Duration,
    /// Client key algorithm; default: the CA's.
    #[arg(long, value_name = "TYPE")]
    key_type: Option<KeyType>,
}

impl UserArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let ca = Ca::load(&self.ca_dir.join("ca.crt"), &self.ca_dir.join("ca.key"))
            .context("reading the cluster CA")?;
        let request = UserRequest {
            server: self.server,
            cluster_name: self.cluster_name,
            client_name: self.client_name,
            organizations: self.orgs,
            validity: self.validity_period,
            key_type: self.key_type.unwrap_or(ca.key().key_type()),
        };
        let text = render_user_kubeconfig(&ca, &request, OffsetDateTime::now_utc())?;
        print!("{text}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::{Cli, Command};

    /// `1.5h` is a Go duration, as it is in node.toml.
    #[test]
    fn validity_period_takes_go_durations() {
        let parse = |period: &str| -> Result<super::Duration, String> {
            let cli = Cli::try_parse_from([
                "kiln",
                "kubeconfig",
                "user",
                "--ca-dir",
                "pki",
                "--client-name",
                "alice",
                "--server",
                "https://lb:6443",
                "--validity-period",
                period,
            ])
            .map_err(|e| e.to_string())?;
            match cli.command {
                Command::Kubeconfig(super::KubeconfigCommand::User(args)) => {
                    Ok(args.validity_period)
                }
                _ => unreachable!("parsed as kubeconfig user"),
            }
        };
        assert_eq!(parse("1.5h"), Ok(time::Duration::minutes(90)));
        assert_eq!(parse("30d"), Ok(time::Duration::days(30)));
        assert!(parse("1.5x").is_err());
    }
}
