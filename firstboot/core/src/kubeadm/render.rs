//! Node config → the kubeadm config stream the node's kubeadm reads: v1beta3 for kubeadm
//! < 1.31, v1beta4 from 1.31 (extraArgs as name/value lists, `timeouts`). Each derived value
//! has its own small function with the rule it follows. With `kubeadm_config` the user's stream
//! is taken as given and only kiln's required adjustments are merged in ([`super::adjust`]).

use std::collections::BTreeMap;

use super::adjust::{flex_volume_args, kubelet_configuration};
use super::stream::{Document, KubeadmConfig};
use super::types::*;
use super::{ApiVersion, ExtraArgs};
use crate::nodeconfig::{Cidr, NodeConfig, Role, FLEX_VOLUME_DIR};
use crate::secret::Secret;
use crate::version::KubeVersion;
use crate::Error;

/// The control-plane taint kubeadm puts on control-plane nodes by default.
pub const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane";

/// Renders the kubeadm config for `node`, read by `kubeadm` (the node's kubeadm version).
/// `escape_hatch` is the text of `node.kubeadm_config` when that is set.
pub fn render(
    node: &NodeConfig,
    kubeadm: &KubeVersion,
    escape_hatch: Option<&str>,
) -> Result<KubeadmConfig, Error> {
    if let Some(text) = escape_hatch {
        let mut config = KubeadmConfig::parse_named(text, kubeadm, "kubeadm_config")?;
        check_deployed(&config, kubeadm)
            .map_err(|e| Error::invalid(format!("kubeadm_config: {e}")))?;
        super::adjust::adjust(&mut config, node)?;
        return Ok(config);
    }
    let api = kubeadm.kubeadm_api()?;
    let docs = match node.role {
        Role::Init => {
            let version = deployed_version(node, kubeadm)?;
            vec![
                Document::Init(Box::new(init(node, api))),
                Document::Cluster(Box::new(cluster(node, api, &version))),
                kubelet_configuration(),
            ]
        }
        Role::Join | Role::ControlPlane => vec![Document::Join(Box::new(join(node, api)?))],
    };
    Ok(KubeadmConfig {
        docs,
        conversions: Vec::new(),
    })
}

/// kubeadm deploys its own minor version or the one before it (kubeadm version skew policy).
fn deployed_version(node: &NodeConfig, kubeadm: &KubeVersion) -> Result<KubeVersion, Error> {
    let Some(v) = &node.kubernetes_version else {
        return Ok(kubeadm.clone());
    };
    check_deployable("kubernetes_version", v, kubeadm)?;
    Ok(v.clone())
}

/// `field` names control-plane version `v` for kubeadm `kubeadm`, whose release the baked kubelet
/// is: kubeadm deploys its own minor or the one before (its `MinimumControlPlaneVersion`), and
/// its KubeletVersion preflight check refuses a kubelet newer than the control plane.
pub fn check_deployable(field: &str, v: &KubeVersion, kubeadm: &KubeVersion) -> Result<(), Error> {
    if v.major != kubeadm.major || v.minor > kubeadm.minor || v.minor + 1 < kubeadm.minor {
        return Err(Error::invalid(format!(
            "{field}: {v} cannot be deployed by kubeadm {kubeadm}; kubeadm deploys its own minor version or the one before"
        )));
    }
    // kiln bakes kubelet at kubeadm's version.
    if v.minor < kubeadm.minor {
        return Err(Error::invalid(format!(
            "{field}: {v} is older than the baked kubelet {kubeadm}; a kubelet must not be newer \
             than its control plane (version skew policy): build the image for {}.{}.x or deploy {kubeadm}",
            v.major, v.minor
        )));
    }
    Ok(())
}

/// The control-plane version of a given init stream (`ClusterConfiguration.kubernetesVersion`),
/// checked by [`check_deployable`]. Streams with a JoinConfiguration deploy nothing (kubeadm join
/// ignores a ClusterConfiguration), and labels such as `stable-1.31` are left to kubeadm.
pub fn check_deployed(config: &KubeadmConfig, kubeadm: &KubeVersion) -> Result<(), Error> {
    if config.join().is_some() {
        return Ok(());
    }
    for doc in &config.docs {
        let Document::Cluster(c) = doc else { continue };
        if let Some(v) = c.kubernetes_version.as_deref().and_then(|s| s.parse().ok()) {
            check_deployable("ClusterConfiguration.kubernetesVersion", &v, kubeadm)?;
        }
    }
    Ok(())
}

fn init(node: &NodeConfig, api: ApiVersion) -> InitConfiguration {
    InitConfiguration {
        api_version: api.api_version(),
        kind: "InitConfiguration".into(),
        bootstrap_tokens: node
            .token
            .iter()
            .map(|t| BootstrapToken {
                token: Secret::new(t.expose()),
                ttl: node.token_ttl.clone(),
                ..Default::default()
            })
            .collect(),
        node_registration: Some(node_registration(node, api)),
        local_api_endpoint: local_endpoint(node),
        certificate_key: node.certificate_key.clone(),
        timeouts: control_plane_timeouts(node, api),
        ..Default::default()
    }
}

