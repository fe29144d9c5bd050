//! v1beta3 documents converted to v1beta4 for kubeadm >= 1.37, which no longer reads v1beta3
//! (kubernetes/kubernetes#136016), the way `kubeadm config migrate` of kubeadm 1.31 to 1.36 does
//! it (kubeadm's `apis/kubeadm/v1beta3/conversion.go` and `v1beta4/conversion.go`):
//!
//! - every `extraArgs` map becomes a name/value list sorted by name (`convertToArgs`);
//! - `ClusterConfiguration.apiServer.timeoutForControlPlane` becomes
//!   `timeouts.controlPlaneComponentHealthCheck` of the stream's InitConfiguration and
//!   JoinConfiguration (`SetConversionTimeoutControlPlane`);
//! - `JoinConfiguration.discovery.timeout` becomes `JoinConfiguration.timeouts.discovery`.
//!
//! One step goes beyond `kubeadm config migrate`, which copies feature gates as they are: kubeadm
//! 1.37 also removed the `PublicKeysECDSA` gate (same pull request), whose v1beta4 replacement is
//! `encryptionAlgorithm: ECDSA-P256`, so the gate is turned into that field.
//!
//! Defaults `kubeadm config migrate` would write out (imagePullSerial, the other timeouts,
//! encryptionAlgorithm RSA-2048, …) are left for kubeadm to apply.

use super::document::Document;
use super::types::{
    ApiServer, ClusterConfiguration, InitConfiguration, JoinConfiguration, Timeouts,
};
use super::{ApiVersion, ExtraArgs};
use crate::version::{KubeVersion, V1BETA3_REMOVED_MINOR};
use crate::Error;

/// The kubeadm feature gate kubeadm 1.37 removed along with v1beta3.
pub const PUBLIC_KEYS_ECDSA: &str = "PublicKeysECDSA";
/// The v1beta4 `encryptionAlgorithm` that `PublicKeysECDSA: true` stood for.
pub const ECDSA_P256: &str = "ECDSA-P256";

/// Whether `kubeadm` needs v1beta3 documents converted: it is 1.37 or newer.
pub fn needed(kubeadm: &KubeVersion) -> bool {
    !kubeadm.reads(ApiVersion::V1beta3)
}

/// Converts the v1beta3 documents of `docs` (each with its number in the stream, from 1) to
/// v1beta4 for `kubeadm`, and returns one note per converted document for the log. Errors name
/// the document and the field that has no place in v1beta4.
pub fn to_v1beta4(
    docs: &mut [(usize, Document)],
    kubeadm: &KubeVersion,
) -> Result<Vec<String>, Error> {
    let mut notes = Vec::new();
    let mut control_plane_timeout = None;
    for (n, doc) in docs.iter_mut() {
        if !is_v1beta3(doc) {
            continue;
        }
        let at = label(*n, doc.kind());
        let mut extra = String::new();
        match doc {
            Document::Init(d) => init(d),
            Document::Join(d) => join(d),
            Document::Cluster(d) => {
                if let Some(t) = take_control_plane_timeout(d) {
                    control_plane_timeout = Some((at.clone(), t));
                }
                if ecdsa_gate(d) {
                    extra = format!(
                        "; featureGates.{PUBLIC_KEYS_ECDSA}: true became encryptionAlgorithm: {ECDSA_P256} (kubeadm v1.{V1BETA3_REMOVED_MINOR} removed the gate)"
                    );
                }
                cluster(d);
            }
            Document::Other { .. } => continue,
        }
        notes.push(format!(
            "{at} converted to v1beta4 as `kubeadm config migrate` does: kubeadm v1.{} no longer reads v1beta3{extra}",
            kubeadm.minor
        ));
    }
    if let Some((at, timeout)) = control_plane_timeout {
        move_control_plane_timeout(docs, &at, &timeout)?;
    }
    Ok(notes)
}

/// `document N (Kind kubeadm.k8s.io/v1beta3)`, as the stream's errors name documents.
fn label(n: usize, kind: &str) -> String {
    format!(
        "document {n} ({kind} {})",
        ApiVersion::V1beta3.api_version()
    )
}

fn is_v1beta3(doc: &Document) -> bool {
    let v3 = ApiVersion::V1beta3.api_version();
    match doc {
        Document::Init(d) => d.api_version == v3,
        Document::Cluster(d) => d.api_version == v3,
        Document::Join(d) => d.api_version == v3,
        Document::Other { .. } => false,
    }
}

