//! InitConfiguration and the parts it shares with JoinConfiguration: node registration,
//! taints, the local API endpoint, patches and (v1beta4) timeouts.

use serde::{Deserialize, Serialize};

use crate::kubeadm::ExtraArgs;
use crate::nodeconfig::Taint;
use crate::secret::Secret;

/// `InitConfiguration`: what only `kubeadm init` reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InitConfiguration {
    /// `kubeadm.k8s.io/v1beta3` or `v1beta4`.
    pub api_version: String,
    /// `InitConfiguration`.
    pub kind: String,
    /// Bootstrap tokens to create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bootstrap_tokens: Vec<BootstrapToken>,
    /// v1beta4 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// This node's registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_registration: Option<NodeRegistration>,
    /// The local API server's address and port.
    #[serde(rename = "localAPIEndpoint", skip_serializing_if = "Option::is_none")]
    pub local_api_endpoint: Option<ApiEndpoint>,
    /// Key that encrypts the uploaded control-plane certificates (64 hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_key: Option<Secret>,
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

/// One entry of `bootstrapTokens`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BootstrapToken {
    /// `<id>.<secret>`.
    pub token: Secret,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Lifetime, a Go duration (`24h0m0s`; `0s` never expires).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Absolute expiry (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `signing`, `authentication`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usages: Option<Vec<String>>,
    /// Extra groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

/// `nodeRegistration` of Init and Join.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeRegistration {
    /// Node name (default: host name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// CRI endpoint, e.g. `unix:///var/run/containerd/containerd.sock`.
    #[serde(rename = "criSocket", skip_serializing_if = "Option::is_none")]
    pub cri_socket: Option<String>,
    /// `None`: kubeadm's default (control-plane taint on control-plane nodes); `Some([])`: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taints: Option<Vec<Taint>>,
    /// kubelet flags without dashes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubelet_extra_args: Option<ExtraArgs>,
    /// Preflight checks to ignore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_preflight_errors: Vec<String>,
    /// `Always`, `IfNotPresent` or `Never`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// v1beta4 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_pull_serial: Option<bool>,
}

/// `localAPIEndpoint`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiEndpoint {
    /// IP address the API server advertises.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise_address: Option<String>,
    /// API server port (default 6443).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_port: Option<i32>,
}

/// `patches`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Patches {
    /// Directory of patch files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
}

/// `timeouts` (v1beta4 only), Go durations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeouts {
    /// Wait for control-plane components (v1beta3: `apiServer.timeoutForControlPlane`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_plane_component_health_check: Option<String>,
    /// Wait for the kubelet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubelet_health_check: Option<String>,
    /// One API call.
    #[serde(rename = "kubernetesAPICall", skip_serializing_if = "Option::is_none")]
    pub kubernetes_api_call: Option<String>,
    /// One etcd call.
    #[serde(rename = "etcdAPICall", skip_serializing_if = "Option::is_none")]
    pub etcd_api_call: Option<String>,
    /// kubelet TLS bootstrap on join.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_bootstrap: Option<String>,
    /// Discovery on join (v1beta3: `discovery.timeout`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<String>,
    /// Static pod manifest upgrades.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade_manifests: Option<String>,
}
