//! node.toml as written (every field optional, unknown fields refused), and its validation into
//! a [`NodeConfig`]: each value checked, then the rules of the role.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::checks::{self, Cidr};
use super::Taint;
use super::{ExternalEtcd, NodeConfig, NodeConfigError, Role};
use crate::secret::Secret;
use crate::token::BootstrapToken;

type Result<T> = std::result::Result<T, NodeConfigError>;

// No Debug: the raw token and certificate key are plain strings here.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    role: Option<String>,
    kubernetes_version: Option<String>,
    control_plane_endpoint: Option<String>,
    advertise_address: Option<String>,
    #[serde(default)]
    pod_subnets: Vec<String>,
    #[serde(default)]
    service_subnets: Vec<String>,
    node_name: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    taints: Vec<RawTaint>,
    #[serde(default)]
    kubelet_extra_args: BTreeMap<String, String>,
    cri_socket: Option<String>,
    token: Option<String>,
    token_ttl: Option<String>,
    #[serde(default)]
    ca_cert_hashes: Vec<String>,
    #[serde(default)]
    unsafe_skip_ca_verification: bool,
    certificate_key: Option<String>,
    pki_dir: Option<PathBuf>,
    external_etcd: Option<RawEtcd>,
    cni_manifest: Option<String>,
    admin_kubeconfig: Option<PathBuf>,
    #[serde(default)]
    untaint: bool,
    #[serde(default)]
    read_only_usr: bool,
    kubeadm_config: Option<PathBuf>,
    control_plane_timeout: Option<String>,
    discovery_timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTaint {
    key: String,
    value: Option<String>,
    effect: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEtcd {
    endpoints: Vec<String>,
    ca_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
}

pub(super) fn parse(text: &str) -> Result<NodeConfig> {
    let raw: Raw = toml::from_str(text).map_err(|e| NodeConfigError::Syntax {
        // The message only: the parser's snippet of the line could show a secret.
        line: e
            .span()
            .map_or(1, |s| text[..s.start].matches('\n').count() + 1),
        message: e.message().trim().to_owned(),
    })?;
    let config = values(raw)?;
    super::rules::check(&config)?;
    Ok(config)
}

fn field<T>(name: &str, r: std::result::Result<T, String>) -> Result<T> {
    r.map_err(|m| NodeConfigError::field(name, m))
}

fn subnets(name: &str, list: &[String], service: bool) -> Result<Vec<Cidr>> {
    let mut out = Vec::new();
    for (i, text) in list.iter().enumerate() {
        let at = format!("{name}[{i}]");
        let cidr = field(&at, Cidr::parse(text))?;
        if service {
            field(&at, checks::service_size(&cidr))?;
        }
        out.push(cidr);
    }
    field(name, checks::dual_stack(&out))?;
    Ok(out)
}

fn values(raw: Raw) -> Result<NodeConfig> {
    let role = match raw.role.as_deref() {
        None => {
            return Err(NodeConfigError::field(
                "role",
                "missing; set init, join or control-plane",
            ))
        }
        Some("init") => Role::Init,
        Some("join") => Role::Join,
        Some("control-plane") => Role::ControlPlane,
        Some(other) => {
            return Err(NodeConfigError::field(
                "role",
                format!("{other:?} is not init, join or control-plane"),
            ))
        }
    };
    let opt_check =
        |name: &str, v: &Option<String>, f: fn(&str) -> std::result::Result<(), String>| {
            v.as_deref().map_or(Ok(()), |s| field(name, f(s)))
        };
    opt_check(
        "control_plane_endpoint",
        &raw.control_plane_endpoint,
        checks::endpoint,
    )?;
    opt_check("token_ttl", &raw.token_ttl, checks::duration)?;
    opt_check(
        "control_plane_timeout",
        &raw.control_plane_timeout,
        checks::duration,
    )?;
    opt_check(
        "discovery_timeout",
        &raw.discovery_timeout,
        checks::duration,
    )?;
    opt_check(
        "certificate_key",
        &raw.certificate_key,
        checks::certificate_key,
    )?;
    for (i, h) in raw.ca_cert_hashes.iter().enumerate() {
        field(&format!("ca_cert_hashes[{i}]"), checks::ca_cert_hash(h))?;
    }
    for (k, v) in &raw.labels {
        field(&format!("labels.{k:?}"), checks::label(k, v))?;
    }
    for k in raw.kubelet_extra_args.keys() {
        field(&format!("kubelet_extra_args.{k:?}"), checks::flag_name(k))?;
    }
    if !raw.labels.is_empty() && raw.kubelet_extra_args.contains_key("node-labels") {
        return Err(NodeConfigError::field(
            "kubelet_extra_args.\"node-labels\"",
            "use [labels] instead",
        ));
    }
    if let Some(s) = raw
        .cri_socket
        .as_deref()
        .filter(|s| !s.starts_with("unix:///"))
    {
        return Err(NodeConfigError::field(
            "cri_socket",
            format!("{s:?} is not unix:///PATH"),
        ));
    }
    Ok(NodeConfig {
        role,
        kubernetes_version: raw
            .kubernetes_version
            .as_deref()
            .map(|v| {
                field(
                    "kubernetes_version",
                    v.parse().map_err(|e: crate::Error| e.to_string()),
                )
            })
            .transpose()?,
        advertise_address: raw
            .advertise_address
            .as_deref()
            .map(|a| {
                field(
                    "advertise_address",
                    a.parse().map_err(|_| format!("{a:?} is not an IP address")),
                )
            })
            .transpose()?,
        pod_subnets: subnets("pod_subnets", &raw.pod_subnets, false)?,
        service_subnets: subnets("service_subnets", &raw.service_subnets, true)?,
        taints: taints(raw.taints)?,
        token: raw
            .token
            .as_deref()
            .map(|t| field("token", BootstrapToken::parse(t).map_err(|e| e.to_string())))
            .transpose()?,
        certificate_key: raw.certificate_key.map(Secret::new),
        external_etcd: raw.external_etcd.map(etcd).transpose()?,
        control_plane_endpoint: raw.control_plane_endpoint,
        node_name: raw.node_name,
        labels: raw.labels,
        kubelet_extra_args: raw.kubelet_extra_args,
        cri_socket: raw.cri_socket,
        token_ttl: raw.token_ttl,
        ca_cert_hashes: raw.ca_cert_hashes,
        unsafe_skip_ca_verification: raw.unsafe_skip_ca_verification,
        pki_dir: raw.pki_dir,
        cni_manifest: raw.cni_manifest,
        admin_kubeconfig: raw.admin_kubeconfig,
        untaint: raw.untaint,
        read_only_usr: raw.read_only_usr,
        kubeadm_config: raw.kubeadm_config,
        control_plane_timeout: raw.control_plane_timeout,
        discovery_timeout: raw.discovery_timeout,
    })
}

fn taints(raw: Vec<RawTaint>) -> Result<Vec<Taint>> {
    raw.into_iter()
        .enumerate()
        .map(|(i, t)| {
            field(
                &format!("taints[{i}].effect"),
                checks::taint_effect(&t.effect),
            )?;
            Ok(Taint {
                key: t.key,
                value: t.value,
                effect: t.effect,
                time_added: None,
            })
        })
        .collect()
}

fn etcd(raw: RawEtcd) -> Result<ExternalEtcd> {
    if raw.endpoints.is_empty() {
        return Err(NodeConfigError::field(
            "external_etcd.endpoints",
            "empty; list the etcd client URLs",
        ));
    }
    for (i, e) in raw.endpoints.iter().enumerate() {
        if !e.starts_with("https://") && !e.starts_with("http://") {
            return Err(NodeConfigError::field(
                format!("external_etcd.endpoints[{i}]"),
                format!("{e:?} is not a URL like https://10.0.0.11:2379"),
            ));
        }
    }
    Ok(ExternalEtcd {
        endpoints: raw.endpoints,
        ca_file: raw.ca_file,
        cert_file: raw.cert_file,
        key_file: raw.key_file,
    })
}
