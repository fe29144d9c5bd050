//! Stand-ins for tools the test suite cannot obtain here. **These are not the real tools.**
//!
//! - The stand-in kubeadm (binary `kubeadm`, [`decode`] as a library): records its argv and the
//!   config it was given, and decodes that config strictly against kubeadm's v1beta3/v1beta4
//!   field names ([`schema`]) — stricter than the real `kubeadm init`/`join`, which only warn
//!   about unknown fields and drop them (`kubeadm config validate` errors, like this), with the
//!   per-release rules kubeadm 1.37 brought: no v1beta3, no `PublicKeysECDSA` gate, and a
//!   `kubeadm.k8s.io/v1` placeholder that cannot be used.
//! - The stand-in's version ([`version`]): `$KILN_STANDIN_KUBEADM_VERSION`, else a trailer at the
//!   end of its executable ([`with_version_trailer`]), else v1.31.2.
//! - Its `kubeadm config images list` ([`images`]).

pub mod images;
pub mod schema;
pub mod version;

use serde_yaml_ng::Value;

use schema::Shape;
pub use version::with_version_trailer;

/// The first kubeadm minor without v1beta3 and the `PublicKeysECDSA` feature gate
/// (kubernetes/kubernetes#136016, CHANGELOG-1.37).
pub const V1BETA3_REMOVED_MINOR: u32 = 37;
/// The kubeadm feature gate kubeadm 1.37 removed.
pub const PUBLIC_KEYS_ECDSA: &str = "PublicKeysECDSA";

/// One decoded document of a kubeadm config stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// The document.
    pub body: Value,
}

/// The field table for a kubeadm kind, or why kubeadm `minor` would not read it.
fn kubeadm_shape(version: &str, kind: &str, minor: u32) -> Result<Option<&'static Shape>, String> {
    let gvk = format!("kubeadm.k8s.io/{version}, Kind={kind}");
    match version {
        "v1beta1" | "v1beta2" => {
            return Err(format!(
                "your configuration file uses an old API spec: \"kubeadm.k8s.io/{version}\"; use kubeadm.k8s.io/v1beta3 or newer"
            ))
        }
        "v1beta4" if minor < 31 => {
            return Err(format!(
                "no kind \"{kind}\" is registered for version \"kubeadm.k8s.io/v1beta4\" in scheme (kubeadm v1.{minor} reads v1beta3)"
            ))
        }
        "v1beta3" if minor >= V1BETA3_REMOVED_MINOR => {
            return Err(format!(
                "no kind \"{kind}\" is registered for version \"kubeadm.k8s.io/v1beta3\" in scheme \"k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme/scheme.go\" (kubeadm v1.{V1BETA3_REMOVED_MINOR} removed v1beta3; use 'kubeadm config migrate' of kubeadm v1.36)"
            ))
        }
        "v1" if minor >= V1BETA3_REMOVED_MINOR => {
            return Err(format!(
                "{gvk}: kubeadm.k8s.io/v1 is a placeholder, flagged as experimental, and cannot be used yet; use kubeadm.k8s.io/v1beta4"
            ))
        }
        "v1beta3" | "v1beta4" => {}
        _ => return Err(format!("no kind is registered for the type {gvk}")),
    }
    let v4 = version == "v1beta4";
    Ok(match (kind, v4) {
        ("InitConfiguration", false) => Some(&schema::INIT_V3),
        ("InitConfiguration", true) => Some(&schema::INIT_V4),
        ("ClusterConfiguration", false) => Some(&schema::CLUSTER_V3),
        ("ClusterConfiguration", true) => Some(&schema::CLUSTER_V4),
        ("JoinConfiguration", false) => Some(&schema::JOIN_V3),
        ("JoinConfiguration", true) => Some(&schema::JOIN_V4),
        ("ResetConfiguration", true) => Some(&schema::RESET_V4),
        ("UpgradeConfiguration", true) => None,
        _ => {
            return Err(format!(
                "no kind \"{kind}\" is registered for version \"kubeadm.k8s.io/{version}\""
            ))
        }
    })
}

