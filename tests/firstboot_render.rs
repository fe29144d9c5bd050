//! `kiln-firstboot render`: every example in configs/ renders for kubeadm v1.30 (v1beta3), v1.31
//! (v1beta4) and v1.37 (v1beta3 converted) and passes the stand-in kubeadm's strict decoding
//! (tests/standins: not the real kubeadm); the version comes from the baked manifest; secrets reach stdout only; bad input
//! is one error line and a non-zero exit.

#[path = "firstboot/mod.rs"]
mod firstboot;

use std::path::{Path, PathBuf};
use std::process::Command;

use firstboot::*;

const VERSIONS: [(&str, u32); 2] = [("v1.30.4", 30), ("v1.31.2", 31)];

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

/// Every renderable input of configs/: (example, flags).
fn examples() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(configs())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let name = f.file_name().unwrap().to_str().unwrap().to_owned();
            let path = f.to_str().unwrap().to_owned();
            let flags = match name.as_str() {
                "node.toml" => vec!["--node-config".into(), path],
                "metadata.json" => continue,
                _ => vec![
                    "--user-data".into(),
                    path,
                    "--metadata".into(),
                    configs()
                        .join("cluster-api/metadata.json")
                        .to_str()
                        .unwrap()
                        .into(),
                ],
            };
            out.push((
                format!("{}/{name}", dir.file_name().unwrap().to_str().unwrap()),
                flags,
            ));
        }
    }
    out
}

fn render(flags: &[String], version: &str, root: &Path) -> Out {
    let mut args = vec![
        "render",
        "--kubeadm-version",
        version,
        "--root",
        root.to_str().unwrap(),
    ];
    args.extend(flags.iter().map(String::as_str));
    firstboot(&args)
}

#[test]
fn every_example_renders_and_passes_the_standin_kubeadm() {
    let root = tempfile::tempdir().unwrap();
    let examples = examples();
    assert!(examples.len() >= 12, "{examples:?}");
    for (name, flags) in &examples {
        for (version, minor) in VERSIONS {
            let out = render(flags, version, root.path());
            if !out.ok {
                // Cluster API data is used as given: v1beta4 data needs kubeadm >= 1.31.
                assert!(
                    name.starts_with("cluster-api/")
                        && minor < 31
                        && out.stderr.contains("v1beta4 needs kubeadm >= v1.31"),
                    "{name} for {version}: {}",
                    out.stderr
                );
                continue;
            }
            let docs = kiln_standins::decode(&out.stdout, minor).unwrap_or_else(|e| {
                panic!(
                    "{name} for {version}: stand-in kubeadm refused: {e}\n{}",
                    out.stdout
                )
            });
            assert!(!docs.is_empty(), "{name}");
            let kinds: Vec<&str> = docs.iter().map(|d| d.kind.as_str()).collect();
            assert!(
                kinds.contains(&"InitConfiguration")
                    || kinds.contains(&"JoinConfiguration")
                    || kinds.contains(&"ClusterConfiguration"),
                "{name}: {kinds:?}"
            );
        }
    }
}

/// kubeadm 1.37 reads no v1beta3: the v1beta3 examples (the escape hatch, Cluster API join data)
/// come out converted to v1beta4, which the stand-in kubeadm as 1.37 decodes; the v1.31 Cluster
/// API init data is a version skew for that kubeadm, refused by name.
#[test]
fn every_example_renders_for_kubeadm_1_37_without_v1beta3() {
    let root = tempfile::tempdir().unwrap();
    for (name, flags) in &examples() {
        let out = render(flags, "v1.37.0", root.path());
        if !out.ok {
            assert!(
                name == "cluster-api/init.yaml"
                    && out.stderr.contains(
                        "ClusterConfiguration.kubernetesVersion: v1.31.2 cannot be deployed by kubeadm v1.37.0"
                    ),
                "{name}: {}",
                out.stderr
            );
            continue;
        }
        assert!(!out.stdout.contains("v1beta3"), "{name}:\n{}", out.stdout);
        kiln_standins::decode(&out.stdout, 37).unwrap_or_else(|e| {
            panic!(
                "{name} for v1.37.0: stand-in kubeadm refused: {e}\n{}",
                out.stdout
            )
        });
        if name.starts_with("escape-hatch/") || name == "cluster-api/join.yaml" {
            assert!(
                out.stderr
                    .contains("converted to v1beta4 as `kubeadm config migrate` does"),
                "{name}: {}",
                out.stderr
            );
        }
    }
}

