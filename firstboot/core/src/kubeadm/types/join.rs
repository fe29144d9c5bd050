//! JoinConfiguration: discovery, CA pinning and the control-plane part of a join.

use serde::{Deserialize, Serialize};

use super::{ApiEndpoint, NodeRegistration, Patches, Timeouts};
use crate::secret::Secret;

/// `JoinConfiguration`: what `kubeadm join` reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinConfiguration {
    /// `kubeadm.k8s.io/v1beta3` or `v1beta4`.
    pub api_version: String,
    /// `JoinConfiguration`.
    pub kind: String,
    /// v1beta4 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// This node's registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_registration: Option<NodeRegistration>,
    /// Where the cluster CA is written (default /etc/kubernetes/pki/ca.crt).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_cert_path: Option<String>,
    /// How the cluster is found and trusted.
    pub discovery: Discovery,
    /// Present for a control-plane join.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<JoinControlPlane>,
    /// Phases to skip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_phases: Vec<String>,
    /// Patches directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patches: Option<Patches>,
    /// v1beta4 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
}

/// `discovery`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Discovery {
    /// Token discovery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap_token: Option<BootstrapTokenDiscovery>,
    /// kubeconfig file discovery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileDiscovery>,
    /// Token for the kubelet's TLS bootstrap (default: the discovery token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_bootstrap_token: Option<Secret>,
    /// v1beta3 only (v1beta4: `timeouts.discovery`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// `discovery.bootstrapToken`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BootstrapTokenDiscovery {
    /// `<id>.<secret>`.
    pub token: Secret,
    /// `host:port` of the API server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_server_endpoint: Option<String>,
    /// `sha256:<hex>` pins of the cluster CA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_cert_hashes: Option<Vec<String>>,
    /// Join without pinning the CA.
    #[serde(
        rename = "unsafeSkipCAVerification",
        skip_serializing_if = "Option::is_none"
    )]
    pub unsafe_skip_ca_verification: Option<bool>,
}

/// `discovery.file`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileDiscovery {
    /// Path or URL of a kubeconfig.
    pub kube_config_path: String,
}

/// `controlPlane` of a control-plane join.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinControlPlane {
    /// The new API server's address and port.
    #[serde(rename = "localAPIEndpoint", skip_serializing_if = "Option::is_none")]
    pub local_api_endpoint: Option<ApiEndpoint>,
    /// Decrypts the certificates uploaded by `init --upload-certs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_key: Option<Secret>,
}
