//! One document of a kubeadm `--config` stream, typed for the kinds kiln reads and kept as
//! given for the others.

use serde_yaml_ng::Mapping;

use super::types::{ClusterConfiguration, InitConfiguration, JoinConfiguration};

/// `apiVersion` of KubeletConfiguration.
pub const KUBELET_API: &str = "kubelet.config.k8s.io/v1beta1";
/// `apiVersion` of KubeProxyConfiguration.
pub const KUBE_PROXY_API: &str = "kubeproxy.config.k8s.io/v1alpha1";

/// One document of the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    /// `InitConfiguration`.
    Init(Box<InitConfiguration>),
    /// `ClusterConfiguration`.
    Cluster(Box<ClusterConfiguration>),
    /// `JoinConfiguration`.
    Join(Box<JoinConfiguration>),
    /// KubeletConfiguration, KubeProxyConfiguration, or v1beta4's ResetConfiguration and
    /// UpgradeConfiguration, kept as given.
    Other {
        /// The document's kind.
        kind: String,
        /// The whole document.
        body: Mapping,
    },
}

impl Document {
    /// The document's kind.
    pub fn kind(&self) -> &str {
        match self {
            Document::Init(_) => "InitConfiguration",
            Document::Cluster(_) => "ClusterConfiguration",
            Document::Join(_) => "JoinConfiguration",
            Document::Other { kind, .. } => kind,
        }
    }
}
