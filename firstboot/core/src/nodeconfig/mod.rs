//! The kiln node config (`/etc/kiln/node.toml`, delivered by user-data): what this node is
//! (init, worker join, control-plane join) and how it joins. Parsed strictly from TOML and
//! validated into [`NodeConfig`]; errors name the field (`pod_subnets[1]: ...`).
//!
//! Secrets (token, certificate key) are held in types whose `Debug` redacts them.

pub mod checks;
mod raw;
mod rules;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::token::BootstrapToken;
use crate::version::KubeVersion;
pub use checks::Cidr;

/// Where user-data puts the node config.
pub const NODE_CONFIG_PATH: &str = "/etc/kiln/node.toml";
/// containerd's CRI socket, the default runtime endpoint.
pub const CONTAINERD_SOCKET: &str = "unix:///var/run/containerd/containerd.sock";
/// Where kubelet and controller-manager look for FlexVolume plugins when /usr is read-only
/// (kubeadm troubleshooting, "/usr is mounted read-only on nodes").
pub const FLEX_VOLUME_DIR: &str = "/opt/libexec/kubernetes/kubelet-plugins/volume/exec/";

/// What the node becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The first control-plane node: `kubeadm init`.
    Init,
    /// A worker: `kubeadm join`.
    Join,
    /// Another control-plane node: `kubeadm join --control-plane`.
    ControlPlane,
}

impl Role {
    /// The name used in node.toml.
    pub fn name(self) -> &'static str {
        match self {
            Role::Init => "init",
            Role::Join => "join",
            Role::ControlPlane => "control-plane",
        }
    }

    /// Whether this role runs `kubeadm join`.
    pub fn joins(self) -> bool {
        self != Role::Init
    }
}

/// An external etcd cluster (`[external_etcd]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalEtcd {
    /// Client URLs, `https://host:2379`.
    pub endpoints: Vec<String>,
    /// etcd CA certificate file.
    pub ca_file: PathBuf,
    /// apiserver-etcd-client certificate file.
    pub cert_file: PathBuf,
    /// apiserver-etcd-client key file.
    pub key_file: PathBuf,
}

/// A validated node config.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// What the node becomes.
    pub role: Role,
    /// Control-plane version to deploy (default: the baked kubeadm's).
    pub kubernetes_version: Option<KubeVersion>,
    /// Stable `host[:port]` of the control plane (load balancer or DNS name).
    pub control_plane_endpoint: Option<String>,
    /// The local API server's advertise address (init, control-plane).
    pub advertise_address: Option<IpAddr>,
    /// Pod ranges: up to one IPv4 and one IPv6.
    pub pod_subnets: Vec<Cidr>,
    /// Service ranges: up to one IPv4 and one IPv6.
    pub service_subnets: Vec<Cidr>,
    /// Node name (default: host name).
    pub node_name: Option<String>,
    /// Node labels, set by the kubelet (`--node-labels`).
    pub labels: BTreeMap<String, String>,
    /// Taints to register the node with.
    pub taints: Vec<Taint>,
    /// kubelet flags without dashes, e.g. `node-ip`.
    pub kubelet_extra_args: BTreeMap<String, String>,
    /// CRI endpoint if set (see [`NodeConfig::cri_socket`]).
    pub cri_socket: Option<String>,
    /// Bootstrap token: created by init, used by joins.
    pub token: Option<BootstrapToken>,
    /// A join service (`https://host:port`) that answers this node's signed platform identity
    /// with a short-lived token, instead of `token` (joins only; `ca_cert_hashes` pins it).
    pub join_service: Option<String>,
    /// Lifetime of the token created by init (Go duration; `0s`: never expires).
    pub token_ttl: Option<String>,
    /// CA pins `sha256:<hex>` for joins.
    pub ca_cert_hashes: Vec<String>,
    /// Join without CA pinning (unsafe; warned about).
    pub unsafe_skip_ca_verification: bool,
    /// Certificate key: init uploads the control-plane certificates with it, control-plane
    /// joins download them.
    pub certificate_key: Option<Secret>,
    /// Directory with pre-shared CA files from `kiln pki init`.
    pub pki_dir: Option<PathBuf>,
    /// External etcd instead of stacked etcd (init).
    pub external_etcd: Option<ExternalEtcd>,
    /// CNI manifest (path or URL) applied after init.
    pub cni_manifest: Option<String>,
    /// Where to copy the admin kubeconfig after init (0600), e.g. /root/.kube/config.
    pub admin_kubeconfig: Option<PathBuf>,
    /// Remove the control-plane taint (single-node clusters).
    pub untaint: bool,
    /// /usr is read-only: move FlexVolume plugin directories to /opt.
    pub read_only_usr: bool,
    /// A full kubeadm config stream taken as given (escape hatch).
    pub kubeadm_config: Option<PathBuf>,
    /// Wait for control-plane components (Go duration).
    pub control_plane_timeout: Option<String>,
    /// Wait for discovery on join (Go duration).
    pub discovery_timeout: Option<String>,
}

impl NodeConfig {
    /// Parses and validates node.toml text.
    pub fn parse(text: &str) -> Result<NodeConfig, NodeConfigError> {
        raw::parse(text)
    }

    /// The CRI endpoint: as configured, else containerd's.
    pub fn cri_socket(&self) -> &str {
        self.cri_socket.as_deref().unwrap_or(CONTAINERD_SOCKET)
    }

    /// Things that are allowed but unsafe, to be logged as warnings.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.unsafe_skip_ca_verification {
            out.push(
                "unsafe_skip_ca_verification: joining without pinning the cluster CA; \
                 anyone who can answer for the endpoint can take this node"
                    .to_owned(),
            );
        }
        out
    }
}

/// A node config that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeConfigError {
    /// Not TOML, or a field of the wrong type or name.
    #[error("line {line}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A field's value is wrong or missing.
    #[error("{field}: {message}")]
    Field {
        /// The field, e.g. `pod_subnets[1]`.
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
}

impl NodeConfigError {
    fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        NodeConfigError::Field {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A node taint (core/v1 Taint).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Taint {
    /// Taint key.
    pub key: String,
    /// Taint value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
    /// When the taint was added (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_added: Option<String>,
}
