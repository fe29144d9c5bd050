//! ClusterConfiguration: etcd, networking, the control-plane components and add-ons.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::kubeadm::ExtraArgs;

/// `ClusterConfiguration`: cluster-wide settings, read by `kubeadm init`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterConfiguration {
    /// `kubeadm.k8s.io/v1beta3` or `v1beta4`.
    pub api_version: String,
    /// `ClusterConfiguration`.
    pub kind: String,
    /// Local or external etcd.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd: Option<Etcd>,
    /// Subnets and DNS domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networking: Option<Networking>,
    /// Control-plane version, e.g. `v1.31.2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// Stable address (`host[:port]`) of the control plane.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_plane_endpoint: Option<String>,
    /// kube-apiserver settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_server: Option<ApiServer>,
    /// kube-controller-manager settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller_manager: Option<Component>,
    /// kube-scheduler settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<Component>,
    /// CoreDNS add-on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// v1beta4 only: kube-proxy add-on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<Proxy>,
    /// Where the certificates are (default /etc/kubernetes/pki).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificates_dir: Option<String>,
    /// Registry for control-plane images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_repository: Option<String>,
    /// kubeadm feature gates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_gates: Option<BTreeMap<String, bool>>,
    /// Cluster name (default `kubernetes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// v1beta4 only: `RSA-2048`, `RSA-3072`, `RSA-4096`, `ECDSA-P256`, `ECDSA-P384`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_algorithm: Option<String>,
    /// v1beta4 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_validity_period: Option<String>,
    /// v1beta4 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificate_validity_period: Option<String>,
}

/// `etcd`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Etcd {
    /// A stacked etcd static pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalEtcd>,
    /// An external etcd cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalEtcd>,
}

/// `etcd.local`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalEtcd {
    /// Image registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_repository: Option<String>,
    /// Image tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
    /// Data directory (default /var/lib/etcd).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    /// etcd flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_args: Option<ExtraArgs>,
    /// v1beta4 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_envs: Option<Vec<EnvVar>>,
    /// Extra server certificate SANs.
    #[serde(rename = "serverCertSANs", skip_serializing_if = "Option::is_none")]
    pub server_cert_sans: Option<Vec<String>>,
    /// Extra peer certificate SANs.
    #[serde(rename = "peerCertSANs", skip_serializing_if = "Option::is_none")]
    pub peer_cert_sans: Option<Vec<String>>,
}

/// `etcd.external`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalEtcd {
    /// Member client URLs.
    pub endpoints: Vec<String>,
    /// CA certificate file.
    #[serde(rename = "caFile")]
    pub ca_file: String,
    /// Client certificate file.
    pub cert_file: String,
    /// Client key file.
    pub key_file: String,
}

/// `networking`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Networking {
    /// Service CIDR(s), comma-separated for dual-stack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_subnet: Option<String>,
    /// Pod CIDR(s), comma-separated for dual-stack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_subnet: Option<String>,
    /// Service DNS domain (default cluster.local).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_domain: Option<String>,
}

/// A control-plane component (`controllerManager`, `scheduler`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Component {
    /// Flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_args: Option<ExtraArgs>,
    /// Host path mounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_volumes: Option<Vec<HostPathMount>>,
    /// v1beta4 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_envs: Option<Vec<EnvVar>>,
}

/// `apiServer`: a component with certificate SANs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiServer {
    /// Flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_args: Option<ExtraArgs>,
    /// Host path mounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_volumes: Option<Vec<HostPathMount>>,
    /// v1beta4 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_envs: Option<Vec<EnvVar>>,
    /// Extra serving certificate SANs.
    #[serde(rename = "certSANs", skip_serializing_if = "Option::is_none")]
    pub cert_sans: Option<Vec<String>>,
    /// v1beta3 only (v1beta4: `timeouts.controlPlaneComponentHealthCheck`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_for_control_plane: Option<String>,
}

/// `extraVolumes` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostPathMount {
    /// Volume name.
    pub name: String,
    /// Path on the host.
    pub host_path: String,
    /// Path in the pod.
    pub mount_path: String,
    /// Read-only mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// core/v1 HostPathType.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_type: Option<String>,
}

/// `extraEnvs` entry (core/v1 EnvVar; `valueFrom` kept as given).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Value source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<serde_yaml_ng::Value>,
}

/// `dns`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dns {
    /// Image registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_repository: Option<String>,
    /// Image tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
    /// v1beta4 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// `proxy` (v1beta4 only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    /// Skip the kube-proxy add-on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}
