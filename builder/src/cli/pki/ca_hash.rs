//! `kiln pki ca-hash`: the CA public key pin joining nodes check.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use kiln_core::pki::cert::{ca_hash, cert_der_from_pem};

/// Prints `sha256:<64 hex>`: SHA-256 of the certificate's DER SubjectPublicKeyInfo, the value of
/// `kubeadm join --discovery-token-ca-cert-hash`. Same result as kubeadm's documented pipeline
/// `openssl x509 -pubkey -in ca.crt | openssl rsa -pubin -outform der | openssl dgst -sha256`,
/// for RSA and ECDSA CAs alike.
#[derive(Debug, Args)]
pub struct CaHashArgs {
    /// The CA certificate (PEM), e.g. /etc/kubernetes/pki/ca.crt; `-` reads stdin.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

impl CaHashArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let name = self.file.display().to_string();
        let text = if name == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the certificate from stdin")?;
            s
        } else {
            std::fs::read_to_string(&self.file).with_context(|| format!("reading {name}"))?
        };
        let der = cert_der_from_pem(&text, &name)?;
        println!("{}", ca_hash(&der).with_context(|| name.clone())?);
        Ok(())
    }
}
