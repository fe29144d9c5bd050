//! `kiln certificate-key`: the key that encrypts the control-plane certificates kubeadm uploads.

use clap::Args;

/// Prints 64 hex characters (a 32-byte AES-256 key), like `kubeadm certs certificate-key`.
#[derive(Debug, Args)]
pub struct CertificateKeyArgs {}

impl CertificateKeyArgs {
    pub fn run(self) -> anyhow::Result<()> {
        println!("{}", kiln_core::token::generate_certificate_key()?);
        Ok(())
    }
}
