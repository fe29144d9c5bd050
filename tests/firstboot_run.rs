//! `kiln-firstboot run` end to end on a scratch node: NoCloud seed directory with Cluster API
//! style bootstrap data → configure → preflight → runcmd calling a **stand-in kubeadm** (a shell
//! script that records its arguments; not the real kubeadm, which cannot be obtained here) →
//! Cluster API sentinel. The stand-in fails once: the run stops at `commands`, and the next run
//! resumes there. Tokens never reach the output or status.json.

#[path = "firstboot/mod.rs"]
mod firstboot;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use firstboot::*;

const TOKEN: &str = "9a08jv.c0izixklcxtmnze7";

/// The stand-in kubeadm: records argv, checks its --config exists, echoes the token like the
/// real one prints join commands, and fails while /etc/standin-fail-once exists (removing it).
const STANDIN_KUBEADM: &str = r#"#!/bin/sh
# Stand-in for kubeadm in tests: NOT the real kubeadm.
echo "$@" >> /var/log/kubeadm-standin.args
[ -f "$3" ] || { echo "config $3 missing" >&2; exit 3; }
echo "kubeadm join 10.0.0.10:6443 --token 9a08jv.c0izixklcxtmnze7"
if [ -f /etc/standin-fail-once ]; then rm /etc/standin-fail-once; echo "control plane not ready" >&2; exit 1; fi
exit 0
"#;

fn user_data() -> String {
    format!(
        "## template: jinja\n#cloud-config\nwrite_files:\n- path: /run/kubeadm/kubeadm.yaml\n  permissions: '0640'\n  content: |\n    apiVersion: kubeadm.k8s.io/v1beta3\n    kind: InitConfiguration\n    bootstrapTokens:\n    - token: \"{TOKEN}\"\n    nodeRegistration:\n      name: '{{{{ ds.meta_data.local_hostname }}}}'\nruncmd:\n- 'kubeadm init --config /run/kubeadm/kubeadm.yaml && echo success > /run/cluster-api/bootstrap-success.complete'\n"
    )
}

