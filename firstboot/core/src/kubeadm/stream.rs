//! A kubeadm `--config` file: a YAML stream of InitConfiguration, ClusterConfiguration,
//! JoinConfiguration and the component configs kubeadm passes on (KubeletConfiguration,
//! KubeProxyConfiguration). Read strictly, as `kubeadm config validate` does, and checked
//! against the API versions the node's kubeadm reads; v1beta3 documents given to kubeadm >= 1.37
//! are converted to v1beta4 ([`super::migrate`]).

use serde::Serialize;
use serde_yaml_ng::{Mapping, Value};

use super::migrate;
use super::types::{ClusterConfiguration, InitConfiguration, JoinConfiguration};
use super::ApiVersion;
use crate::version::KubeVersion;
use crate::Error;

pub use super::document::{Document, KUBELET_API, KUBE_PROXY_API};

/// A whole kubeadm config stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KubeadmConfig {
    /// The documents in order.
    pub docs: Vec<Document>,
    /// One note per v1beta3 document converted to v1beta4 while parsing (kubeadm >= 1.37);
    /// empty when the stream is as given.
    pub conversions: Vec<String>,
}

impl KubeadmConfig {
    /// Parses a stream strictly and checks that `kubeadm` reads every document's version;
    /// [`KubeadmConfig::parse_named`] with the source `kubeadm config`.
    pub fn parse(text: &str, kubeadm: &KubeVersion) -> Result<KubeadmConfig, Error> {
        Self::parse_named(text, kubeadm, "kubeadm config")
    }

    /// Parses a stream strictly and checks that `kubeadm` reads every document's version. For
    /// kubeadm >= 1.37, v1beta3 documents are converted to v1beta4 as `kubeadm config migrate`
    /// does, each logged as a warning that starts with `source` (e.g. `kubeadm_config`).
    pub fn parse_named(
        text: &str,
        kubeadm: &KubeVersion,
        source: &str,
    ) -> Result<KubeadmConfig, Error> {
        let mut docs = Vec::new();
        for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let at = format!("document {}", i + 1);
            let value: Value = serde::Deserialize::deserialize(de)
                .map_err(|e| Error::invalid(format!("{at}: not YAML: {e}")))?;
            if value.is_null() {
                continue;
            }
            docs.push((i + 1, document(value, kubeadm, &at)?));
        }
        let conversions = match migrate::needed(kubeadm) {
            true => migrate::to_v1beta4(&mut docs, kubeadm)?,
            false => Vec::new(),
        };
        for note in &conversions {
            tracing::warn!("{source}: {note}");
        }
        for (n, doc) in &docs {
            if let Document::Cluster(c) = doc {
                migrate::check_removed_gates(c, kubeadm).map_err(|e| {
                    Error::invalid(format!(
                        "document {n} ({} {}): {e}",
                        doc.kind(),
                        c.api_version
                    ))
                })?;
            }
        }
        Ok(KubeadmConfig {
            docs: docs.into_iter().map(|(_, d)| d).collect(),
            conversions,
        })
    }

    /// The stream as kubeadm reads it (`---` before each document).
    pub fn to_yaml(&self) -> Result<String, Error> {
        let mut out = String::new();
        for doc in &self.docs {
            out.push_str("---\n");
            out.push_str(&match doc {
                Document::Init(d) => yaml(d)?,
                Document::Cluster(d) => yaml(d)?,
                Document::Join(d) => yaml(d)?,
                Document::Other { body, .. } => yaml(body)?,
            });
        }
        Ok(out)
    }

    /// The InitConfiguration, if any.
    pub fn init_mut(&mut self) -> Option<&mut InitConfiguration> {
        self.docs.iter_mut().find_map(|d| match d {
            Document::Init(x) => Some(x.as_mut()),
            _ => None,
        })
    }

    /// The ClusterConfiguration, if any.
    pub fn cluster_mut(&mut self) -> Option<&mut ClusterConfiguration> {
        self.docs.iter_mut().find_map(|d| match d {
            Document::Cluster(x) => Some(x.as_mut()),
            _ => None,
        })
    }

    /// The JoinConfiguration, if any.
    pub fn join(&self) -> Option<&JoinConfiguration> {
        self.docs.iter().find_map(|d| match d {
            Document::Join(x) => Some(x.as_ref()),
            _ => None,
        })
    }

    /// The JoinConfiguration, if any, mutably.
    pub fn join_mut(&mut self) -> Option<&mut JoinConfiguration> {
        self.docs.iter_mut().find_map(|d| match d {
            Document::Join(x) => Some(x.as_mut()),
            _ => None,
        })
    }

    /// CA pinning of a token-based join, as kubeadm requires it: an error without
    /// `caCertHashes` or `unsafeSkipCAVerification`, a warning with the latter.
    pub fn pinning_warnings(&self) -> Result<Vec<String>, Error> {
        let Some(token) = self
            .join()
            .and_then(|j| j.discovery.bootstrap_token.as_ref())
        else {
            return Ok(Vec::new());
        };
        let pinned = token.ca_cert_hashes.as_ref().is_some_and(|h| !h.is_empty());
        match (pinned, token.unsafe_skip_ca_verification == Some(true)) {
            (true, _) => Ok(Vec::new()),
            (false, true) => Ok(vec![
                "JoinConfiguration.discovery.bootstrapToken.unsafeSkipCAVerification: joining without pinning the cluster CA".into(),
            ]),
            (false, false) => Err(Error::invalid(
                "JoinConfiguration.discovery.bootstrapToken.caCertHashes: missing; pin the cluster CA or set unsafeSkipCAVerification: true",
            )),
        }
    }

    /// Whether a document of `kind` is present.
    pub fn has(&self, kind: &str) -> bool {
        self.docs.iter().any(|d| d.kind() == kind)
    }

    /// The body of the first `Other` document of `kind`, mutably.
    pub fn other_mut(&mut self, kind: &str) -> Option<&mut Mapping> {
        self.docs.iter_mut().find_map(|d| match d {
            Document::Other { kind: k, body } if k == kind => Some(body),
            _ => None,
        })
    }
}

