//! The stand-in kubeadm as a process (it is not the real kubeadm): argv and config recorded,
//! strict decoding errors with a non-zero exit, flags kubeadm refuses next to --config, and
//! `KILN_STANDIN_FAIL_TIMES`.

use std::path::Path;
use std::process::{Command, Output};

fn kubeadm(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubeadm"))
        .args(args)
        .env("KILN_STANDIN_RECORD", dir.join("record.yaml"))
        .envs(env.iter().copied())
        .output()
        .expect("running the stand-in kubeadm")
}

const JOIN: &str = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    token: abcdef.0123456789abcdef\n    apiServerEndpoint: lb:6443\n    unsafeSkipCAVerification: true\n";

#[test]
fn records_and_fails_on_purpose() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("join.yaml");
    std::fs::write(&cfg, JOIN).unwrap();
    let args = ["join", "--config", cfg.to_str().unwrap(), "-v=5"];
    for attempt in 0..3 {
        let out = kubeadm(dir.path(), &args, &[("KILN_STANDIN_FAIL_TIMES", "2")]);
        assert_eq!(out.status.success(), attempt == 2, "{out:?}");
    }
    let record = std::fs::read_to_string(dir.path().join("record.yaml")).unwrap();
    let docs: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(&record)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[2]["argv"][0].as_str(), Some("join"));
    assert_eq!(docs[2]["config"].as_str(), Some(JOIN));
}

#[test]
fn refuses_bad_configs_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    let run = |text: &str, args: &[&str], version: &str| {
        std::fs::write(&cfg, text).unwrap();
        let mut all = args.to_vec();
        all.extend(["--config", cfg.to_str().unwrap()]);
        let out = kubeadm(
            dir.path(),
            &all,
            &[("KILN_STANDIN_KUBEADM_VERSION", version)],
        );
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(
        &JOIN.replace("discovery:", "discovry:"),
        &["join"],
        "v1.31.2",
    );
    assert!(
        !ok && err.contains("unknown field \"discovry\"") && err.contains("stand-in"),
        "{err}"
    );
    let (ok, err) = run(JOIN, &["join"], "v1.30.4");
    assert!(!ok && err.contains("v1beta4"), "{err}");
    let (ok, err) = run(JOIN, &["join", "--upload-certs"], "v1.31.2");
    assert!(!ok && err.contains("[upload-certs]"), "{err}");
    let (ok, err) = run(JOIN, &["join", "--token", "x"], "v1.31.2");
    assert!(
        !ok && err.contains("can not mix '--config' with arguments [token]"),
        "{err}"
    );
    let (ok, err) = run(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n",
        &["join"],
        "v1.31.2",
    );
    assert!(!ok && err.contains("no JoinConfiguration"), "{err}");
    let (ok, err) = run(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n",
        &["config", "validate"],
        "v1.31.2",
    );
    assert!(ok, "{err}");
    let out = kubeadm(
        dir.path(),
        &["version", "-o", "short"],
        &[("KILN_STANDIN_KUBEADM_VERSION", "v1.30.4")],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v1.30.4\n");
}
