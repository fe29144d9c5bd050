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
    join_service: Option<String>,
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
    let raw: Raw = toml::from_str(text).map_err(|e| syntax_error(text, &e))?;
    let config = values(raw)?;
    super::rules::check(&config)?;
    Ok(config)
}

/// The parser's error as line, key and message, without the values it quotes: the parser's
/// snippet of the line, and a value put in the wrong field, could show a secret.
fn syntax_error(text: &str, e: &toml::de::Error) -> NodeConfigError {
    let start = e.span().map_or(0, |s| s.start.min(text.len()));
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let message = crate::redact::decode_error(e.message().trim());
    NodeConfigError::Syntax {
        line: text[..start].matches('\n').count() + 1,
        message: match key_of_line(&text[line_start..start]) {
            Some(key) if !message.contains(key) => format!("{key}: {message}"),
            _ => message,
        },
    }
}

/// The key of a `key = value` line, given the line up to the value.
fn key_of_line(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let bare = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
    (!key.is_empty() && key.chars().all(bare)).then_some(key)
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

/// Checks every value of `raw` (in the order its errors are reported) and builds the config.
fn values(raw: Raw) -> Result<NodeConfig> {
    let role = role(raw.role.as_deref())?;
    check_strings(&raw)?;
    check_lists(&raw)?;
    check_cri_socket(raw.cri_socket.as_deref())?;
    Ok(NodeConfig {
        role,
        kubernetes_version: parsed("kubernetes_version", &raw.kubernetes_version, |v| {
            v.parse().map_err(|e: crate::Error| e.to_string())
        })?,
        advertise_address: parsed("advertise_address", &raw.advertise_address, |a| {
            a.parse().map_err(|_| format!("{a:?} is not an IP address"))
        })?,
        pod_subnets: subnets("pod_subnets", &raw.pod_subnets, false)?,
        service_subnets: subnets("service_subnets", &raw.service_subnets, true)?,
        taints: taints(raw.taints)?,
        token: parsed("token", &raw.token, |t| {
            BootstrapToken::parse(t).map_err(|e| e.to_string())
        })?,
        certificate_key: raw.certificate_key.map(Secret::new),
        join_service: raw.join_service,
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

/// The role named by `role`, which must be set.
fn role(role: Option<&str>) -> Result<Role> {
    match role {
        None => Err(NodeConfigError::field(
            "role",
            "missing; set init, join or control-plane",
        )),
        Some("init") => Ok(Role::Init),
        Some("join") => Ok(Role::Join),
        Some("control-plane") => Ok(Role::ControlPlane),
        Some(other) => Err(NodeConfigError::field(
            "role",
            format!("{other:?} is not init, join or control-plane"),
        )),
    }
}

/// A check of a single string value: `Err` carries the message.
type StringCheck = fn(&str) -> std::result::Result<(), String>;

/// The optional string fields kept as text, each with the check it must pass when set.
fn checked_strings(raw: &Raw) -> [(&'static str, &Option<String>, StringCheck); 6] {
    [
        ("join_service", &raw.join_service, checks::service_url),
        (
            "control_plane_endpoint",
            &raw.control_plane_endpoint,
            checks::endpoint,
        ),
        ("token_ttl", &raw.token_ttl, checks::duration),
        (
            "control_plane_timeout",
            &raw.control_plane_timeout,
            checks::duration,
        ),
        (
            "discovery_timeout",
            &raw.discovery_timeout,
            checks::duration,
        ),
        (
            "certificate_key",
            &raw.certificate_key,
            checks::certificate_key,
        ),
    ]
}

fn check_strings(raw: &Raw) -> Result<()> {
    for (name, value, check) in checked_strings(raw) {
        if let Some(text) = value.as_deref() {
            field(name, check(text))?;
        }
    }
    Ok(())
}

/// The CA hashes, labels and kubelet flags one by one, then labels set in two places.
fn check_lists(raw: &Raw) -> Result<()> {
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
    Ok(())
}

fn check_cri_socket(socket: Option<&str>) -> Result<()> {
    match socket.filter(|s| !s.starts_with("unix:///")) {
        Some(s) => Err(NodeConfigError::field(
            "cri_socket",
            format!("{s:?} is not unix:///PATH"),
        )),
        None => Ok(()),
    }
}

/// The optional field `name` parsed by `parse` when set.
fn parsed<T>(
    name: &str,
    value: &Option<String>,
    parse: impl FnOnce(&str) -> std::result::Result<T, String>,
) -> Result<Option<T>> {
    value.as_deref().map(|v| field(name, parse(v))).transpose()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_the_three_roles() {
        assert_eq!(role(Some("init")).unwrap(), Role::Init);
        assert_eq!(role(Some("join")).unwrap(), Role::Join);
        assert_eq!(role(Some("control-plane")).unwrap(), Role::ControlPlane);
        assert!(role(None).unwrap_err().to_string().contains("missing"));
        assert!(role(Some("worker"))
            .unwrap_err()
            .to_string()
            .contains("\"worker\" is not init"));
    }

    #[test]
    fn cri_socket_must_be_a_unix_url() {
        assert!(check_cri_socket(None).is_ok());
        assert!(check_cri_socket(Some("unix:///run/containerd/containerd.sock")).is_ok());
        let e = check_cri_socket(Some("/run/crio.sock")).unwrap_err();
        assert!(e.to_string().starts_with("cri_socket: "));
    }

    #[test]
    fn parsed_names_the_field_only_when_set() {
        let number = |s: &str| s.parse::<u8>().map_err(|e| e.to_string());
        assert_eq!(parsed("n", &None, number).unwrap(), None);
        assert_eq!(parsed("n", &Some("7".into()), number).unwrap(), Some(7));
        let e = parsed("n", &Some("x".into()), number).unwrap_err();
        assert!(e.to_string().starts_with("n: "));
    }
}