/// A v1beta3 extraArgs map as v1beta4's list, sorted by name then value (kubeadm's
/// `convertToArgs`).
fn args(a: &mut Option<ExtraArgs>) {
    if let Some(a) = a {
        a.version = ApiVersion::V1beta4;
        a.args
            .sort_by(|x, y| (&x.name, &x.value).cmp(&(&y.name, &y.value)));
    }
}

fn init(d: &mut InitConfiguration) {
    d.api_version = ApiVersion::V1beta4.api_version();
    if let Some(nr) = &mut d.node_registration {
        args(&mut nr.kubelet_extra_args);
    }
}

/// `discovery.timeout` → `timeouts.discovery` (kubeadm's
/// `Convert_v1beta3_JoinConfiguration_To_kubeadm_JoinConfiguration`).
fn join(d: &mut JoinConfiguration) {
    d.api_version = ApiVersion::V1beta4.api_version();
    if let Some(nr) = &mut d.node_registration {
        args(&mut nr.kubelet_extra_args);
    }
    if let Some(t) = d.discovery.timeout.take() {
        d.timeouts.get_or_insert_with(Timeouts::default).discovery = Some(t);
    }
}

fn cluster(d: &mut ClusterConfiguration) {
    d.api_version = ApiVersion::V1beta4.api_version();
    if let Some(a) = &mut d.api_server {
        args(&mut a.extra_args);
    }
    for c in [&mut d.controller_manager, &mut d.scheduler]
        .into_iter()
        .flatten()
    {
        args(&mut c.extra_args);
    }
    if let Some(local) = d.etcd.as_mut().and_then(|e| e.local.as_mut()) {
        args(&mut local.extra_args);
    }
}

/// Takes `apiServer.timeoutForControlPlane` out, and `apiServer` when nothing else is left in it.
fn take_control_plane_timeout(d: &mut ClusterConfiguration) -> Option<String> {
    let a = d.api_server.as_mut()?;
    let t = a.timeout_for_control_plane.take();
    if *a == ApiServer::default() {
        d.api_server = None;
    }
    t
}

/// Takes `featureGates.PublicKeysECDSA` out; `true` becomes `encryptionAlgorithm: ECDSA-P256`
/// (kubeadm used ECDSA-P256 keys when the gate was on). Returns whether it was on.
fn ecdsa_gate(d: &mut ClusterConfiguration) -> bool {
    let Some(gates) = &mut d.feature_gates else {
        return false;
    };
    let on = gates.remove(PUBLIC_KEYS_ECDSA) == Some(true);
    if gates.is_empty() {
        d.feature_gates = None;
    }
    if on {
        d.encryption_algorithm = Some(ECDSA_P256.into());
    }
    on
}

/// v1beta4 keeps the control-plane timeout in InitConfiguration and JoinConfiguration; kubeadm's
/// conversion sets it on both. A stream with neither has no place for it.
fn move_control_plane_timeout(
    docs: &mut [(usize, Document)],
    at: &str,
    timeout: &str,
) -> Result<(), Error> {
    let mut placed = false;
    for (_, doc) in docs.iter_mut() {
        let timeouts = match doc {
            Document::Init(d) => &mut d.timeouts,
            Document::Join(d) => &mut d.timeouts,
            _ => continue,
        };
        timeouts
            .get_or_insert_with(Timeouts::default)
            .control_plane_component_health_check = Some(timeout.to_owned());
        placed = true;
    }
    if placed {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{at}: apiServer.timeoutForControlPlane has no place in v1beta4 without an InitConfiguration \
         or JoinConfiguration (v1beta4 keeps it as their timeouts.controlPlaneComponentHealthCheck) \
         and kubeadm v1.{V1BETA3_REMOVED_MINOR} no longer reads v1beta3: run `kubeadm config migrate` \
         with kubeadm v1.36 or write v1beta4"
    )))
}

/// kubeadm >= 1.37 refuses `featureGates.PublicKeysECDSA` (kubeadm's feature-gate validation:
/// "is not a valid feature name"); kiln says what to write instead.
pub fn check_removed_gates(d: &ClusterConfiguration, kubeadm: &KubeVersion) -> Result<(), Error> {
    let has_gate = d
        .feature_gates
        .as_ref()
        .is_some_and(|g| g.contains_key(PUBLIC_KEYS_ECDSA));
    if has_gate && needed(kubeadm) {
        return Err(Error::invalid(format!(
            "featureGates.{PUBLIC_KEYS_ECDSA}: kubeadm {kubeadm} no longer has this feature gate (removed in \
             v1.{V1BETA3_REMOVED_MINOR}); set encryptionAlgorithm: {ECDSA_P256} instead"
        )));
    }
    Ok(())
}

#[cfg(test)]
#[path = "migrate_tests.rs"]
mod tests;
