//! Client kubeconfigs with an embedded certificate signed by the cluster CA, as
//! `kubeadm kubeconfig user` prints them.

use base64::prelude::{Engine, BASE64_STANDARD};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::pki::{Ca, CertSpec, KeyType, PrivateKey, Usage};
use crate::{Error, Result};

/// Who the kubeconfig is for and which cluster it points at.
#[derive(Debug, Clone)]
pub struct UserRequest {
    /// The API server URL, e.g. `https://10.0.0.10:6443`.
    pub server: String,
    /// The cluster's name in the kubeconfig (kubeadm: `clusterName`, default `kubernetes`).
    pub cluster_name: String,
    /// The client certificate's CN: the Kubernetes user name.
    pub client_name: String,
    /// The client certificate's O values: the Kubernetes groups.
    pub organizations: Vec<String>,
    /// How long the client certificate is valid.
    pub validity: Duration,
    /// The client key's algorithm.
    pub key_type: KeyType,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Config<'a> {
    api_version: &'a str,
    kind: &'a str,
    clusters: [Named<'a, Cluster<'a>>; 1],
    contexts: [Named<'a, Context<'a>>; 1],
    current_context: &'a str,
    preferences: std::collections::BTreeMap<String, String>,
    users: [NamedUser<'a>; 1],
}

#[derive(Serialize)]
struct Named<'a, T> {
    #[serde(flatten)]
    inner: T,
    name: &'a str,
}

#[derive(Serialize)]
struct Cluster<'a> {
    cluster: ClusterInfo<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterInfo<'a> {
    certificate_authority_data: String,
    server: &'a str,
}

#[derive(Serialize)]
struct Context<'a> {
    context: ContextInfo<'a>,
}

#[derive(Serialize)]
struct ContextInfo<'a> {
    cluster: &'a str,
    user: &'a str,
}

#[derive(Serialize)]
struct NamedUser<'a> {
    name: &'a str,
    user: UserInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct UserInfo {
    client_certificate_data: String,
    client_key_data: String,
}

/// Renders the kubeconfig: a new client key and certificate (clientAuth) signed by `ca`, the
/// CA certificate, one context `CLIENT@CLUSTER`. The result contains a private key.
pub fn render_user_kubeconfig(ca: &Ca, req: &UserRequest, now: OffsetDateTime) -> Result<String> {
    if !(req.server.starts_with("https://") && req.server.len() > "https://".len()) {
        return Err(Error::invalid(format!(
            "--server {:?}: give the API server's https:// URL, e.g. https://10.0.0.10:6443",
            req.server
        )));
    }
    if req.client_name.is_empty() {
        return Err(Error::invalid("--client-name must not be empty"));
    }
    let key = PrivateKey::generate(req.key_type)?;
    let spec = CertSpec {
        common_name: req.client_name.clone(),
        organizations: req.organizations.clone(),
        usages: vec![Usage::Client],
        ..CertSpec::default()
    };
    let cert = ca.issue(&spec, &key, now, req.validity)?;
    let context = format!("{}@{}", req.client_name, req.cluster_name);
    let config = Config {
        api_version: "v1",
        kind: "Config",
        clusters: [Named {
            inner: Cluster {
                cluster: ClusterInfo {
                    certificate_authority_data: BASE64_STANDARD.encode(ca.cert_pem()),
                    server: &req.server,
                },
            },
            name: &req.cluster_name,
        }],
        contexts: [Named {
            inner: Context {
                context: ContextInfo {
                    cluster: &req.cluster_name,
                    user: &req.client_name,
                },
            },
            name: &context,
        }],
        current_context: &context,
        preferences: Default::default(),
        users: [NamedUser {
            name: &req.client_name,
            user: UserInfo {
                client_certificate_data: BASE64_STANDARD.encode(cert),
                client_key_data: BASE64_STANDARD.encode(key.to_pem()?),
            },
        }],
    };
    serde_yaml_ng::to_string(&config)
        .map_err(|e| Error::invalid(format!("rendering kubeconfig: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> UserRequest {
        UserRequest {
            server: "https://10.0.0.10:6443".into(),
            cluster_name: "kubernetes".into(),
            client_name: "system:node:worker-1".into(),
            organizations: vec!["system:nodes".into()],
            validity: Duration::days(365),
            key_type: KeyType::EcdsaP256,
        }
    }

    #[test]
    fn kubeconfig_has_context_and_embedded_data() {
        let now = OffsetDateTime::now_utc();
        let ca = Ca::generate(
            "kubernetes",
            PrivateKey::generate(KeyType::EcdsaP256).unwrap(),
            now,
        )
        .unwrap();
        let text = render_user_kubeconfig(&ca, &request(), now).unwrap();
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(
            v["current-context"].as_str(),
            Some("system:node:worker-1@kubernetes")
        );
        assert_eq!(
            v["clusters"][0]["cluster"]["server"].as_str(),
            Some("https://10.0.0.10:6443")
        );
        assert_eq!(v["users"][0]["name"].as_str(), Some("system:node:worker-1"));
        assert!(v["users"][0]["user"]["client-key-data"].as_str().is_some());
    }

    #[test]
    fn bad_server_is_rejected() {
        let now = OffsetDateTime::now_utc();
        let ca = Ca::generate(
            "kubernetes",
            PrivateKey::generate(KeyType::EcdsaP256).unwrap(),
            now,
        )
        .unwrap();
        let mut req = request();
        req.server = "10.0.0.10:6443".into();
        let err = render_user_kubeconfig(&ca, &req, now)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--server"), "{err}");
    }
}