fn node(root: &Path) {
    seed_root(root);
    fake_node(root);
    fs::write(root.join("proc/sys/net/ipv4/ip_forward"), "1\n").unwrap();
    fs::create_dir_all(root.join("sys/module/br_netfilter")).unwrap();
    let seed = root.join("var/lib/cloud/seed/nocloud");
    fs::create_dir_all(&seed).unwrap();
    fs::write(seed.join("user-data"), user_data()).unwrap();
    fs::write(
        seed.join("meta-data"),
        "instance-id: i-0001\nlocal-hostname: cp-0\n",
    )
    .unwrap();
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::copy("/bin/busybox", root.join("bin/busybox")).expect("apt-get install busybox-static");
    for tool in ["sh", "echo", "rm", "mkdir", "cat"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(tool)).unwrap();
    }
    for dir in ["usr/bin", "var/log", "run/cluster-api"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    fs::write(root.join("usr/bin/kubeadm"), STANDIN_KUBEADM).unwrap();
    fs::set_permissions(
        root.join("usr/bin/kubeadm"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::write(root.join("etc/standin-fail-once"), "").unwrap();
    // The baked manifest names the kubeadm version (v1beta3 configs for 1.30).
    fs::create_dir_all(root.join("usr/share/kiln")).unwrap();
    fs::write(
        root.join("usr/share/kiln/manifest.json"),
        r#"{"kubernetes_version":"v1.30.4"}"#,
    )
    .unwrap();
}

#[test]
fn cluster_api_bootstrap_runs_once_and_resumes_after_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("node");
    node(&root);
    let r = root.to_str().unwrap();
    let args = [
        "run",
        "--root",
        r,
        "--sys-root",
        r,
        "--datasource",
        "nocloud",
        "--timeout",
        "5",
    ];

    let first = firstboot_unshared(&args, &[]);
    assert!(
        !first.ok,
        "first run should fail at the stand-in:\n{}",
        first.stderr
    );
    assert!(
        first
            .stdout
            .contains("kiln-firstboot: FAILED: step commands failed"),
        "{}",
        first.stdout
    );
    let status = fs::read_to_string(root.join("var/lib/kiln/status.json")).unwrap();
    assert!(status.contains("\"failed_step\": \"commands\""), "{status}");
    assert!(!root
        .join("run/cluster-api/bootstrap-success.complete")
        .exists());
    assert!(!root.join("var/lib/kiln/done").exists());

    let second = firstboot_unshared(&args, &[]);
    assert!(second.ok, "{}\n{}", second.stdout, second.stderr);
    assert!(
        second.stdout.contains("kiln-firstboot: node provisioned"),
        "{}",
        second.stdout
    );
    assert_eq!(
        fs::read_to_string(root.join("run/cluster-api/bootstrap-success.complete")).unwrap(),
        "success\n"
    );
    assert!(root.join("var/lib/kiln/done").exists());
    let recorded = fs::read_to_string(root.join("var/log/kubeadm-standin.args")).unwrap();
    assert_eq!(
        recorded,
        "init --config /run/kubeadm/kubeadm.yaml\ninit --config /run/kubeadm/kubeadm.yaml\n"
    );
    let config = fs::read_to_string(root.join("run/kubeadm/kubeadm.yaml")).unwrap();
    assert!(config.contains("name: 'cp-0'"), "{config}");

    let status = fs::read_to_string(root.join("var/lib/kiln/status.json")).unwrap();
    assert!(status.contains("\"result\": \"success\""), "{status}");
    for step in ["fetch", "configure", "preflight"] {
        assert!(
            status.contains(&format!(
                "\"name\": \"{step}\",\n      \"outcome\": \"skipped\""
            )),
            "{step} re-ran:\n{status}"
        );
    }
    let out = firstboot(&["status", "--root", r]);
    assert!(
        out.ok && out.stdout.contains("result: success"),
        "{}",
        out.stdout
    );
    for text in [
        &first.stdout,
        &first.stderr,
        &second.stdout,
        &second.stderr,
        &status,
    ] {
        assert!(!text.contains(TOKEN), "token leaked:\n{text}");
    }
    assert!(
        second.stderr.contains("--token <redacted>"),
        "{}",
        second.stderr
    );
}

#[test]
fn cluster_api_v1beta3_is_rewritten_in_v1beta4_for_kubeadm_1_37() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("node");
    node(&root);
    fs::remove_file(root.join("etc/standin-fail-once")).unwrap();
    fs::write(
        root.join("usr/share/kiln/manifest.json"),
        r#"{"kubernetes_version":"v1.37.0"}"#,
    )
    .unwrap();
    let r = root.to_str().unwrap();
    let run = firstboot_unshared(
        &[
            "run",
            "--root",
            r,
            "--sys-root",
            r,
            "--datasource",
            "nocloud",
            "--timeout",
            "5",
        ],
        &[],
    );
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("document 1 (InitConfiguration kubeadm.k8s.io/v1beta3) converted to v1beta4")
            && run
                .stderr
                .contains("rewrote Cluster API data in kubeadm.k8s.io/v1beta4"),
        "{}",
        run.stderr
    );
    let path = root.join("run/kubeadm/kubeadm.yaml");
    let config = fs::read_to_string(&path).unwrap();
    assert!(
        config.starts_with("---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n")
            && config.contains("  name: cp-0\n"),
        "{config}"
    );
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::read_to_string(root.join("var/log/kubeadm-standin.args")).unwrap(),
        "init --config /run/kubeadm/kubeadm.yaml\n"
    );
    assert!(!run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN));
}

#[test]
fn cluster_api_skew_stops_the_run_before_the_node_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("node");
    node(&root);
    let user_data = "#cloud-config\nwrite_files:\n- path: /run/kubeadm/kubeadm.yaml\n  content: |\n    apiVersion: kubeadm.k8s.io/v1beta3\n    kind: ClusterConfiguration\n    kubernetesVersion: v1.29.4\n- path: /etc/motd\n  content: changed\nruncmd:\n- 'kubeadm init --config /run/kubeadm/kubeadm.yaml'\n";
    fs::write(root.join("var/lib/cloud/seed/nocloud/user-data"), user_data).unwrap();
    let r = root.to_str().unwrap();
    let out = firstboot_unshared(
        &[
            "run",
            "--root",
            r,
            "--sys-root",
            r,
            "--datasource",
            "nocloud",
        ],
        &[],
    );
    assert!(!out.ok);
    let both = format!("{}{}", out.stdout, out.stderr);
    assert!(
        both.contains("step configure failed: checking the node config")
            && both.contains("v1.29.4 is older than the baked kubelet v1.30.4"),
        "{both}"
    );
    assert!(!root.join("etc/motd").exists(), "the node was changed");
    assert!(!root.join("var/log/kubeadm-standin.args").exists());
}