/// Decodes a `--config` stream as kubeadm v1.`minor` would, strictly: every kubeadm document
/// against its field table, component configs (KubeletConfiguration, KubeProxyConfiguration)
/// by group, version and the fields kiln sets.
pub fn decode(text: &str, minor: u32) -> Result<Vec<Doc>, String> {
    let mut docs = Vec::new();
    for de in serde_yaml_ng::Deserializer::from_str(text) {
        let body: Value =
            serde::Deserialize::deserialize(de).map_err(|e| format!("invalid YAML: {e}"))?;
        if body.is_null() {
            continue;
        }
        let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        let (Some(api_version), Some(kind)) = (field("apiVersion"), field("kind")) else {
            return Err("Object 'Kind' or 'apiVersion' is missing in a document".into());
        };
        let gvk = format!("schema.GroupVersionKind{{{api_version}, Kind={kind}}}");
        if let Some(version) = api_version.strip_prefix("kubeadm.k8s.io/") {
            if let Some(shape) = kubeadm_shape(version, &kind, minor)? {
                check(&body, shape, "")
                    .map_err(|e| format!("error unmarshaling configuration {gvk}: {e}"))?;
            }
            if kind == "ClusterConfiguration" {
                feature_gates(&body, minor)?;
            }
        } else {
            component(&api_version, &kind, &body).map_err(|e| format!("{gvk}: {e}"))?;
        }
        docs.push(Doc {
            api_version,
            kind,
            body,
        });
    }
    Ok(docs)
}

/// kubeadm's feature-gate validation of a ClusterConfiguration: `PublicKeysECDSA` is no longer a
/// feature of kubeadm >= 1.37 (kubeadm's `ValidateFeatureGates`: "is not a valid feature name").
fn feature_gates(body: &Value, minor: u32) -> Result<(), String> {
    let Some(gates) = body.get("featureGates").and_then(Value::as_mapping) else {
        return Ok(());
    };
    match gates.get(PUBLIC_KEYS_ECDSA) {
        Some(v) if minor >= V1BETA3_REMOVED_MINOR => Err(format!(
            "ClusterConfiguration.featureGates: Invalid value: {{\"{PUBLIC_KEYS_ECDSA}\": {}}}: {PUBLIC_KEYS_ECDSA} is not a valid feature name. (kubeadm v1.{V1BETA3_REMOVED_MINOR} removed it; use encryptionAlgorithm: ECDSA-P256)",
            serde_yaml_ng::to_string(v).unwrap_or_default().trim()
        )),
        _ => Ok(()),
    }
}

/// KubeletConfiguration and KubeProxyConfiguration: group/version/kind, and the fields kiln sets.
fn component(api_version: &str, kind: &str, body: &Value) -> Result<(), String> {
    match (api_version, kind) {
        ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration") => {
            match body.get("cgroupDriver") {
                None => {}
                Some(Value::String(d)) if d == "systemd" || d == "cgroupfs" => {}
                Some(other) => return Err(format!("cgroupDriver: invalid value {other:?}")),
            }
            match body.get("volumePluginDir") {
                None | Some(Value::String(_)) => Ok(()),
                Some(_) => Err("volumePluginDir: must be a string".into()),
            }
        }
        ("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration") => Ok(()),
        _ => Err("unknown configuration kind".into()),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Sequence(_) => "array",
        Value::Mapping(_) => "object",
        Value::Tagged(_) => "tagged value",
    }
}

/// Checks `v` against `shape`; `path` is the dotted field path so far.
fn check(v: &Value, shape: &Shape, path: &str) -> Result<(), String> {
    let mismatch = |want: &str| {
        Err(format!(
            "json: cannot unmarshal {} into Go struct field {path} of type {want}",
            type_name(v)
        ))
    };
    match (shape, v) {
        (_, Value::Null) | (Shape::Any, _) => Ok(()),
        (Shape::Str, Value::String(_)) => Ok(()),
        (Shape::Int, Value::Number(n)) if n.is_i64() => Ok(()),
        (Shape::Bool, Value::Bool(_)) => Ok(()),
        (Shape::Duration, Value::String(s)) => go_duration(s).map_err(|e| format!("{path}: {e}")),
        (Shape::Strs, _) => check(v, &Shape::List(&Shape::Str), path),
        (Shape::List(item), Value::Sequence(items)) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| check(x, item, &format!("{path}[{i}]"))),
        (Shape::StrMap | Shape::BoolMap, Value::Mapping(m)) => m.iter().try_for_each(|(k, x)| {
            let key = k
                .as_str()
                .ok_or_else(|| format!("{path}: keys must be strings"))?;
            let want = if matches!(shape, Shape::StrMap) {
                Shape::Str
            } else {
                Shape::Bool
            };
            check(x, &want, &format!("{path}.{key}"))
        }),
        (Shape::Obj(fields), Value::Mapping(m)) => m.iter().try_for_each(|(k, x)| {
            let key = k
                .as_str()
                .ok_or_else(|| format!("{path}: keys must be strings"))?;
            let sub = if path.is_empty() {
                key.to_owned()
            } else {
                format!("{path}.{key}")
            };
            match fields.iter().find(|(name, _)| *name == key) {
                Some((_, s)) => check(x, s, &sub),
                None => Err(format!("strict decoding error: unknown field \"{sub}\"")),
            }
        }),
        (Shape::Str, _) => mismatch("string"),
        (Shape::Int, _) => mismatch("int32"),
        (Shape::Bool, _) => mismatch("bool"),
        (Shape::Duration, _) => mismatch("v1.Duration"),
        (Shape::List(_), _) => mismatch("array"),
        (Shape::StrMap, _) => mismatch("map[string]string"),
        (Shape::BoolMap, _) => mismatch("map[string]bool"),
        (Shape::Obj(_), _) => mismatch("object"),
    }
}