#[test]
fn user_data_delivers_the_same_node_config() {
    let root = tempfile::tempdir().unwrap();
    for dir in [
        "ha-init",
        "worker-join",
        "control-plane-join",
        "read-only-usr",
    ] {
        let node = vec![
            "--node-config".to_owned(),
            configs()
                .join(dir)
                .join("node.toml")
                .to_str()
                .unwrap()
                .to_owned(),
        ];
        let ud = std::fs::read_dir(configs().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("user-data")
            })
            .unwrap();
        let ud = vec!["--user-data".to_owned(), ud.to_str().unwrap().to_owned()];
        let (a, b) = (
            render(&node, "v1.31.2", root.path()),
            render(&ud, "v1.31.2", root.path()),
        );
        assert!(a.ok && b.ok, "{dir}: {} {}", a.stderr, b.stderr);
        assert_eq!(a.stdout, b.stdout, "{dir}");
    }
}

#[test]
fn examples_carry_what_they_promise() {
    let root = tempfile::tempdir().unwrap();
    let get = |example: &str, version: &str| {
        let flags = vec![
            "--node-config".to_owned(),
            configs().join(example).to_str().unwrap().to_owned(),
        ];
        let out = render(&flags, version, root.path());
        assert!(out.ok, "{example}: {}", out.stderr);
        out.stdout
    };
    let ro = get("read-only-usr/node.toml", "v1.31.2");
    assert!(ro.contains("  - name: volume-plugin-dir\n    value: /opt/libexec/kubernetes/kubelet-plugins/volume/exec/"), "{ro}");
    assert!(ro.contains("  - name: flex-volume-plugin-dir\n    value: /opt/libexec/kubernetes/kubelet-plugins/volume/exec/"), "{ro}");
    assert!(ro.contains("cgroupDriver: systemd"), "{ro}");
    let ds = get("dual-stack/node.toml", "v1.30.4");
    assert!(
        ds.contains("podSubnet: 10.244.0.0/16,fd00:10:244::/56")
            && ds.contains("node-ip: 10.0.0.31,fd00::31"),
        "{ds}"
    );
    let etcd = get("external-etcd/node.toml", "v1.31.2");
    assert!(
        etcd.contains("  external:\n    endpoints:\n    - https://10.0.0.11:2379")
            && etcd.contains("certificatesDir: /etc/kubernetes/pki"),
        "{etcd}"
    );
    let ha3 = get("ha-init/node.toml", "v1.30.4");
    assert!(
        ha3.contains("timeoutForControlPlane: 8m0s") && ha3.contains("ttl: 0s"),
        "{ha3}"
    );
    let ha4 = get("ha-init/node.toml", "v1.31.2");
    assert!(
        ha4.contains("controlPlaneComponentHealthCheck: 8m0s")
            && !ha4.contains("timeoutForControlPlane"),
        "{ha4}"
    );
    let cp = get("control-plane-join/node.toml", "v1.31.2");
    assert!(
        cp.contains("controlPlane:\n  localAPIEndpoint:\n    advertiseAddress: 10.0.0.12"),
        "{cp}"
    );
}

#[test]
fn kubeadm_version_comes_from_the_baked_manifest() {
    let root = tempfile::tempdir().unwrap();
    let manifest = root.path().join("usr/share/kiln");
    std::fs::create_dir_all(&manifest).unwrap();
    std::fs::write(
        manifest.join("manifest.json"),
        r#"{"kubernetes_version": "v1.30.4", "other": 1}"#,
    )
    .unwrap();
    let node = configs().join("single-node/node.toml");
    let out = firstboot(&[
        "render",
        "--root",
        root.path().to_str().unwrap(),
        "--node-config",
        node.to_str().unwrap(),
    ]);
    assert!(
        out.ok && out.stdout.contains("kubeadm.k8s.io/v1beta3"),
        "{}",
        out.stderr
    );
    // Without --node-config or --user-data, the root's own /etc/kiln/node.toml is used.
    std::fs::create_dir_all(root.path().join("etc/kiln")).unwrap();
    std::fs::copy(
        configs().join("worker-join/node.toml"),
        root.path().join("etc/kiln/node.toml"),
    )
    .unwrap();
    let out = firstboot(&["render", "--root", root.path().to_str().unwrap()]);
    assert!(
        out.ok && out.stdout.contains("kind: JoinConfiguration"),
        "{}",
        out.stderr
    );
}

#[test]
fn secrets_reach_stdout_only() {
    let root = tempfile::tempdir().unwrap();
    let user_data = configs().join("ha-init/user-data.yaml");
    let out = firstboot(&[
        "render",
        "--kubeadm-version",
        "v1.31.2",
        "--root",
        root.path().to_str().unwrap(),
        "--user-data",
        user_data.to_str().unwrap(),
    ]);
    assert!(out.ok, "{}", out.stderr);
    for secret in [
        "0123456789abcdef",
        "e6a2eb8581237ab72a4f494f30285ec12a9694d750b9785706a83bfcbbbd2204",
    ] {
        assert!(out.stdout.contains(secret));
        assert!(!out.stderr.contains(secret), "{}", out.stderr);
    }
}

