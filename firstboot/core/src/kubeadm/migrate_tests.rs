//! Tests of [`super::to_v1beta4`] through [`KubeadmConfig::parse`], as the escape hatch and
//! Cluster API data reach it.

use crate::kubeadm::stream::{Document, KubeadmConfig};
use crate::kubeadm::ApiVersion;
use crate::version::KubeVersion;

fn v(s: &str) -> KubeVersion {
    s.parse().unwrap()
}

const CAPI_INIT_V3: &str = "\
apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
nodeRegistration:
  kubeletExtraArgs:
    provider-id: aws:///i-1
    cloud-provider: external
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: v1.37.0
apiServer:
  timeoutForControlPlane: 20m0s
  extraArgs:
    service-account-issuer: https://issuer
    audit-log-path: /var/log/audit.log
controllerManager:
  extraArgs:
    cloud-provider: external
etcd:
  local:
    extraArgs:
      quota-backend-bytes: \"8589934592\"
";

#[test]
fn v1beta3_stream_for_1_37_becomes_what_kubeadm_config_migrate_writes() {
    let cfg = KubeadmConfig::parse(CAPI_INIT_V3, &v("v1.37.0")).unwrap();
    assert_eq!(cfg.conversions.len(), 2);
    assert_eq!(
        cfg.conversions[1],
        "document 2 (ClusterConfiguration kubeadm.k8s.io/v1beta3) converted to v1beta4 as \
         `kubeadm config migrate` does: kubeadm v1.37 no longer reads v1beta3"
    );
    let expected = "\
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  kubeletExtraArgs:
  - name: cloud-provider
    value: external
  - name: provider-id
    value: aws:///i-1
timeouts:
  controlPlaneComponentHealthCheck: 20m0s
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
etcd:
  local:
    extraArgs:
    - name: quota-backend-bytes
      value: '8589934592'
kubernetesVersion: v1.37.0
apiServer:
  extraArgs:
  - name: audit-log-path
    value: /var/log/audit.log
  - name: service-account-issuer
    value: https://issuer
controllerManager:
  extraArgs:
  - name: cloud-provider
    value: external
";
    let text = cfg.to_yaml().unwrap();
    assert_eq!(text, expected);
    // The result is valid v1beta4 for that kubeadm, and nothing is left to convert.
    let again = KubeadmConfig::parse(&text, &v("v1.37.0")).unwrap();
    assert!(again.conversions.is_empty());
    assert_eq!(again.docs, cfg.docs);
}

#[test]
fn kubeadm_before_1_37_keeps_v1beta3() {
    let cfg = KubeadmConfig::parse(CAPI_INIT_V3, &v("v1.36.3")).unwrap();
    assert!(cfg.conversions.is_empty());
    assert!(cfg.to_yaml().unwrap().contains("kubeadm.k8s.io/v1beta3"));
    let Document::Cluster(c) = &cfg.docs[1] else {
        panic!("{:?}", cfg.docs[1]);
    };
    assert_eq!(
        c.api_server
            .as_ref()
            .unwrap()
            .extra_args
            .as_ref()
            .unwrap()
            .version,
        ApiVersion::V1beta3
    );
}

#[test]
fn join_discovery_timeout_moves_to_timeouts() {
    let text = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    token: abcdef.0123456789abcdef\n    apiServerEndpoint: lb:6443\n    caCertHashes: [\"sha256:00\"]\n  timeout: 10m0s\nnodeRegistration:\n  kubeletExtraArgs:\n    node-labels: a=b\n";
    let cfg = KubeadmConfig::parse(text, &v("v1.37.1")).unwrap();
    let join = cfg.join().unwrap();
    assert_eq!(join.api_version, "kubeadm.k8s.io/v1beta4");
    assert_eq!(join.discovery.timeout, None);
    assert_eq!(
        join.timeouts.as_ref().unwrap().discovery.as_deref(),
        Some("10m0s")
    );
    assert!(cfg.pinning_warnings().unwrap().is_empty());
    let yaml = cfg.to_yaml().unwrap();
    assert!(
        yaml.contains("  kubeletExtraArgs:\n  - name: node-labels\n    value: a=b\n"),
        "{yaml}"
    );
}

#[test]
fn public_keys_ecdsa_becomes_the_encryption_algorithm() {
    let text = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nfeatureGates:\n  PublicKeysECDSA: true\n";
    let cfg = KubeadmConfig::parse(text, &v("v1.37.0")).unwrap();
    let yaml = cfg.to_yaml().unwrap();
    assert!(
        yaml.contains("encryptionAlgorithm: ECDSA-P256") && !yaml.contains("featureGates"),
        "{yaml}"
    );
    assert!(
        cfg.conversions[0].contains("PublicKeysECDSA: true became encryptionAlgorithm: ECDSA-P256"),
        "{:?}",
        cfg.conversions
    );
    let off = text.replace("true", "false") + "  RootlessControlPlane: true\n";
    let yaml = KubeadmConfig::parse(&off, &v("v1.37.0"))
        .unwrap()
        .to_yaml()
        .unwrap();
    assert!(
        yaml.contains("featureGates:\n  RootlessControlPlane: true\n")
            && !yaml.contains("PublicKeysECDSA")
            && !yaml.contains("encryptionAlgorithm"),
        "{yaml}"
    );
}

#[test]
fn v1beta4_with_the_removed_gate_is_refused_from_1_37() {
    let text = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nfeatureGates:\n  PublicKeysECDSA: true\n";
    KubeadmConfig::parse(text, &v("v1.36.3")).unwrap();
    let e = KubeadmConfig::parse(text, &v("v1.37.0"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("document 1 (ClusterConfiguration kubeadm.k8s.io/v1beta4): featureGates.PublicKeysECDSA")
            && e.contains("encryptionAlgorithm: ECDSA-P256"),
        "{e}"
    );
}

#[test]
fn control_plane_timeout_without_init_or_join_is_an_error() {
    let text = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\napiServer:\n  timeoutForControlPlane: 8m0s\n";
    let e = KubeadmConfig::parse(text, &v("v1.37.0"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("document 1 (ClusterConfiguration kubeadm.k8s.io/v1beta3): apiServer.timeoutForControlPlane")
            && e.contains("`kubeadm config migrate` with kubeadm v1.36 or write v1beta4"),
        "{e}"
    );
}

#[test]
fn document_numbers_count_empty_documents_and_v1_is_a_placeholder() {
    let text = "---\n---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n";
    let cfg = KubeadmConfig::parse(text, &v("v1.37.0")).unwrap();
    assert!(
        cfg.conversions[0].starts_with("document 3 (InitConfiguration kubeadm.k8s.io/v1beta3)"),
        "{:?}",
        cfg.conversions
    );
    let e = KubeadmConfig::parse(
        "apiVersion: kubeadm.k8s.io/v1\nkind: InitConfiguration\n",
        &v("v1.37.0"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(
            "document 1 (InitConfiguration kubeadm.k8s.io/v1): kubeadm.k8s.io/v1 is a placeholder"
        ) && e.contains("use v1beta4"),
        "{e}"
    );
}

#[test]
fn invalid_v1beta3_is_still_refused_before_converting() {
    let text = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\ntimeouts:\n  kubeletHealthCheck: 4m0s\n";
    let e = KubeadmConfig::parse(text, &v("v1.37.0"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("InitConfiguration.timeouts: unknown field in kubeadm.k8s.io/v1beta3"),
        "{e}"
    );
}
