//! Tests of [`super::render`] and [`super::super::adjust`].

use super::*;
use crate::nodeconfig::NodeConfig;

const HASH: &str = "sha256:7c9b1e2f30c2a7d6b3a4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a";
const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn render_text(node: &str, kubeadm: &str, hatch: Option<&str>) -> Result<String, Error> {
    let node = NodeConfig::parse(node).unwrap();
    render(&node, &kubeadm.parse().unwrap(), hatch)?.to_yaml()
}

#[test]
fn init_v1beta4_single_node() {
    let text = render_text(
        "role = \"init\"\ntoken = \"abcdef.0123456789abcdef\"\nuntaint = true\npod_subnets = [\"10.244.0.0/16\"]\ncontrol_plane_timeout = \"8m0s\"\n",
        "v1.31.2",
        None,
    )
    .unwrap();
    let expected = "\
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: abcdef.0123456789abcdef
nodeRegistration:
  criSocket: unix:///var/run/containerd/containerd.sock
  taints: []
timeouts:
  controlPlaneComponentHealthCheck: 8m0s
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
networking:
  podSubnet: 10.244.0.0/16
kubernetesVersion: v1.31.2
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
";
    assert_eq!(text, expected);
}

#[test]
fn init_v1beta3_read_only_usr_dual_stack() {
    let text = render_text(
        "role = \"init\"\nkubernetes_version = \"v1.30.2\"\nread_only_usr = true\ncontrol_plane_endpoint = \"lb:6443\"\npod_subnets = [\"10.244.0.0/16\", \"fd00:10:244::/56\"]\nservice_subnets = [\"10.96.0.0/12\", \"fd00:10:96::/112\"]\ncontrol_plane_timeout = \"8m0s\"\n[kubelet_extra_args]\nnode-ip = \"10.0.0.10,fd00::10\"\n",
        "v1.30.4",
        None,
    )
    .unwrap();
    for needle in [
        "apiVersion: kubeadm.k8s.io/v1beta3",
        "  kubeletExtraArgs:\n    node-ip: 10.0.0.10,fd00::10\n    volume-plugin-dir: /opt/libexec/kubernetes/kubelet-plugins/volume/exec/\n",
        "controllerManager:\n  extraArgs:\n    flex-volume-plugin-dir: /opt/libexec/kubernetes/kubelet-plugins/volume/exec/\n",
        "podSubnet: 10.244.0.0/16,fd00:10:244::/56",
        "serviceSubnet: 10.96.0.0/12,fd00:10:96::/112",
        "apiServer:\n  timeoutForControlPlane: 8m0s\n",
        "kubernetesVersion: v1.30.2",
        "controlPlaneEndpoint: lb:6443",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
    assert!(!text.contains("timeouts"), "{text}");
}

#[test]
fn join_control_plane_both_versions() {
    let node = format!(
        "role = \"control-plane\"\ncontrol_plane_endpoint = \"lb:6443\"\ntoken = \"abcdef.0123456789abcdef\"\nca_cert_hashes = [\"{HASH}\"]\ncertificate_key = \"{KEY}\"\nadvertise_address = \"10.0.0.12\"\ndiscovery_timeout = \"10m0s\"\n[[taints]]\nkey = \"dedicated\"\nvalue = \"infra\"\neffect = \"NoSchedule\"\n"
    );
    let v4 = render_text(&node, "v1.31.2", None).unwrap();
    for needle in [
        "kind: JoinConfiguration",
        "  taints:\n  - key: node-role.kubernetes.io/control-plane\n    effect: NoSchedule\n  - key: dedicated\n",
        "discovery:\n  bootstrapToken:\n    token: abcdef.0123456789abcdef\n    apiServerEndpoint: lb:6443\n    caCertHashes:\n",
        "controlPlane:\n  localAPIEndpoint:\n    advertiseAddress: 10.0.0.12\n  certificateKey: 0123",
        "timeouts:\n  discovery: 10m0s\n",
    ] {
        assert!(v4.contains(needle), "{needle:?} not in\n{v4}");
    }
    let v3 = render_text(&node, "v1.30.4", None).unwrap();
    assert!(
        v3.contains("  timeout: 10m0s\n") && !v3.contains("timeouts"),
        "{v3}"
    );
}

#[test]
fn version_skew_is_checked() {
    let e = render_text(
        "role = \"init\"\nkubernetes_version = \"v1.32.0\"\n",
        "v1.31.2",
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("kubernetes_version: v1.32.0 cannot be deployed by kubeadm v1.31.2"),
        "{e}"
    );
    let e = render_text(
        "role = \"init\"\nkubernetes_version = \"v1.30.0\"\n",
        "v1.31.2",
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("older than the baked kubelet v1.31.2"),
        "{e}"
    );
    render_text(
        "role = \"init\"\nkubernetes_version = \"v1.31.0\"\n",
        "v1.31.2",
        None,
    )
    .unwrap();
}

#[test]
fn escape_hatch_gets_kiln_adjustments() {
    let given = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nnodeRegistration:\n  name: cp-1\n---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 200\n";
    let text = render_text(
        "role = \"init\"\nkubeadm_config = \"/etc/kiln/kubeadm.yaml\"\nread_only_usr = true\nuntaint = true\n",
        "v1.31.2",
        Some(given),
    )
    .unwrap();
    for needle in [
        "  name: cp-1\n  criSocket: unix:///var/run/containerd/containerd.sock\n  taints: []\n  kubeletExtraArgs:\n  - name: volume-plugin-dir\n",
        "maxPods: 200\ncgroupDriver: systemd\n",
        "kind: ClusterConfiguration\ncontrollerManager:\n  extraArgs:\n  - name: flex-volume-plugin-dir\n",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
}

#[test]
fn escape_hatch_conflicts_are_errors() {
    let hatch = "role = \"init\"\nkubeadm_config = \"/k.yaml\"\n";
    let e = render_text(
        hatch,
        "v1.31.2",
        Some("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: cgroupfs\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("cgroupDriver"), "{e}");
    let e = render_text(
        hatch,
        "v1.31.2",
        Some("apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery: {}\n"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("has a JoinConfiguration"), "{e}");
    let e = render_text(
        hatch,
        "v1.30.1",
        Some("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n"),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("v1beta4 needs kubeadm >= v1.31"),
        "{e}"
    );
}

#[test]
fn escape_hatch_in_v1beta3_is_converted_for_1_37_then_adjusted() {
    let given = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nnodeRegistration:\n  kubeletExtraArgs:\n    node-ip: 10.0.0.10\n---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: v1.37.0\napiServer:\n  timeoutForControlPlane: 8m0s\ncontrollerManager:\n  extraArgs:\n    bind-address: 0.0.0.0\n";
    let node = "role = \"init\"\nkubeadm_config = \"/k.yaml\"\nread_only_usr = true\n";
    let text = render_text(node, "v1.37.0", Some(given)).unwrap();
    let expected = "\
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  criSocket: unix:///var/run/containerd/containerd.sock
  kubeletExtraArgs:
  - name: node-ip
    value: 10.0.0.10
  - name: volume-plugin-dir
    value: /opt/libexec/kubernetes/kubelet-plugins/volume/exec/
timeouts:
  controlPlaneComponentHealthCheck: 8m0s
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.0
controllerManager:
  extraArgs:
  - name: bind-address
    value: 0.0.0.0
  - name: flex-volume-plugin-dir
    value: /opt/libexec/kubernetes/kubelet-plugins/volume/exec/
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
";
    assert_eq!(text, expected);
    // The same stream for kubeadm 1.36 stays v1beta3 and is adjusted in v1beta3's forms.
    let old = render_text(node, "v1.36.3", Some(&given.replace("v1.37.0", "v1.36.3"))).unwrap();
    assert!(
        old.contains("apiVersion: kubeadm.k8s.io/v1beta3")
            && old.contains("    node-ip: 10.0.0.10\n    volume-plugin-dir: ")
            && old.contains("  timeoutForControlPlane: 8m0s\n"),
        "{old}"
    );
}

#[test]
fn escape_hatch_control_plane_version_is_checked() {
    let node = "role = \"init\"\nkubeadm_config = \"/k.yaml\"\n";
    let stream = |v: &str| {
        format!("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: {v}\n")
    };
    let e = render_text(node, "v1.36.3", Some(&stream("v1.35.7"))).unwrap_err();
    assert!(
        e.to_string().starts_with("kubeadm_config: ClusterConfiguration.kubernetesVersion: v1.35.7 is older than the baked kubelet v1.36.3"),
        "{e}"
    );
    let e = render_text(node, "v1.36.3", Some(&stream("v1.37.0"))).unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot be deployed by kubeadm v1.36.3"),
        "{e}"
    );
    render_text(node, "v1.36.3", Some(&stream("v1.36.0"))).unwrap();
    render_text(node, "v1.36.3", Some(&stream("stable-1.36"))).unwrap();
}
