//! `kiln-firstboot join-service`: the join service on a control-plane node.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use kiln_firstboot::joinsvc::{self, policy::POLICY_PATH, server, Service};
use kiln_firstboot::node::cluster::client_from_kubeconfig;

/// Answers joining nodes' signed platform identities (EC2 instance identity documents, GCE
/// identity tokens) with short-lived bootstrap tokens, by the rules of the config file; one
/// token per instance, one audit line per decision. Listens on HTTPS with a certificate from the
/// cluster CA, so nodes pin it with their ca_cert_hashes. `--dry-run` checks the config and the
/// keys and prints what the service would do.
#[derive(Debug, Args)]
pub struct JoinServiceArgs {
    /// The service's config and rules (TOML).
    #[arg(long, value_name = "FILE", default_value = POLICY_PATH)]
    config: PathBuf,
    /// The cluster PKI directory holding ca.crt and ca.key.
    #[arg(long, value_name = "DIR", default_value = "/etc/kubernetes/pki")]
    pki_dir: PathBuf,
    /// The kubeconfig tokens are created with.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/kubernetes/admin.conf"
    )]
    kubeconfig: PathBuf,
    /// Check the config and keys, print the plan, and exit.
    #[arg(long)]
    dry_run: bool,
}

impl JoinServiceArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let (policy, keys) = joinsvc::load(&self.config)?;
        if self.dry_run {
            print!("{}", joinsvc::describe(&policy, &keys));
            return Ok(());
        }
        let tls = server::tls(&self.pki_dir, &policy.url)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let client = client_from_kubeconfig(&self.kubeconfig)
                .await
                .with_context(|| format!("reading {}", self.kubeconfig.display()))?;
            let listener = tokio::net::TcpListener::bind(policy.listen)
                .await
                .with_context(|| format!("listen: binding {}", policy.listen))?;
            tracing::info!(listen = %policy.listen, url = %policy.url, "join service ready");
            server::serve(listener, tls, Arc::new(Service::new(policy, keys, client))).await
        })
    }
}
