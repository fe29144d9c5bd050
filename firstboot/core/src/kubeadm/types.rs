//! The kubeadm kinds kiln reads and writes — InitConfiguration, ClusterConfiguration,
//! JoinConfiguration — with kubeadm's exact JSON field names (kubeadm's
//! `cmd/kubeadm/app/apis/kubeadm/{v1beta3,v1beta4}/types.go`).
//!
//! One set of types covers both API versions: fields that exist in only one version are
//! documented so, and [`InitConfiguration::check`] (and the others) reject them in the other
//! version, as kubeadm's strict decoding does. Unknown fields are rejected by serde.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ApiVersion, ExtraArgs};
use crate::secret::Secret;
use crate::Error;

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

/// Collects fields that do not exist in the document's API version.
struct VersionCheck {
    kind: &'static str,
    api: ApiVersion,
    errors: Vec<String>,
}

impl VersionCheck {
    fn new(kind: &'static str, api: ApiVersion) -> Self {
        VersionCheck {
            kind,
            api,
            errors: Vec::new(),
        }
    }

    /// `field` is set but exists only in `only_in`.
    fn only<T>(&mut self, only_in: ApiVersion, field: &str, value: &Option<T>) {
        if value.is_some() && self.api != only_in {
            let hint = match only_in {
                ApiVersion::V1beta4 => "it is new in v1beta4, which kubeadm reads from v1.31",
                ApiVersion::V1beta3 => "it was removed in v1beta4",
            };
            self.errors.push(format!(
                "{}.{field}: unknown field in {} ({hint})",
                self.kind,
                self.api.api_version()
            ));
        }
    }

    /// extraArgs must be a map in v1beta3 and a name/value list in v1beta4.
    fn args(&mut self, field: &str, args: &Option<ExtraArgs>) {
        if let Some(a) = args
            .as_ref()
            .filter(|a| a.version != self.api && !a.args.is_empty())
        {
            let form = match a.version {
                ApiVersion::V1beta3 => "a map",
                ApiVersion::V1beta4 => "a name/value list",
            };
            self.errors.push(format!(
                "{}.{field}: written as {form}, which {} does not read",
                self.kind,
                self.api.api_version()
            ));
        }
    }

    fn node_registration(&mut self, nr: &Option<NodeRegistration>) {
        if let Some(nr) = nr {
            self.only(
                V4,
                "nodeRegistration.imagePullSerial",
                &nr.image_pull_serial,
            );
            self.args("nodeRegistration.kubeletExtraArgs", &nr.kubelet_extra_args);
        }
    }

    fn finish(self) -> Result<(), Error> {
        match self.errors.is_empty() {
            true => Ok(()),
            false => Err(Error::invalid(self.errors.join("; "))),
        }
    }
}

const V3: ApiVersion = ApiVersion::V1beta3;
const V4: ApiVersion = ApiVersion::V1beta4;

impl InitConfiguration {
    /// Rejects fields that `api` does not have.
    pub fn check(&self, api: ApiVersion) -> Result<(), Error> {
        let mut c = VersionCheck::new("InitConfiguration", api);
        c.only(V4, "dryRun", &self.dry_run);
        c.only(V4, "timeouts", &self.timeouts);
        c.node_registration(&self.node_registration);
        c.finish()
    }
}

impl JoinConfiguration {
    /// Rejects fields that `api` does not have.
    pub fn check(&self, api: ApiVersion) -> Result<(), Error> {
        let mut c = VersionCheck::new("JoinConfiguration", api);
        c.only(V4, "dryRun", &self.dry_run);
        c.only(V4, "timeouts", &self.timeouts);
        c.only(V3, "discovery.timeout", &self.discovery.timeout);
        c.node_registration(&self.node_registration);
        c.finish()
    }
}

impl ClusterConfiguration {
    /// Rejects fields that `api` does not have.
    pub fn check(&self, api: ApiVersion) -> Result<(), Error> {
        let mut c = VersionCheck::new("ClusterConfiguration", api);
        c.only(V4, "proxy", &self.proxy);
        c.only(V4, "encryptionAlgorithm", &self.encryption_algorithm);
        c.only(
            V4,
            "certificateValidityPeriod",
            &self.certificate_validity_period,
        );
        c.only(
            V4,
            "caCertificateValidityPeriod",
            &self.ca_certificate_validity_period,
        );
        c.only(
            V4,
            "dns.disabled",
            &self.dns.as_ref().and_then(|d| d.disabled),
        );
        if let Some(a) = &self.api_server {
            c.only(
                V3,
                "apiServer.timeoutForControlPlane",
                &a.timeout_for_control_plane,
            );
            c.only(V4, "apiServer.extraEnvs", &a.extra_envs);
            c.args("apiServer.extraArgs", &a.extra_args);
        }
        for (name, comp) in [
            ("controllerManager", &self.controller_manager),
            ("scheduler", &self.scheduler),
        ] {
            if let Some(comp) = comp {
                c.only(V4, &format!("{name}.extraEnvs"), &comp.extra_envs);
                c.args(&format!("{name}.extraArgs"), &comp.extra_args);
            }
        }
        if let Some(local) = self.etcd.as_ref().and_then(|e| e.local.as_ref()) {
            c.only(V4, "etcd.local.extraEnvs", &local.extra_envs);
            c.args("etcd.local.extraArgs", &local.extra_args);
        }
        c.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1beta4_fields_are_refused_in_v1beta3() {
        let init: InitConfiguration = serde_yaml_ng::from_str(
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\ntimeouts:\n  kubeletHealthCheck: 4m0s\n",
        )
        .unwrap();
        let err = init.check(V3).unwrap_err().to_string();
        assert!(
            err.contains("InitConfiguration.timeouts: unknown field in kubeadm.k8s.io/v1beta3"),
            "{err}"
        );
        assert!(err.contains("v1.31"), "{err}");
        init.check(V4).unwrap();
    }

    #[test]
    fn extra_args_form_must_match_the_version() {
        let cluster: ClusterConfiguration = serde_yaml_ng::from_str(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncontrollerManager:\n  extraArgs:\n    bind-address: 0.0.0.0\n",
        )
        .unwrap();
        let err = cluster.check(V4).unwrap_err().to_string();
        assert!(
            err.contains("controllerManager.extraArgs: written as a map"),
            "{err}"
        );
        cluster.check(V3).unwrap();
    }

    #[test]
    fn unknown_fields_and_secrets() {
        let err = serde_yaml_ng::from_str::<JoinConfiguration>(
            "apiVersion: x\nkind: JoinConfiguration\ndiscovery: {}\nnodeRegistrations: {}\n",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown field `nodeRegistrations`"),
            "{err}"
        );
        let join: JoinConfiguration = serde_yaml_ng::from_str(
            "apiVersion: x\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    token: abcdef.0123456789abcdef\n    unsafeSkipCAVerification: true\n",
        )
        .unwrap();
        assert!(!format!("{join:?}").contains("0123456789abcdef"));
    }
}
