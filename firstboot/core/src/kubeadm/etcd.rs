//! `kubeadmcfg.yaml` for one external etcd member, exactly as the kubeadm guide "Set up a High
//! Availability etcd Cluster with kubeadm" writes it: an InitConfiguration naming the node and its
//! advertise address, and a ClusterConfiguration whose `etcd.local` carries the SANs and the
//! etcd flags of a new static cluster.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{to_yaml_stream, ApiVersion, ExtraArgs};
use crate::Result;

/// The etcd peer port.
pub const PEER_PORT: u16 = 2380;
/// The etcd client port.
pub const CLIENT_PORT: u16 = 2379;

/// InitConfiguration with only what the etcd guide sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EtcdInitConfiguration {
    /// `kubeadm.k8s.io/v1beta3` or `v1beta4`.
    pub api_version: String,
    /// Always `InitConfiguration`.
    pub kind: String,
    /// The node's name.
    pub node_registration: NodeRegistration,
    /// The node's advertise address.
    #[serde(rename = "localAPIEndpoint")]
    pub local_api_endpoint: LocalApiEndpoint,
}

/// `nodeRegistration` with only `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeRegistration {
    /// The node name, also the etcd member name and the certificates' CN.
    pub name: String,
}

/// `localAPIEndpoint` with only `advertiseAddress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalApiEndpoint {
    /// The member's IP address.
    pub advertise_address: String,
}

/// ClusterConfiguration with only `etcd.local`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EtcdClusterConfiguration {
    /// `kubeadm.k8s.io/v1beta3` or `v1beta4`.
    pub api_version: String,
    /// Always `ClusterConfiguration`.
    pub kind: String,
    /// The etcd section.
    pub etcd: Etcd,
}

/// `etcd` with only `local`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Etcd {
    /// Local (static pod) etcd settings.
    pub local: LocalEtcd,
}

/// `etcd.local` as the guide fills it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalEtcd {
    /// Extra SANs of the etcd server certificate.
    #[serde(rename = "serverCertSANs")]
    pub server_cert_sans: Vec<String>,
    /// Extra SANs of the etcd peer certificate.
    #[serde(rename = "peerCertSANs")]
    pub peer_cert_sans: Vec<String>,
    /// Flags for etcd.
    pub extra_args: ExtraArgs,
}

/// One member of the etcd cluster, for rendering.
#[derive(Debug, Clone, Copy)]
pub struct MemberRef<'a> {
    /// Member (node) name.
    pub name: &'a str,
    /// Member IP.
    pub ip: IpAddr,
}

/// `https://IP:PORT`, with brackets around IPv6 addresses.
pub fn url(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("https://{v4}:{port}"),
        IpAddr::V6(v6) => format!("https://[{v6}]:{port}"),
    }
}

/// The two documents for `member` of the cluster `all`.
pub fn member_config(
    version: ApiVersion,
    member: MemberRef<'_>,
    all: &[MemberRef<'_>],
) -> (EtcdInitConfiguration, EtcdClusterConfiguration) {
    let initial_cluster = all
        .iter()
        .map(|m| format!("{}={}", m.name, url(m.ip, PEER_PORT)))
        .collect::<Vec<_>>()
        .join(",");
    let host = member.ip.to_string();
    let extra_args = ExtraArgs::new(
        version,
        [
            ("initial-cluster", initial_cluster),
            ("initial-cluster-state", "new".into()),
            ("name", member.name.into()),
            ("listen-peer-urls", url(member.ip, PEER_PORT)),
            ("listen-client-urls", url(member.ip, CLIENT_PORT)),
            ("advertise-client-urls", url(member.ip, CLIENT_PORT)),
            ("initial-advertise-peer-urls", url(member.ip, PEER_PORT)),
        ],
    );
    let init = EtcdInitConfiguration {
        api_version: version.api_version(),
        kind: "InitConfiguration".into(),
        node_registration: NodeRegistration {
            name: member.name.into(),
        },
        local_api_endpoint: LocalApiEndpoint {
            advertise_address: host.clone(),
        },
    };
    let cluster = EtcdClusterConfiguration {
        api_version: version.api_version(),
        kind: "ClusterConfiguration".into(),
        etcd: Etcd {
            local: LocalEtcd {
                server_cert_sans: vec![host.clone()],
                peer_cert_sans: vec![host],
                extra_args,
            },
        },
    };
    (init, cluster)
}

/// `kubeadmcfg.yaml` text for `member` of the cluster `all`.
pub fn render_member_config(
    version: ApiVersion,
    member: MemberRef<'_>,
    all: &[MemberRef<'_>],
) -> Result<String> {
    let (init, cluster) = member_config(version, member, all);
    Ok(format!(
        "{}{}",
        to_yaml_stream(&[&init])?,
        to_yaml_stream(&[&cluster])?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> Vec<MemberRef<'static>> {
        vec![
            MemberRef {
                name: "infra0",
                ip: "10.0.0.6".parse().unwrap(),
            },
            MemberRef {
                name: "infra1",
                ip: "fd00::7".parse().unwrap(),
            },
        ]
    }

    #[test]
    fn v1beta4_matches_the_guide() {
        let all = members();
        let text = render_member_config(ApiVersion::V1beta4, all[0], &all).unwrap();
        let expected = "\
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  name: infra0
localAPIEndpoint:
  advertiseAddress: 10.0.0.6
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
etcd:
  local:
    serverCertSANs:
    - 10.0.0.6
    peerCertSANs:
    - 10.0.0.6
    extraArgs:
    - name: initial-cluster
      value: infra0=https://10.0.0.6:2380,infra1=https://[fd00::7]:2380
    - name: initial-cluster-state
      value: new
    - name: name
      value: infra0
    - name: listen-peer-urls
      value: https://10.0.0.6:2380
    - name: listen-client-urls
      value: https://10.0.0.6:2379
    - name: advertise-client-urls
      value: https://10.0.0.6:2379
    - name: initial-advertise-peer-urls
      value: https://10.0.0.6:2380
";
        assert_eq!(text, expected);
    }

    #[test]
    fn v1beta3_uses_a_map_and_parses_back_strictly() {
        let all = members();
        let text = render_member_config(ApiVersion::V1beta3, all[1], &all).unwrap();
        assert!(
            text.contains("    extraArgs:\n      initial-cluster: "),
            "{text}"
        );
        assert!(
            text.contains("listen-client-urls: https://[fd00::7]:2379"),
            "{text}"
        );
        let docs: Vec<&str> = text.split("---\n").filter(|d| !d.is_empty()).collect();
        let init: EtcdInitConfiguration = serde_yaml_ng::from_str(docs[0]).unwrap();
        let cluster: EtcdClusterConfiguration = serde_yaml_ng::from_str(docs[1]).unwrap();
        assert_eq!(init.node_registration.name, "infra1");
        assert_eq!(cluster.etcd.local.extra_args.get("name"), Some("infra1"));
    }
}