/// One `error:` line containing `needle`, a non-zero exit, nothing on stdout.
fn rejected(name: &str, node_toml: &str, hatch: Option<&str>, version: &str, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node.toml");
    let mut toml = node_toml.to_owned();
    if let Some(text) = hatch {
        // A node path: found in the root.
        std::fs::create_dir_all(dir.path().join("etc/kiln")).unwrap();
        std::fs::write(dir.path().join("etc/kiln/kubeadm.yaml"), text).unwrap();
        toml.push_str("kubeadm_config = \"/etc/kiln/kubeadm.yaml\"\n");
    }
    std::fs::write(&node, toml).unwrap();
    let out = firstboot(&[
        "render",
        "--kubeadm-version",
        version,
        "--root",
        dir.path().to_str().unwrap(),
        "--node-config",
        node.to_str().unwrap(),
    ]);
    assert!(!out.ok, "{name}: accepted:\n{}", out.stdout);
    assert!(out.stdout.is_empty(), "{name}");
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .collect();
    assert_eq!(errors.len(), 1, "{name}: {}", out.stderr);
    assert!(
        errors[0].contains(needle),
        "{name}: {:?} lacks {needle:?}",
        errors[0]
    );
}

#[test]
fn bad_input_is_one_clear_error() {
    let join = "role = \"join\"\ncontrol_plane_endpoint = \"lb:6443\"\n";
    let token = "token = \"abcdef.0123456789abcdef\"\n";
    let cases: Vec<(&str, String, Option<&str>, &str, &str)> = vec![
        ("missing role", "node_name = \"a\"\n".into(), None, "v1.31.2", "role: missing"),
        ("join without token", join.into(), None, "v1.31.2", "token: missing"),
        ("join without CA hash", format!("{join}{token}"), None, "v1.31.2", "ca_cert_hashes: missing; a join must pin the cluster CA"),
        ("malformed CIDR", "role = \"init\"\npod_subnets = [\"10.244.0.0/16\", \"fd00::/129\"]\n".into(), None, "v1.31.2", "pod_subnets[1]: \"fd00::/129\" is not a CIDR"),
        ("two IPv4 ranges", "role = \"init\"\nservice_subnets = [\"10.96.0.0/12\", \"10.112.0.0/12\"]\n".into(), None, "v1.31.2", "service_subnets: two ranges must be one IPv4 and one IPv6"),
        ("unknown field", "role = \"init\"\npod_subnet = \"10.0.0.0/8\"\n".into(), None, "v1.31.2", "line 2: unknown field `pod_subnet`"),
        (
            "v1beta4-only field with kubeadm 1.30",
            "role = \"init\"\n".into(),
            Some("apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\ntimeouts:\n  controlPlaneComponentHealthCheck: 8m0s\n"),
            "v1.30.4",
            "InitConfiguration.timeouts: unknown field in kubeadm.k8s.io/v1beta3 (it is new in v1beta4, which kubeadm reads from v1.31)",
        ),
        (
            "v1beta4 config with kubeadm 1.30",
            "role = \"init\"\n".into(),
            Some("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n"),
            "v1.30.4",
            "v1beta4 needs kubeadm >= v1.31",
        ),
        (
            "unknown kubeadm field",
            "role = \"init\"\n".into(),
            Some("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetwork:\n  podSubnet: 10.0.0.0/8\n"),
            "v1.31.2",
            "strict decoding error: unknown field `network`",
        ),
        (
            "escape-hatch join without CA pin",
            "role = \"join\"\n".into(),
            Some("apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    token: abcdef.0123456789abcdef\n    apiServerEndpoint: lb:6443\n"),
            "v1.31.2",
            "caCertHashes: missing",
        ),
        ("kubeadm too old", "role = \"init\"\n".into(), None, "v1.21.0", "kubeadm v1.21.0 is too old"),
    ];
    for (name, toml, hatch, version, needle) in cases {
        rejected(name, &toml, hatch, version, needle);
    }
}

#[test]
fn the_standin_kubeadm_process_accepts_rendered_configs() {
    let dir = tempfile::tempdir().unwrap();
    let kubeadm = standin_kubeadm();
    let cases: [(&str, &[&str]); 2] = [
        ("ha-init/node.toml", &["init", "--upload-certs"]),
        ("worker-join/node.toml", &["join"]),
    ];
    for (example, verb) in cases {
        let node = configs().join(example);
        let out = render(
            &["--node-config".into(), node.to_str().unwrap().into()],
            "v1.30.4",
            dir.path(),
        );
        assert!(out.ok, "{example}: {}", out.stderr);
        let cfg = dir.path().join("kubeadm.yaml");
        std::fs::write(&cfg, &out.stdout).unwrap();
        let run = Command::new(&kubeadm)
            .args(verb)
            .args(["--config", cfg.to_str().unwrap()])
            .env("KILN_STANDIN_KUBEADM_VERSION", "v1.30.4")
            .env("KILN_STANDIN_RECORD", dir.path().join("record.yaml"))
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let record = std::fs::read_to_string(dir.path().join("record.yaml")).unwrap();
    assert_eq!(record.matches("argv:").count(), 2, "{record}");
}
