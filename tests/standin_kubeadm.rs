//! The stand-in kubeadm as a process (it is not the real kubeadm): argv and config recorded,
//! strict decoding errors with a non-zero exit, flags kubeadm refuses next to --config, and
//! `KILN_STANDIN_FAIL_TIMES`; its version (variable or executable trailer), `config images list`
//! and the kubeadm 1.37 config rules.

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

/// Runs the stand-in kubeadm at `exe` with only `env` set of the stand-in's variables.
fn run_at(exe: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    for attempt in 0.. {
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .env_remove("KILN_STANDIN_KUBEADM_VERSION")
            .env_remove("KILN_STANDIN_IMAGES_MODE")
            .envs(env.iter().copied());
        match cmd.output() {
            Ok(out) => {
                return (
                    out.status.success(),
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                )
            }
            // A copy just written may still be open in a child another test thread forked.
            Err(e) if e.raw_os_error() == Some(26) && attempt < 50 => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => panic!("running {}: {e}", exe.display()),
        }
    }
    unreachable!()
}

/// `kubeadm ARGS` with the stand-in pretending to be `version`.
fn run(version: &str, args: &[&str]) -> (bool, String, String) {
    run_at(
        Path::new(env!("CARGO_BIN_EXE_kubeadm")),
        args,
        &[("KILN_STANDIN_KUBEADM_VERSION", version)],
    )
}

/// `(coredns, etcd, pause)` of `version`, read from the table independently of the stand-in.
fn tsv_row(version: &str) -> (String, String, String) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firstboot/core/data/kubeadm-images.tsv");
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text
        .lines()
        .find(|l| l.split('\t').next() == Some(version))
        .unwrap_or_else(|| panic!("{version} not in {}", path.display()));
    let cols: Vec<&str> = line.split('\t').collect();
    (cols[1].into(), cols[2].into(), cols[3].into())
}

fn expected_images(version: &str, repo: &str) -> Vec<String> {
    let (coredns, etcd, pause) = tsv_row(version);
    let dns = match repo {
        "registry.k8s.io" => format!("{repo}/coredns/coredns:{coredns}"),
        _ => format!("{repo}/coredns:{coredns}"),
    };
    let mut out: Vec<String> = [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
    ]
    .iter()
    .map(|n| format!("{repo}/{n}:{version}"))
    .collect();
    out.extend([
        dns,
        format!("{repo}/pause:{pause}"),
        format!("{repo}/etcd:{etcd}"),
    ]);
    out
}

#[test]
fn version_comes_from_the_trailer_of_its_executable() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("kubeadm");
    let bytes = std::fs::read(env!("CARGO_BIN_EXE_kubeadm")).unwrap();
    std::fs::write(&exe, kiln_standins::with_version_trailer(bytes, "v1.36.3")).unwrap();
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (ok, out, err) = run_at(&exe, &["version", "-o", "short"], &[]);
    assert!(ok, "{err}");
    assert_eq!(out, "v1.36.3\n");
    let (ok, out, err) = run_at(
        &exe,
        &[
            "config",
            "images",
            "list",
            "--kubernetes-version",
            "v1.36.3",
        ],
        &[],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        expected_images("v1.36.3", "registry.k8s.io")
    );
    // The variable still wins; without either the stand-in is v1.31.2.
    let (_, out, _) = run_at(
        &exe,
        &["version", "-o", "short"],
        &[("KILN_STANDIN_KUBEADM_VERSION", "v1.35.7")],
    );
    assert_eq!(out, "v1.35.7\n");
    let (_, out, _) = run_at(
        Path::new(env!("CARGO_BIN_EXE_kubeadm")),
        &["version", "-o", "short"],
        &[],
    );
    assert_eq!(out, "v1.31.2\n");
}

