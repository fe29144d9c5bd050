//! `kiln images`: the container images kubeadm needs, from kiln's table of kubeadm releases.

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use kiln_core::images;
use kiln_core::version::KubeVersion;

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Print the control-plane images kubeadm pulls for a Kubernetes version, one per line.
    ///
    /// The same list, in the same order, as `kubeadm config images list --kubernetes-version V
    /// [--image-repository R]`, without needing kubeadm or the network: kube-apiserver,
    /// kube-controller-manager, kube-scheduler, kube-proxy, coredns, pause, etcd. Use it to
    /// mirror the images to a private registry or to pre-pull them into a node image.
    ///
    /// Example: kiln images list --kubernetes-version v1.31.2 --image-repository mirror.example/k8s
    List(ListArgs),
}

/// Options of `kiln images list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The Kubernetes (kubeadm) version, e.g. v1.31.2 or 1.31.2. kubeadm's etcd and CoreDNS tags
    /// change between patch releases, so give the exact patch version you install.
    #[arg(long, value_name = "VERSION")]
    kubernetes_version: String,
    /// Registry and path to take the images from instead of registry.k8s.io (kubeadm's
    /// imageRepository), e.g. mirror.example/k8s. CoreDNS is then REPOSITORY/coredns:TAG, as
    /// kubeadm names it.
    #[arg(long, value_name = "REPOSITORY")]
    image_repository: Option<String>,
    /// text: one image per line, like kubeadm; json: {"kubernetesVersion": ..., "images": [...]}.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// How `kiln images list` prints the list.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

impl ImagesCommand {
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            ImagesCommand::List(args) => args.run(),
        }
    }
}

impl ListArgs {
    fn run(self) -> anyhow::Result<()> {
        let version: KubeVersion = self
            .kubernetes_version
            .parse()
            .context("--kubernetes-version")?;
        let list = images::control_plane_images(&version, self.image_repository.as_deref())?;
        match self.output {
            Output::Text => {
                for image in &list {
                    println!("{image}");
                }
            }
            Output::Json => {
                let doc = serde_json::json!({
                    "kubernetesVersion": version.to_string(),
                    "images": list,
                });
                println!("{}", serde_json::to_string_pretty(&doc)?);
            }
        }
        Ok(())
    }
}