fn yaml<T: Serialize>(doc: &T) -> Result<String, Error> {
    serde_yaml_ng::to_string(doc)
        .map_err(|e| Error::invalid(format!("rendering kubeadm config: {e}")))
}

fn text_field<'a>(value: &'a Value, key: &str, at: &str) -> Result<&'a str, Error> {
    value
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid(format!("{at}: {key}: missing")))
}

/// Decodes one document by its apiVersion and kind.
fn document(value: Value, kubeadm: &KubeVersion, at: &str) -> Result<Document, Error> {
    let api_version = text_field(&value, "apiVersion", at)?.to_owned();
    let kind = text_field(&value, "kind", at)?.to_owned();
    let at = format!("{at} ({kind} {api_version})");
    if let Some(version) = api_version.strip_prefix("kubeadm.k8s.io/") {
        let api: ApiVersion = version
            .parse()
            .map_err(|e: Error| Error::invalid(format!("{at}: {e}")))?;
        // v1beta3 for kubeadm >= 1.37 is decoded as v1beta3 and converted afterwards.
        if api == ApiVersion::V1beta4 && !kubeadm.reads(api) {
            return Err(Error::invalid(format!(
                "{at}: kubeadm {kubeadm} reads only kubeadm.k8s.io/v1beta3; v1beta4 needs kubeadm >= v1.31"
            )));
        }
        return kubeadm_kind(value, &kind, api, &at);
    }
    match (api_version.as_str(), kind.as_str()) {
        (KUBELET_API, "KubeletConfiguration") | (KUBE_PROXY_API, "KubeProxyConfiguration") => {
            match value {
                Value::Mapping(body) => Ok(Document::Other { kind, body }),
                _ => Err(Error::invalid(format!("{at}: not a mapping"))),
            }
        }
        _ => Err(Error::invalid(format!(
            "{at}: unknown kind; kubeadm reads InitConfiguration, ClusterConfiguration, JoinConfiguration ({}), \
             KubeletConfiguration ({KUBELET_API}) and KubeProxyConfiguration ({KUBE_PROXY_API})",
            "kubeadm.k8s.io/v1beta3 or v1beta4"
        ))),
    }
}

