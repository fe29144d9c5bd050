//! `kiln-firstboot render`: print the kubeadm config this node will use.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use kiln_core::version::KubeVersion;
use kiln_firstboot::apply::Root;
use kiln_firstboot::node::kubeadm_config::{resolve, Files};
use kiln_firstboot::userdata::resource::NoNetwork;
use kiln_firstboot::userdata::Inputs;

use super::limits::LimitArgs;

/// Prints the kubeadm config stream (`kubeadm init|join --config`) this node will use, rendered
/// for its kubeadm version: from --node-config, else from the node config or Cluster API
/// kubeadm config the user-data writes, else from the root's /etc/kiln/node.toml. The output
/// contains the bootstrap token and certificate key, as kubeadm needs them: it goes to stdout
/// only, never to the logs.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// A node config (TOML) to render instead of searching.
    #[arg(long, value_name = "FILE")]
    node_config: Option<PathBuf>,
    /// User-data to take the node config (or Cluster API kubeadm config) from.
    #[arg(long, value_name = "FILE")]
    user_data: Option<PathBuf>,
    /// Instance metadata JSON for jinja templates in the user-data.
    #[arg(long, value_name = "FILE")]
    metadata: Option<PathBuf>,
    /// kubeadm version to render for (default: /usr/share/kiln/manifest.json in --root, else
    /// the config's kubernetes_version).
    #[arg(long, value_name = "vX.Y.Z")]
    kubeadm_version: Option<KubeVersion>,
    /// The node's root directory (manifest, files not in the user-data).
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    #[command(flatten)]
    limits: LimitArgs,
}

impl RenderArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let plan = match &self.user_data {
            Some(path) => Some(self.compile(path)?),
            None => None,
        };
        let files = Files {
            plan: plan.as_ref(),
            root: &self.root,
        };
        let rendered = resolve(
            &files,
            self.node_config.as_deref(),
            self.kubeadm_version.as_ref(),
        )?;
        for warning in &rendered.warnings {
            tracing::warn!("{warning}");
        }
        if let Some(service) = rendered.node.as_ref().and_then(|n| n.join_service.as_ref()) {
            tracing::info!(
                service,
                "join_service: the token (and the endpoint, unless set) come from the service at \
                 join time; discovery is filled in then"
            );
        }
        tracing::info!(
            origin = %rendered.origin.display(),
            role = rendered.role.name(),
            kubeadm = %rendered.kubeadm,
            "rendered kubeadm config"
        );
        print!("{}", rendered.yaml.expose());
        Ok(())
    }

    fn compile(&self, path: &PathBuf) -> anyhow::Result<kiln_firstboot::plan::Plan> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let metadata = match &self.metadata {
            Some(m) => {
                let text = std::fs::read(m).with_context(|| format!("reading {}", m.display()))?;
                serde_json::from_slice(&text)
                    .with_context(|| format!("{}: invalid metadata JSON", m.display()))?
            }
            None => serde_json::json!({}),
        };
        let root = Root::new(&self.root)?;
        let root_has = |p: &str| root.has(std::path::Path::new(p));
        let inputs = Inputs {
            metadata: &metadata,
            fetcher: &NoNetwork,
            root_has: &root_has,
            limits: self.limits.limits(),
        };
        kiln_firstboot::userdata::compile(&bytes, &inputs)
            .with_context(|| format!("{}: user-data rejected", path.display()))
    }
}
