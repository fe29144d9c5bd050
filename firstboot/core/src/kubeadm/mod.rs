//! kubeadm configuration types, as kubeadm decodes them: strictly (unknown fields are errors),
//! in the API version the node's kubeadm speaks.
//!
//! - [`etcd`]: the per-member config of "Set up a High Availability etcd Cluster with kubeadm".
//! - [`types`]: InitConfiguration, ClusterConfiguration, JoinConfiguration.
//! - [`stream`]: a whole `--config` stream, read strictly, of [`document`]s.
//! - [`render`]: node config → kubeadm config; [`adjust`]: kiln's changes to a given config.
//! - [`migrate`]: v1beta3 documents converted to v1beta4 for kubeadm >= 1.37, as
//!   `kubeadm config migrate` does.

pub mod adjust;
pub mod document;
pub mod etcd;
pub mod migrate;
pub mod render;
pub mod stream;
pub mod types;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize};

use crate::Error;

pub use crate::version::{ApiVersion, API_GROUP};

/// One command-line argument of a control-plane component, as v1beta4 lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arg {
    /// Flag name without dashes.
    pub name: String,
    /// Flag value.
    pub value: String,
}

/// `extraArgs`: a string map in v1beta3, a list of [`Arg`] in v1beta4. Order is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraArgs {
    /// How it is written.
    pub version: ApiVersion,
    /// The arguments in order.
    pub args: Vec<Arg>,
}

impl ExtraArgs {
    /// Builds extraArgs for `version` from name/value pairs.
    pub fn new<N: Into<String>, V: Into<String>>(
        version: ApiVersion,
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let args = pairs
            .into_iter()
            .map(|(n, v)| Arg {
                name: n.into(),
                value: v.into(),
            })
            .collect();
        ExtraArgs { version, args }
    }

    /// The value of the argument `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_str())
    }
}

impl Serialize for ExtraArgs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.version {
            ApiVersion::V1beta3 => {
                let mut map = s.serialize_map(Some(self.args.len()))?;
                for a in &self.args {
                    map.serialize_entry(&a.name, &a.value)?;
                }
                map.end()
            }
            ApiVersion::V1beta4 => {
                let mut seq = s.serialize_seq(Some(self.args.len()))?;
                for a in &self.args {
                    seq.serialize_element(a)?;
                }
                seq.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for ExtraArgs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(Vec<Arg>),
            Map(serde_yaml_ng::Mapping),
        }
        Ok(match Form::deserialize(d)? {
            Form::List(args) => ExtraArgs {
                version: ApiVersion::V1beta4,
                args,
            },
            Form::Map(map) => {
                let pairs = map.into_iter().map(|(k, v)| {
                    let text = |x: serde_yaml_ng::Value| match x {
                        serde_yaml_ng::Value::String(s) => Ok(s),
                        other => Err(serde::de::Error::custom(format!(
                            "extraArgs values must be strings, found {other:?}"
                        ))),
                    };
                    Ok((text(k)?, text(v)?))
                });
                ExtraArgs::new(
                    ApiVersion::V1beta3,
                    pairs.collect::<Result<Vec<_>, D::Error>>()?,
                )
            }
        })
    }
}

/// Renders documents as one multi-document YAML stream (`---` before each), as kubeadm reads
/// `--config` files.
pub fn to_yaml_stream<T: Serialize>(docs: &[&T]) -> Result<String, Error> {
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        out.push_str(
            &serde_yaml_ng::to_string(doc)
                .map_err(|e| Error::invalid(format!("rendering kubeadm config: {e}")))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_args_serialize_per_version_and_round_trip() {
        let pairs = [("name", "a"), ("initial-cluster-state", "new")];
        let v3 = serde_yaml_ng::to_string(&ExtraArgs::new(ApiVersion::V1beta3, pairs)).unwrap();
        assert_eq!(v3, "name: a\ninitial-cluster-state: new\n");
        let v4 = serde_yaml_ng::to_string(&ExtraArgs::new(ApiVersion::V1beta4, pairs)).unwrap();
        assert_eq!(
            v4,
            "- name: name\n  value: a\n- name: initial-cluster-state\n  value: new\n"
        );
        for text in [v3, v4] {
            let back: ExtraArgs = serde_yaml_ng::from_str(&text).unwrap();
            assert_eq!(back.get("initial-cluster-state"), Some("new"));
        }
    }

    #[test]
    fn api_version_parses_both_forms() {
        assert_eq!(
            "v1beta3".parse::<ApiVersion>().unwrap(),
            ApiVersion::V1beta3
        );
        assert_eq!(
            "kubeadm.k8s.io/v1beta4".parse::<ApiVersion>().unwrap(),
            ApiVersion::V1beta4
        );
        assert!("v1beta2"
            .parse::<ApiVersion>()
            .unwrap_err()
            .to_string()
            .contains("v1beta3"));
        let e = "kubeadm.k8s.io/v1"
            .parse::<ApiVersion>()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("placeholder") && e.contains("use v1beta4"),
            "{e}"
        );
    }
}