/// Runs that stay in the host's network namespace (they reach a control plane on 127.0.0.1)
/// probe the host's kubelet/control-plane ports in preflight: one such run at a time, or two
/// probes of the same port collide.
fn host_ports() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

const CA_HASH: &str = "sha256:0d8b5ae2c8e15c4f1f4cb2df04c4b0b2c1b1a4f6f0b6b0f0d1c9b1e0c3a5d7e9";

/// A worker with kiln's node config: the run renders the join config, waits for a control plane
/// that comes up late, runs the **stand-in kubeadm** (the real one cannot be obtained here),
/// which fails once — the join is reset and retried — and writes the sentinel.
#[test]
fn node_config_join_waits_for_the_control_plane_and_retries() {
    let _ports = host_ports();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("node");
    node(&root);
    fs::remove_file(root.join("etc/standin-fail-once")).unwrap();
    // Comes up well after the run reaches the kubeadm step.
    let port = serve_readyz_late(std::time::Duration::from_secs(6));
    let node_toml = format!(
        "role = \"join\"\ncontrol_plane_endpoint = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\nca_cert_hashes = [\"{CA_HASH}\"]\nnode_name = \"worker-1\"\n"
    );
    let seed = root.join("var/lib/cloud/seed/nocloud");
    let user_data = format!("#cloud-config\nwrite_files:\n- path: /etc/kiln/node.toml\n  permissions: '0600'\n  content: |\n{}", node_toml.lines().map(|l| format!("    {l}\n")).collect::<String>());
    fs::write(seed.join("user-data"), user_data).unwrap();
    fs::write(
        root.join("usr/share/kiln/manifest.json"),
        r#"{"kubernetes_version":"v1.31.2"}"#,
    )
    .unwrap();

    let record = tmp.path().join("kubeadm.record");
    let kubeadm = standin_kubeadm();
    let r = root.to_str().unwrap();
    let out = firstboot_with_env(
        &[
            "run",
            "--root",
            r,
            "--sys-root",
            r,
            "--datasource",
            "nocloud",
            "--timeout",
            "5",
            "--kubeadm",
            kubeadm.to_str().unwrap(),
            "--join-timeout",
            "30",
        ],
        &[
            ("KILN_STANDIN_RECORD", record.to_str().unwrap()),
            ("KILN_STANDIN_FAIL_TIMES", "1"),
        ],
    );
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        fs::read_to_string(root.join("run/cluster-api/bootstrap-success.complete")).unwrap(),
        "success\n"
    );
    let config = root.join("etc/kiln/kubeadm.yaml");
    assert_eq!(
        fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let rendered = fs::read_to_string(&config).unwrap();
    assert!(
        rendered.contains("kind: JoinConfiguration")
            && rendered.contains("apiVersion: kubeadm.k8s.io/v1beta4"),
        "{rendered}"
    );
    let recorded = fs::read_to_string(&record).unwrap();
    assert_eq!(
        recorded.matches("- join").count(),
        2,
        "join was not retried once:\n{recorded}"
    );
    assert!(
        recorded.contains("- reset"),
        "no kubeadm reset between attempts:\n{recorded}"
    );
    assert!(
        out.stderr.contains("control plane not ready yet"),
        "did not wait for the control plane:\n{}",
        out.stderr
    );
    let status = fs::read_to_string(root.join("var/lib/kiln/status.json")).unwrap();
    for text in [&out.stdout, &out.stderr, &status] {
        assert!(
            !text.contains(TOKEN) && !text.contains("0123456789abcdef"),
            "token leaked:\n{text}"
        );
    }
}

