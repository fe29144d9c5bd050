//! `kiln images`: the container images kubeadm needs, from a kubeadm binary (`--kubeadm`) or
//! kiln's table of kubeadm releases.

use anyhow::Context as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use kiln_core::images;
use kiln_core::version::KubeVersion;

use super::Output;

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Print the control-plane images kubeadm pulls for a Kubernetes version, one per line.
    ///
    /// The same list, in the same order, as `kubeadm config images list --kubernetes-version V
    /// [--image-repository R]`: kube-apiserver, kube-controller-manager, kube-scheduler,
    /// kube-proxy, coredns, pause, etcd. With --kubeadm PATH that kubeadm is asked (right for
    /// every release, also ones newer than this kiln); without it, kiln's table of releases
    /// answers, without kubeadm or the network (`kiln versions` lists the releases it knows).
    /// Use it to mirror the images to a private registry or to pre-pull them into a node image.
    ///
    /// Examples:
    ///   kiln images list --kubernetes-version v1.36.3 --image-repository mirror.example/k8s
    ///   kiln images list --kubernetes-version 1.36            # the newest 1.36 kiln knows
    ///   kiln images list --kubeadm ./kubeadm                  # that kubeadm's own release
    List(ListArgs),
}

/// Options of `kiln images list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The Kubernetes (kubeadm) version, e.g. v1.36.3 or 1.36.3; `1.36` means the newest 1.36
    /// patch kiln knows. kubeadm's etcd and CoreDNS tags change between patch releases, so give
    /// the patch version you install. Required unless --kubeadm is given (then that kubeadm's
    /// own version, from `kubeadm version -o short`).
    #[arg(long, value_name = "VERSION", required_unless_present = "kubeadm")]
    kubernetes_version: Option<String>,
    /// Ask this kubeadm binary instead of kiln's table: it runs `kubeadm config images list
    /// --kubernetes-version V -o json` (never without a version, which would ask the internet),
    /// bounded to 60 s.
    #[arg(long, value_name = "PATH")]
    kubeadm: Option<PathBuf>,
    /// Registry and path to take the images from instead of registry.k8s.io (kubeadm's
    /// imageRepository), e.g. mirror.example/k8s. CoreDNS is then REPOSITORY/coredns:TAG, as
    /// kubeadm names it.
    #[arg(long, value_name = "REPOSITORY")]
    image_repository: Option<String>,
    /// text: one image per line, like kubeadm; json: {"kubernetesVersion": ..., "source":
    /// "kubeadm" | "table", "images": [...]}.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
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
        let version = self.version()?;
        let repo = self.image_repository.as_deref();
        images::repository(repo)?;
        let list = match &self.kubeadm {
            Some(path) => images::kubeadm::ask(path, &version, repo)?,
            None => images::control_plane_images(&version, repo)?,
        };
        match self.output {
            Output::Text => {
                for image in &list {
                    println!("{image}");
                }
            }
            Output::Json => {
                let doc = serde_json::json!({
                    "kubernetesVersion": version.to_string(),
                    "source": if self.kubeadm.is_some() { "kubeadm" } else { "table" },
                    "images": list,
                });
                println!("{}", serde_json::to_string_pretty(&doc)?);
            }
        }
        Ok(())
    }

    /// --kubernetes-version resolved, else the version --kubeadm reports.
    fn version(&self) -> anyhow::Result<KubeVersion> {
        if let Some(text) = &self.kubernetes_version {
            return images::table::resolve(text).context("--kubernetes-version");
        }
        let path = self.kubeadm.as_deref().expect("clap requires one of them");
        Ok(images::kubeadm::version(path)?)
    }
}
