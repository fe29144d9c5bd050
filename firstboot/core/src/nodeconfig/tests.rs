//! Tests of node.toml parsing, validation and the role rules.

use super::*;

const HASH: &str = "sha256:7c9b1e2f30c2a7d6b3a4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a";

fn err(text: &str) -> String {
    NodeConfig::parse(text).unwrap_err().to_string()
}

#[test]
fn minimal_init_and_join() {
    let c = NodeConfig::parse("role = \"init\"\n").unwrap();
    assert_eq!(c.role, Role::Init);
    assert_eq!(c.cri_socket(), CONTAINERD_SOCKET);
    let j = NodeConfig::parse(&format!(
        "role = \"join\"\ncontrol_plane_endpoint = \"lb:6443\"\ntoken = \"abcdef.0123456789abcdef\"\nca_cert_hashes = [\"{HASH}\"]\n"
    ))
    .unwrap();
    assert!(j.warnings().is_empty());
    assert!(!format!("{j:?}").contains("0123456789abcdef"));
}

#[test]
fn errors_name_the_field() {
    assert_eq!(
        err("node_name = \"a\"\n"),
        "role: missing; set init, join or control-plane"
    );
    assert!(
        err("role = \"init\"\npod_subnets = [\"10.0.0.0/16\", \"10.0.0.0/33\"]\n")
            .starts_with("pod_subnets[1]: \"10.0.0.0/33\" is not a CIDR")
    );
    assert!(err("role = \"init\"\nrol = 1\n").starts_with("line 2: unknown field `rol`"));
    assert!(err("role = \"join\"\ncontrol_plane_endpoint = \"lb\"\n").starts_with("token: missing"));
    assert!(err(
        "role = \"join\"\ncontrol_plane_endpoint = \"lb\"\ntoken = \"abcdef.0123456789abcdef\"\n"
    )
    .starts_with("ca_cert_hashes: missing"));
    assert!(err("role = \"control-plane\"\ncontrol_plane_endpoint = \"lb\"\ntoken = \"abcdef.0123456789abcdef\"\nunsafe_skip_ca_verification = true\n")
        .starts_with("certificate_key: missing"));
    assert!(err("role = \"join\"\npod_subnets = [\"10.0.0.0/16\"]\n")
        .starts_with("pod_subnets: only for role init"));
    assert!(err(
        "role = \"init\"\nkubeadm_config = \"/k.yaml\"\ntoken = \"abcdef.0123456789abcdef\"\n"
    )
    .starts_with("token: not allowed with kubeadm_config"));
}

#[test]
fn secrets_never_in_errors() {
    let e = err("role = \"init\"\ncertificate_key = \"topsecretvalue\"\n");
    assert!(
        e.starts_with("certificate_key:") && !e.contains("topsecretvalue"),
        "{e}"
    );
    let e = err("role = \"init\"\ntoken = \"topsecretvalue\"\n");
    assert!(
        e.starts_with("token:") && !e.contains("topsecretvalue"),
        "{e}"
    );
    let e = err("role = \"init\"\ntoken = \"abcdef.0123456789abcdef\n");
    assert!(!e.contains("0123456789abcdef"), "{e}");
}

#[test]
fn decode_errors_name_the_field_but_never_quote_the_value() {
    let key = "ab".repeat(32);
    let e = err("role = \"join\"\nunsafe_skip_ca_verification = \"abcdef.0123456789abcdef\"\n");
    assert!(
        e.starts_with("line 2: unsafe_skip_ca_verification: invalid type: string \"…\"")
            && !e.contains("0123456789abcdef"),
        "{e}"
    );
    let e = err(&format!("role = \"init\"\n\npod_subnets = \"{key}\"\n"));
    assert!(
        e.starts_with("line 3: pod_subnets: invalid type: string \"…\", expected a sequence")
            && !e.contains(&key),
        "{e}"
    );
}

#[test]
fn unsafe_skip_warns() {
    let c = NodeConfig::parse("role = \"join\"\ncontrol_plane_endpoint = \"lb\"\ntoken = \"abcdef.0123456789abcdef\"\nunsafe_skip_ca_verification = true\n").unwrap();
    assert!(c.warnings()[0].starts_with("unsafe_skip_ca_verification"));
}