/// The runtime step with the real containerd: kiln writes containerd's config with kubeadm's
/// pause image for the baked version, waits for the CRI plugin, and imports the baked images.
#[test]
fn runtime_step_configures_containerd_and_imports_baked_images() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("node");
    node(&root);
    fs::remove_file(root.join("etc/standin-fail-once")).unwrap();
    fs::write(root.join("usr/bin/containerd"), "").unwrap();
    let images = root.join("usr/share/kiln/images");
    fs::create_dir_all(&images).unwrap();
    let archive = oci_archive(tmp.path(), "registry.k8s.io/pause:3.9");
    fs::copy(&archive, images.join("pause.tar")).unwrap();
    let sum = sha256_hex(&fs::read(&archive).unwrap());
    fs::write(images.join("SHA256SUMS"), format!("{sum}  pause.tar\n")).unwrap();
    let state = tmp.path().join("containerd");
    fs::create_dir(&state).unwrap();
    let daemon = start_containerd(&state);

    let r = root.to_str().unwrap();
    let socket = daemon.socket.to_str().unwrap().to_owned();
    let out = firstboot_unshared(
        &[
            "run",
            "--root",
            r,
            "--sys-root",
            r,
            "--datasource",
            "nocloud",
            "--containerd-address",
            &socket,
        ],
        &[],
    );
    // The runcmd stand-in succeeds at once (its fail-once marker was removed above).
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    let config = fs::read_to_string(root.join("etc/containerd/config.toml")).unwrap();
    assert!(
        config.contains("sandbox_image = \"registry.k8s.io/pause:3.9\""),
        "kubeadm 1.30 expects pause 3.9:\n{config}"
    );
    assert!(config.contains("SystemdCgroup = true"), "{config}");
    assert!(k8s_images(&daemon.socket).contains("registry.k8s.io/pause:3.9"));
    let status = fs::read_to_string(root.join("var/lib/kiln/status.json")).unwrap();
    assert!(
        status.contains("\"name\": \"runtime\",\n      \"outcome\": \"done\""),
        "{status}"
    );
}