fn kubeadm_kind(value: Value, kind: &str, api: ApiVersion, at: &str) -> Result<Document, Error> {
    // Without the values the decoder quotes: a token in the wrong field would be printed.
    let strict = |e: serde_yaml_ng::Error| {
        let message = crate::redact::decode_error(&e.to_string());
        Error::invalid(format!("{at}: strict decoding error: {message}"))
    };
    let checked = |r: Result<(), Error>| r.map_err(|e| Error::invalid(format!("{at}: {e}")));
    Ok(match kind {
        "InitConfiguration" => {
            let d: InitConfiguration = serde_yaml_ng::from_value(value).map_err(strict)?;
            checked(d.check(api))?;
            Document::Init(Box::new(d))
        }
        "ClusterConfiguration" => {
            let d: ClusterConfiguration = serde_yaml_ng::from_value(value).map_err(strict)?;
            checked(d.check(api))?;
            Document::Cluster(Box::new(d))
        }
        "JoinConfiguration" => {
            let d: JoinConfiguration = serde_yaml_ng::from_value(value).map_err(strict)?;
            checked(d.check(api))?;
            Document::Join(Box::new(d))
        }
        "ResetConfiguration" | "UpgradeConfiguration" if api == ApiVersion::V1beta4 => {
            match value {
                Value::Mapping(body) => Document::Other {
                    kind: kind.to_owned(),
                    body,
                },
                _ => return Err(Error::invalid(format!("{at}: not a mapping"))),
            }
        }
        _ => return Err(Error::invalid(format!("{at}: unknown kubeadm kind"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KubeVersion {
        s.parse().unwrap()
    }

    #[test]
    fn parses_capi_style_stream_and_round_trips() {
        let text = "---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: v1.30.4\ncontrolPlaneEndpoint: lb:6443\napiServer:\n  extraArgs:\n    cloud-provider: external\n---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nnodeRegistration:\n  criSocket: unix:///var/run/containerd/containerd.sock\n  kubeletExtraArgs:\n    cloud-provider: external\n";
        let cfg = KubeadmConfig::parse(text, &v("v1.30.4")).unwrap();
        assert_eq!(cfg.docs.len(), 2);
        let again = KubeadmConfig::parse(&cfg.to_yaml().unwrap(), &v("v1.30.4")).unwrap();
        assert_eq!(again, cfg);
    }

    #[test]
    fn refuses_unknown_fields_kinds_and_new_versions() {
        let bad = |text: &str, kubeadm: &str| {
            KubeadmConfig::parse(text, &v(kubeadm))
                .unwrap_err()
                .to_string()
        };
        let e = bad(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nfoo: 1\n",
            "v1.31.0",
        );
        assert!(e.contains("document 1 (InitConfiguration kubeadm.k8s.io/v1beta4): strict decoding error: unknown field `foo`"), "{e}");
        let e = bad(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n",
            "v1.30.0",
        );
        assert!(e.contains("v1beta4 needs kubeadm >= v1.31"), "{e}");
        let e = bad(
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\ntimeouts: {}\n",
            "v1.30.0",
        );
        assert!(
            e.contains("InitConfiguration.timeouts: unknown field in kubeadm.k8s.io/v1beta3"),
            "{e}"
        );
        let e = bad("apiVersion: v1\nkind: Pod\n", "v1.31.0");
        assert!(e.contains("unknown kind"), "{e}");
        let e = bad(
            "apiVersion: kubeadm.k8s.io/v1beta2\nkind: InitConfiguration\n",
            "v1.31.0",
        );
        assert!(e.contains("v1beta2"), "{e}");
    }

    #[test]
    fn strict_decoding_errors_never_quote_values() {
        let text = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\nnodeRegistration:\n  taints: abcdef.0123456789abcdef\n";
        let e = KubeadmConfig::parse(text, &v("v1.31.2"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("strict decoding error") && !e.contains("0123456789abcdef"),
            "{e}"
        );
        let text = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\ndryRun: abcdef.0123456789abcdef\n";
        let e = KubeadmConfig::parse(text, &v("v1.31.2"))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("0123456789abcdef"), "{e}");
    }

    #[test]
    fn joins_must_pin_the_ca() {
        let join = |extra: &str| {
            let text = format!("apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    token: abcdef.0123456789abcdef\n{extra}");
            KubeadmConfig::parse(&text, &v("v1.31.2"))
                .unwrap()
                .pinning_warnings()
        };
        assert!(join("")
            .unwrap_err()
            .to_string()
            .contains("caCertHashes: missing"));
        assert_eq!(
            join("    unsafeSkipCAVerification: true\n").unwrap().len(),
            1
        );
        assert!(join("    caCertHashes: [\"sha256:00\"]\n")
            .unwrap()
            .is_empty());
    }
}