/// Go's `time.ParseDuration`: `[-+]?` then one or more `NUMBER UNIT`, or `0`.
fn go_duration(s: &str) -> Result<(), String> {
    let bad = || Err(format!("time: invalid duration {s:?}"));
    let mut rest = s.strip_prefix(['-', '+']).unwrap_or(s);
    if rest == "0" {
        return Ok(());
    }
    if rest.is_empty() {
        return bad();
    }
    while !rest.is_empty() {
        let num = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if num == 0 {
            return bad();
        }
        rest = &rest[num..];
        let Some(unit) = ["ns", "us", "µs", "μs", "ms", "h", "m", "s"]
            .iter()
            .find(|u| rest.starts_with(*u))
        else {
            return bad();
        };
        rest = &rest[unit.len()..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_refuses_like_kubeadm() {
        let ok = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nnodeRegistration:\n  kubeletExtraArgs:\n  - name: node-ip\n    value: 10.0.0.1\ntimeouts:\n  discovery: 5m0s\n";
        assert_eq!(decode(ok, 31).unwrap().len(), 1);
        assert!(decode(ok, 30).unwrap_err().contains(
            "no kind \"InitConfiguration\" is registered for version \"kubeadm.k8s.io/v1beta4\""
        ));
        let unknown = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\napiServer:\n  timeoutForControlPlane: 4m0s\n  foo: 1\n";
        let e = decode(unknown, 30).unwrap_err();
        assert!(
            e.ends_with("strict decoding error: unknown field \"apiServer.foo\""),
            "{e}"
        );
        let wrong_form = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncontrollerManager:\n  extraArgs:\n    a: b\n";
        assert!(decode(wrong_form, 31)
            .unwrap_err()
            .contains("controllerManager.extraArgs of type array"));
        let unquoted = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nnodeRegistration:\n  kubeletExtraArgs:\n    x: true\n";
        assert!(decode(unquoted, 30)
            .unwrap_err()
            .contains("cannot unmarshal bool"));
        let moved = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer:\n  timeoutForControlPlane: 4m0s\n";
        assert!(decode(moved, 31)
            .unwrap_err()
            .contains("unknown field \"apiServer.timeoutForControlPlane\""));
        let bad_duration = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\ndiscovery:\n  timeout: 5 minutes\n";
        assert!(decode(bad_duration, 30)
            .unwrap_err()
            .contains("invalid duration"));
        let kubelet = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: system\n";
        assert!(decode(kubelet, 31).unwrap_err().contains("cgroupDriver"));
    }

    #[test]
    fn kubeadm_1_37_drops_v1beta3_and_public_keys_ecdsa() {
        let v3 = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n";
        decode(v3, 36).unwrap();
        let e = decode(v3, 37).unwrap_err();
        assert!(
            e.starts_with("no kind \"InitConfiguration\" is registered for version \"kubeadm.k8s.io/v1beta3\" in scheme"),
            "{e}"
        );
        let v1 = "apiVersion: kubeadm.k8s.io/v1\nkind: InitConfiguration\n";
        assert!(decode(v1, 37).unwrap_err().contains("placeholder"));
        assert!(decode(v1, 36)
            .unwrap_err()
            .contains("no kind is registered"));
        let gate = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nfeatureGates:\n  PublicKeysECDSA: true\n";
        decode(gate, 36).unwrap();
        let e = decode(gate, 37).unwrap_err();
        assert!(
            e.contains("PublicKeysECDSA is not a valid feature name"),
            "{e}"
        );
        let other = gate.replace("PublicKeysECDSA", "RootlessControlPlane");
        decode(&other, 37).unwrap();
    }

    #[test]
    fn go_durations() {
        for ok in ["0", "4m0s", "1h30m", "1.5h", "-2s", "300ms"] {
            go_duration(ok).unwrap();
        }
        for bad in ["", "4", "m", "4 m", "4d"] {
            assert!(go_duration(bad).is_err(), "{bad}");
        }
    }
}
