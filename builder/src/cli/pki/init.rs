//! `kiln pki init`: ca, front-proxy-ca, etcd/ca and sa, as /etc/kubernetes/pki holds them.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use kiln_core::pki::cluster::ClusterPki;
use kiln_core::pki::KeyType;
use time::OffsetDateTime;

use super::output::{print_plan, replace_set};

/// Writes ca.crt/ca.key, front-proxy-ca.crt/.key, etcd/ca.crt/.key and sa.key/sa.pub into DIR,
/// with kubeadm's file names, subjects, key usages and validity (CAs: 10 years, back-dated 5
/// minutes). Private keys are mode 0600. Copy DIR to /etc/kubernetes/pki on the first
/// control-plane node (or let kiln-firstboot do it); kubeadm uses CAs it finds there.
///
/// Prints the CA's `sha256:` pin on stdout, for joining nodes' user-data.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to write; created if missing. Existing keys are never replaced without --force.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Key algorithm (kubeadm's encryptionAlgorithm): rsa-2048, rsa-3072, rsa-4096, ecdsa-p256,
    /// ecdsa-p384.
    #[arg(long, value_name = "TYPE", default_value = "rsa-2048")]
    key_type: KeyType,
    /// Replace files that already exist in DIR: the whole set at once (DIR is rebuilt beside
    /// itself, other files carried over, and swapped in), never some of them.
    #[arg(long)]
    force: bool,
    /// Print the files that would be written (mode, size, path) and write nothing.
    #[arg(long)]
    dry_run: bool,
}

impl InitArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let out = &self.out;
        let pki = ClusterPki::generate(self.key_type, OffsetDateTime::now_utc())?;
        let tree = pki.files()?;
        if self.dry_run {
            print_plan(out, &tree);
            return Ok(());
        }
        match (out.exists(), self.force) {
            (true, true) => replace_set(&tree, out),
            (true, false) => tree.write_into(out, false),
            (false, _) => tree.publish_new(out, 0o700),
        }
        .with_context(|| format!("writing the cluster PKI to {}", out.display()))?;
        tracing::info!(dir = %out.display(), key_type = %self.key_type, "wrote cluster CAs and service-account key");
        println!("{}", pki.ca.hash()?);
        Ok(())
    }
}