fn cluster(node: &NodeConfig, api: ApiVersion, version: &KubeVersion) -> ClusterConfiguration {
    ClusterConfiguration {
        api_version: api.api_version(),
        kind: "ClusterConfiguration".into(),
        kubernetes_version: Some(version.to_string()),
        control_plane_endpoint: node.control_plane_endpoint.clone(),
        networking: networking(node),
        etcd: node.external_etcd.as_ref().map(|e| Etcd {
            external: Some(ExternalEtcd {
                endpoints: e.endpoints.clone(),
                ca_file: e.ca_file.display().to_string(),
                cert_file: e.cert_file.display().to_string(),
                key_file: e.key_file.display().to_string(),
            }),
            local: None,
        }),
        certificates_dir: node.pki_dir.as_ref().map(|p| p.display().to_string()),
        api_server: (api == ApiVersion::V1beta3 && node.control_plane_timeout.is_some()).then(
            || ApiServer {
                timeout_for_control_plane: node.control_plane_timeout.clone(),
                ..Default::default()
            },
        ),
        controller_manager: node.read_only_usr.then(|| Component {
            extra_args: Some(flex_volume_args(api)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn join(node: &NodeConfig, api: ApiVersion) -> Result<JoinConfiguration, Error> {
    if api == ApiVersion::V1beta3
        && node.role == Role::ControlPlane
        && node.control_plane_timeout.is_some()
    {
        return Err(Error::invalid(
            "control_plane_timeout: kubeadm < v1.31 (v1beta3) has no control-plane timeout for joins; remove it",
        ));
    }
    let token = node.token.as_ref().map(|t| Secret::new(t.expose()));
    let mut timeouts = control_plane_timeouts(node, api).unwrap_or_default();
    let v4 = api == ApiVersion::V1beta4;
    if v4 {
        timeouts.discovery = node.discovery_timeout.clone();
    }
    Ok(JoinConfiguration {
        api_version: api.api_version(),
        kind: "JoinConfiguration".into(),
        node_registration: Some(node_registration(node, api)),
        ca_cert_path: node
            .pki_dir
            .as_ref()
            .map(|p| p.join("ca.crt").display().to_string()),
        discovery: Discovery {
            bootstrap_token: token.map(|token| BootstrapTokenDiscovery {
                token,
                api_server_endpoint: node.control_plane_endpoint.clone(),
                ca_cert_hashes: (!node.ca_cert_hashes.is_empty())
                    .then(|| node.ca_cert_hashes.clone()),
                unsafe_skip_ca_verification: node.unsafe_skip_ca_verification.then_some(true),
            }),
            timeout: node.discovery_timeout.clone().filter(|_| !v4),
            ..Default::default()
        },
        control_plane: (node.role == Role::ControlPlane).then(|| JoinControlPlane {
            local_api_endpoint: local_endpoint(node),
            certificate_key: node.certificate_key.clone(),
        }),
        timeouts: (timeouts != Timeouts::default()).then_some(timeouts),
        ..Default::default()
    })
}

/// v1beta4 moved `apiServer.timeoutForControlPlane` to `timeouts.controlPlaneComponentHealthCheck`.
fn control_plane_timeouts(node: &NodeConfig, api: ApiVersion) -> Option<Timeouts> {
    let t = node.control_plane_timeout.clone()?;
    (api == ApiVersion::V1beta4).then(|| Timeouts {
        control_plane_component_health_check: Some(t),
        ..Default::default()
    })
}

fn local_endpoint(node: &NodeConfig) -> Option<ApiEndpoint> {
    node.advertise_address.map(|ip| ApiEndpoint {
        advertise_address: Some(ip.to_string()),
        bind_port: None,
    })
}

/// Dual-stack ranges are one comma-separated value (kubeadm's dual-stack guide).
fn networking(node: &NodeConfig) -> Option<Networking> {
    let join = |c: &[Cidr]| {
        (!c.is_empty()).then(|| c.iter().map(Cidr::to_string).collect::<Vec<_>>().join(","))
    };
    let n = Networking {
        pod_subnet: join(&node.pod_subnets),
        service_subnet: join(&node.service_subnets),
        dns_domain: None,
    };
    (n != Networking::default()).then_some(n)
}

fn node_registration(node: &NodeConfig, api: ApiVersion) -> NodeRegistration {
    let args = kubelet_args(node);
    NodeRegistration {
        name: node.node_name.clone(),
        cri_socket: Some(node.cri_socket().to_owned()),
        taints: taints(node),
        kubelet_extra_args: (!args.is_empty()).then(|| ExtraArgs::new(api, args)),
        ..Default::default()
    }
}

/// kubelet flags: the configured ones, labels as `node-labels`, and on a read-only /usr the
/// FlexVolume directory under /opt (kubeadm troubleshooting, "/usr is mounted read-only").
fn kubelet_args(node: &NodeConfig) -> BTreeMap<String, String> {
    let mut args = node.kubelet_extra_args.clone();
    if !node.labels.is_empty() {
        let labels: Vec<String> = node
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        args.insert("node-labels".into(), labels.join(","));
    }
    if node.read_only_usr {
        args.entry("volume-plugin-dir".into())
            .or_insert_with(|| FLEX_VOLUME_DIR.into());
    }
    args
}

/// `None` lets kubeadm apply its defaults (control-plane taint on control-plane nodes, none on
/// workers). Configured taints replace those defaults, so the control-plane taint is kept
/// explicitly unless `untaint`; `untaint` alone is `taints: []` (kubeadm's documented way).
fn taints(node: &NodeConfig) -> Option<Vec<Taint>> {
    if node.role == Role::Join || (!node.untaint && node.taints.is_empty()) {
        return (!node.taints.is_empty()).then(|| node.taints.clone());
    }
    let mut out = Vec::new();
    if !node.untaint {
        out.push(Taint {
            key: CONTROL_PLANE_TAINT.into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        });
    }
    out.extend(node.taints.iter().cloned());
    Some(out)
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