#[test]
fn images_list_text_and_json_from_the_table() {
    // (stand-in version, requested version): its own minor and the one before.
    for (own, requested) in [
        ("v1.29.0", "v1.29.0"),
        ("v1.33.6", "v1.33.6"),
        ("v1.37.0-rc.0", "v1.36.3"),
    ] {
        let want = expected_images(requested, "registry.k8s.io");
        let (ok, out, err) = run(
            own,
            &[
                "config",
                "images",
                "list",
                "--kubernetes-version",
                requested,
            ],
        );
        assert!(ok, "{own} {requested}: {err}");
        assert_eq!(out.lines().collect::<Vec<_>>(), want, "{own} {requested}");
        for json in [
            &["-o", "json"][..],
            &["--output=json"],
            &["--output", "json"],
        ] {
            let version = format!("--kubernetes-version={requested}");
            let mut args = vec!["config", "images", "list", version.as_str()];
            args.extend_from_slice(json);
            let (ok, out, err) = run(own, &args);
            assert!(ok, "{err}");
            let items: Vec<String> = want.iter().map(|i| format!("        \"{i}\"")).collect();
            assert_eq!(
                out,
                format!("{{\n    \"kind\": \"Images\",\n    \"apiVersion\": \"output.kubeadm.k8s.io/v1alpha3\",\n    \"images\": [\n{}\n    ]\n}}\n", items.join(",\n"))
            );
        }
    }
    let (ok, out, err) = run(
        "v1.33.6",
        &[
            "config",
            "images",
            "list",
            "--kubernetes-version",
            "v1.33.6",
            "--image-repository",
            "mirror.example/k8s",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "mirror.example/k8s/kube-apiserver:v1.33.6\nmirror.example/k8s/kube-controller-manager:v1.33.6\n\
         mirror.example/k8s/kube-scheduler:v1.33.6\nmirror.example/k8s/kube-proxy:v1.33.6\n\
         mirror.example/k8s/coredns:v1.12.0\nmirror.example/k8s/pause:3.10\nmirror.example/k8s/etcd:3.5.24-0\n"
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        expected_images("v1.33.6", "mirror.example/k8s")
    );
}

#[test]
fn images_list_for_a_release_in_no_table() {
    use kiln_standins::images::{FUTURE_COREDNS, FUTURE_ETCD, FUTURE_PAUSE, FUTURE_VERSION};
    let (ok, out, err) = run(
        FUTURE_VERSION,
        &[
            "config",
            "images",
            "list",
            "--kubernetes-version",
            FUTURE_VERSION,
        ],
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "registry.k8s.io/kube-apiserver:v1.99.0");
    assert_eq!(
        lines[4..],
        [
            format!("registry.k8s.io/coredns/coredns:{FUTURE_COREDNS}"),
            format!("registry.k8s.io/pause:{FUTURE_PAUSE}"),
            format!("registry.k8s.io/etcd:{FUTURE_ETCD}"),
        ]
    );
}

#[test]
fn images_list_refuses_skew_and_a_missing_version() {
    let list = |own: &str, extra: &[&str]| {
        let mut args = vec!["config", "images", "list"];
        args.extend(extra);
        run(own, &args)
    };
    let (ok, _, err) = list("v1.36.3", &["--kubernetes-version", "v1.34.2"]);
    assert!(
        !ok && err.starts_with("this version of kubeadm only supports deploying clusters with the control plane version >= 1.35.0. Current version: v1.34.2"),
        "{err}"
    );
    let (ok, _, err) = list("v1.36.3", &["--kubernetes-version", "v1.37.0"]);
    assert!(
        !ok && err.starts_with("the specified version is newer than kubeadm"),
        "{err}"
    );
    let (ok, out, err) = list("v1.36.3", &[]);
    assert!(
        !ok && out.is_empty()
            && err.starts_with("unable to get URL \"https://dl.k8s.io/release/stable-1.txt\""),
        "{err}"
    );
    let (ok, _, err) = list(
        "v1.36.3",
        &["--kubernetes-version", "v1.36.3", "--config", "x"],
    );
    assert!(!ok && err.contains("unknown flag: --config"), "{err}");
}

#[test]
fn images_list_misbehaves_on_request() {
    let args = [
        "config",
        "images",
        "list",
        "--kubernetes-version",
        "v1.31.2",
    ];
    let exe = Path::new(env!("CARGO_BIN_EXE_kubeadm"));
    let (ok, out, _) = run_at(exe, &args, &[("KILN_STANDIN_IMAGES_MODE", "garbage")]);
    assert!(
        ok && !out.contains("registry.k8s.io") && !out.is_empty(),
        "{out}"
    );
    let (ok, _, err) = run_at(exe, &args, &[("KILN_STANDIN_IMAGES_MODE", "fail")]);
    assert!(
        !ok && err.contains("KILN_STANDIN_IMAGES_MODE=fail"),
        "{err}"
    );
    let mut child = Command::new(exe)
        .args(args)
        .env("KILN_STANDIN_IMAGES_MODE", "hang")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "hang mode returned");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn kubeadm_1_37_refuses_v1beta3_v1_and_the_ecdsa_gate() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    let validate = |text: &str, version: &str| {
        std::fs::write(&cfg, text).unwrap();
        run(
            version,
            &["config", "validate", "--config", cfg.to_str().unwrap()],
        )
    };
    let v3 = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n";
    assert!(validate(v3, "v1.36.3").0);
    let (ok, _, err) = validate(v3, "v1.37.0");
    assert!(
        !ok && err.starts_with("no kind \"ClusterConfiguration\" is registered for version \"kubeadm.k8s.io/v1beta3\" in scheme"),
        "{err}"
    );
    let (ok, _, err) = validate(
        "apiVersion: kubeadm.k8s.io/v1\nkind: InitConfiguration\n",
        "v1.37.0",
    );
    assert!(!ok && err.contains("placeholder"), "{err}");
    let gate = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nfeatureGates:\n  PublicKeysECDSA: true\n";
    assert!(validate(gate, "v1.36.3").0);
    let (ok, _, err) = validate(gate, "v1.37.0");
    assert!(
        !ok && err.contains("PublicKeysECDSA is not a valid feature name"),
        "{err}"
    );
}