/// An init node config with a CNI manifest: the stand-in kubeadm writes no admin.conf, so
/// post-init must stop with a reason instead of reporting a provisioned node.
#[test]
fn init_without_admin_conf_fails_post_init_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("node");
    node(&root);
    fs::create_dir_all(root.join("opt/kiln/cni")).unwrap();
    fs::write(
        root.join("opt/kiln/cni/cni.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: cni\n",
    )
    .unwrap();
    let user_data = format!(
        "#cloud-config\nwrite_files:\n- path: /etc/kiln/node.toml\n  permissions: '0600'\n  content: |\n    role = \"init\"\n    token = \"{TOKEN}\"\n    pod_subnets = [\"10.244.0.0/16\"]\n    cni_manifest = \"/opt/kiln/cni/cni.yaml\"\n"
    );
    fs::write(root.join("var/lib/cloud/seed/nocloud/user-data"), user_data).unwrap();
    let record = tmp.path().join("kubeadm.record");
    let kubeadm = standin_kubeadm();
    let r = root.to_str().unwrap();
    let out = firstboot_unshared(
        &[
            "run",
            "--root",
            r,
            "--sys-root",
            r,
            "--datasource",
            "nocloud",
            "--kubeadm",
            kubeadm.to_str().unwrap(),
        ],
        &[
            ("KILN_STANDIN_RECORD", record.to_str().unwrap()),
            ("KILN_STANDIN_KUBEADM_VERSION", "v1.30.4"),
        ],
    );
    assert!(!out.ok, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("step post-init failed: /etc/kubernetes/admin.conf is missing"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        fs::read_to_string(&record).unwrap().contains("- init"),
        "kubeadm init was not run"
    );
    assert!(!root
        .join("run/cluster-api/bootstrap-success.complete")
        .exists());
    let status = fs::read_to_string(root.join("var/lib/kiln/status.json")).unwrap();
    assert!(
        status.contains("\"failed_step\": \"post-init\"") && !status.contains(TOKEN),
        "{status}"
    );
}

/// A bad node config stops the run in `configure`, before the node is changed.
#[test]
fn bad_node_config_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("node");
    node(&root);
    let user_data = "#cloud-config\nwrite_files:\n- path: /etc/kiln/node.toml\n  content: |\n    role = \"join\"\n    control_plane_endpoint = \"10.0.0.10:6443\"\n- path: /etc/motd\n  content: changed\n";
    fs::write(root.join("var/lib/cloud/seed/nocloud/user-data"), user_data).unwrap();
    let r = root.to_str().unwrap();
    let out = firstboot_unshared(
        &[
            "run",
            "--root",
            r,
            "--sys-root",
            r,
            "--datasource",
            "nocloud",
        ],
        &[],
    );
    assert!(!out.ok);
    assert!(
        out.stdout
            .contains("step configure failed: checking the node config"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        !root.join("etc/motd").exists() && !root.join("etc/kiln/node.toml").exists(),
        "the node was changed"
    );
}

/// Crash test: the run is killed (SIGKILL) at increasing delays, so the kills land inside
/// different steps; every next run resumes, and the node converges to exactly what one clean run
/// produces, with no partial or temporary files left.
#[test]
fn killed_runs_converge_to_the_clean_result() {
    let _ports = host_ports();
    let tmp = tempfile::tempdir().unwrap();
    let port = serve_readyz_late(std::time::Duration::ZERO);
    let kubeadm = standin_kubeadm();
    let prepare = |name: &str| {
        let root = tmp.path().join(name);
        node(&root);
        fs::remove_file(root.join("etc/standin-fail-once")).unwrap();
        let node_toml = format!(
            "    role = \"join\"\n    control_plane_endpoint = \"127.0.0.1:{port}\"\n    token = \"{TOKEN}\"\n    ca_cert_hashes = [\"{CA_HASH}\"]\n    node_name = \"worker-1\"\n"
        );
        let user_data = format!("#cloud-config\nwrite_files:\n- path: /etc/kiln/node.toml\n  permissions: '0600'\n  content: |\n{node_toml}- path: /etc/app/a.conf\n  content: a\n- path: /etc/app/b.conf\n  content: b\n");
        fs::write(root.join("var/lib/cloud/seed/nocloud/user-data"), user_data).unwrap();
        root
    };
    let run = |root: &Path| {
        let r = root.to_str().unwrap().to_owned();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kiln-firstboot"));
        cmd.args([
            "run",
            "--root",
            &r,
            "--sys-root",
            &r,
            "--datasource",
            "nocloud",
            "--kubeadm",
            kubeadm.to_str().unwrap(),
        ])
        .env("KILN_STANDIN_RECORD", root.join("kubeadm.record"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        cmd
    };
    let reference = prepare("reference");
    assert!(run(&reference).status().unwrap().success());

    let crashed = prepare("crashed");
    let mut progress = std::collections::BTreeSet::new();
    for delay_ms in [0u64, 15, 30, 60, 90, 120, 160, 200, 250, 300, 400, 500] {
        let mut child = run(&crashed).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let state = fs::read_to_string(crashed.join("var/lib/kiln/state.json")).unwrap_or_default();
        progress.insert(state.matches("\",").count() + state.matches("\"\n").count());
    }
    assert!(
        run(&crashed).status().unwrap().success(),
        "the run after the crashes failed"
    );
    assert!(
        progress.len() >= 3,
        "kills did not land in different steps: {progress:?}"
    );

    for file in [
        "etc/kiln/kubeadm.yaml",
        "etc/kiln/node.toml",
        "etc/app/a.conf",
        "etc/app/b.conf",
        "run/cluster-api/bootstrap-success.complete",
    ] {
        assert_eq!(
            fs::read(crashed.join(file)).unwrap(),
            fs::read(reference.join(file)).unwrap(),
            "{file} differs"
        );
    }
    let status = fs::read_to_string(crashed.join("var/lib/kiln/status.json")).unwrap();
    assert!(status.contains("\"result\": \"success\""), "{status}");
    let leftovers: Vec<String> = snapshot(&crashed, &[])
        .into_keys()
        .filter(|p| {
            p.contains(".kiln-stage-")
                || p.contains(".kiln-partial")
                || p.ends_with("apply.journal")
                || p.ends_with("accounts.undo")
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}

/// A control-plane join carries the certificate key: it reaches kubeadm's config (0600) and
/// nothing else — not the log, not status.json.
#[test]
fn control_plane_join_keeps_the_certificate_key_secret() {
    let _ports = host_ports();
    const KEY: &str = "e6a2eb8581237ab72a4f494f30285ec12a9694d750b9785706a83bfcbbbd2204";
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("node");
    node(&root);
    let port = serve_readyz_late(std::time::Duration::ZERO);
    let node_toml = format!(
        "    role = \"control-plane\"\n    control_plane_endpoint = \"127.0.0.1:{port}\"\n    advertise_address = \"10.0.0.12\"\n    node_name = \"cp-2\"\n    token = \"{TOKEN}\"\n    ca_cert_hashes = [\"{CA_HASH}\"]\n    certificate_key = \"{KEY}\"\n"
    );
    let user_data = format!("#cloud-config\nwrite_files:\n- path: /etc/kiln/node.toml\n  permissions: '0600'\n  content: |\n{node_toml}");
    fs::write(root.join("var/lib/cloud/seed/nocloud/user-data"), user_data).unwrap();
    fs::write(
        root.join("usr/share/kiln/manifest.json"),
        r#"{"kubernetes_version":"v1.31.2"}"#,
    )
    .unwrap();
    let record = tmp.path().join("kubeadm.record");
    let kubeadm = standin_kubeadm();
    let r = root.to_str().unwrap();
    let out = firstboot_with_env(
        &[
            "run",
            "--root",
            r,
            "--sys-root",
            r,
            "--datasource",
            "nocloud",
            "--kubeadm",
            kubeadm.to_str().unwrap(),
        ],
        &[("KILN_STANDIN_RECORD", record.to_str().unwrap())],
    );
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    let rendered = fs::read_to_string(root.join("etc/kiln/kubeadm.yaml")).unwrap();
    assert!(
        rendered.contains(KEY) && rendered.contains("controlPlane:"),
        "{rendered}"
    );
    let status = fs::read_to_string(root.join("var/lib/kiln/status.json")).unwrap();
    for text in [&out.stdout, &out.stderr, &status] {
        assert!(
            !text.contains(KEY) && !text.contains(TOKEN),
            "secret leaked:\n{text}"
        );
    }
}

/// `admin_kubeconfig`: after init the admin kubeconfig is copied where the node config says, 0600.
#[test]
fn init_copies_the_admin_kubeconfig_where_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("node");
    node(&root);
    let user_data = format!(
        "#cloud-config\nwrite_files:\n- path: /etc/kiln/node.toml\n  permissions: '0600'\n  content: |\n    role = \"init\"\n    token = \"{TOKEN}\"\n    admin_kubeconfig = \"/root/.kube/config\"\n"
    );
    fs::write(root.join("var/lib/cloud/seed/nocloud/user-data"), user_data).unwrap();
    // What the real kubeadm init writes; the stand-in does not.
    fs::create_dir_all(root.join("etc/kubernetes")).unwrap();
    fs::write(
        root.join("etc/kubernetes/admin.conf"),
        "apiVersion: v1\nkind: Config\n",
    )
    .unwrap();
    let kubeadm = standin_kubeadm();
    let record = tmp.path().join("kubeadm.record");
    let r = root.to_str().unwrap();
    let out = firstboot_unshared(
        &[
            "run",
            "--root",
            r,
            "--sys-root",
            r,
            "--datasource",
            "nocloud",
            "--kubeadm",
            kubeadm.to_str().unwrap(),
        ],
        &[
            ("KILN_STANDIN_RECORD", record.to_str().unwrap()),
            ("KILN_STANDIN_KUBEADM_VERSION", "v1.30.4"),
        ],
    );
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    let copied = root.join("root/.kube/config");
    assert_eq!(
        fs::read_to_string(&copied).unwrap(),
        "apiVersion: v1\nkind: Config\n"
    );
    assert_eq!(
        fs::metadata(&copied).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(root
        .join("run/cluster-api/bootstrap-success.complete")
        .exists());
}
