//! `kiln pki`: the cluster PKI, made offline in kubeadm's layout.

mod ca_hash;
mod etcd;
mod init;
mod output;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Make the cluster-wide CAs and service-account key kubeadm accepts pre-made.
    Init(init::InitArgs),
    /// Print the `sha256:` pin of a CA certificate for `--discovery-token-ca-cert-hash`.
    CaHash(ca_hash::CaHashArgs),
    /// Make certificates and kubeadm configs for every member of an external etcd cluster.
    Etcd(etcd::EtcdArgs),
}

impl PkiCommand {
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            PkiCommand::Init(args) => args.run(),
            PkiCommand::CaHash(args) => args.run(),
            PkiCommand::Etcd(args) => args.run(),
        }
    }
}
