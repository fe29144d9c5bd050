//! The containerd configuration kiln writes, checked with the real containerd (Debian's
//! `containerd` + `runc`) started by the test with its own root, state and socket: the config is
//! accepted (`containerd config dump` shows kiln's settings), the CRI plugin comes up, and the
//! preflight CRI check finds the socket.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kiln_firstboot::node::containerd::{render, wait_ready, Settings};
use kiln_firstboot::node::images::import_all;
use kiln_firstboot::node::preflight::{checks, Host, Outcome};

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn settings(dir: &Path) -> Settings {
    Settings {
        root: Some(dir.join("root")),
        state: Some(dir.join("state")),
        address: Some(dir.join("containerd.sock")),
        ..Settings::for_node("registry.k8s.io/pause:3.10")
    }
}

#[test]
fn real_containerd_accepts_the_config_and_serves_cri() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = dir.join("config.toml");
    std::fs::write(&config, render(&settings(dir))).unwrap();

    let dump = Command::new("containerd")
        .arg("--config")
        .arg(&config)
        .args(["config", "dump"])
        .output()
        .expect("containerd (apt-get install containerd runc)");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dumped: toml::Value = toml::from_str(&String::from_utf8_lossy(&dump.stdout)).unwrap();
    let cri = &dumped["plugins"]["io.containerd.grpc.v1.cri"];
    assert_eq!(
        cri["sandbox_image"].as_str(),
        Some("registry.k8s.io/pause:3.10")
    );
    assert_eq!(
        cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"].as_bool(),
        Some(true)
    );
    assert_eq!(cri["cni"]["bin_dir"].as_str(), Some("/opt/cni/bin"));

    let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
    let _daemon = Daemon(
        Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let socket = dir.join("containerd.sock");
    let ready = wait_ready(&socket, Duration::from_secs(30));
    assert!(
        ready.is_ok(),
        "{ready:?}\n{}",
        std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default()
    );

    let host = Host {
        root: "/".into(),
        cri_socket: Some(format!("unix://{}", socket.display())),
    };
    assert_eq!(checks::cri(&host).outcome, Outcome::Pass);

    // Pre-pulled images: verified against SHA256SUMS, imported where kubelet looks.
    let images = dir.join("images");
    std::fs::create_dir(&images).unwrap();
    let archive = oci_archive(dir, "registry.k8s.io/pause:3.10");
    std::fs::copy(&archive, images.join("pause.tar")).unwrap();
    let sum = sha256_hex(&std::fs::read(&archive).unwrap());
    std::fs::write(images.join("SHA256SUMS"), format!("{sum}  pause.tar\n")).unwrap();
    let imported = import_all(&images, &socket).unwrap();
    assert_eq!(imported.len(), 1);
    let listed = Command::new("ctr")
        .arg("--address")
        .arg(&socket)
        .args(["-n", "k8s.io", "images", "ls", "-q"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("registry.k8s.io/pause:3.10"), "{listed}");

    // A changed archive is refused before anything is imported.
    std::fs::write(
        images.join("SHA256SUMS"),
        format!("{}  pause.tar\n", "0".repeat(64)),
    )
    .unwrap();
    let err = import_all(&images, &socket).unwrap_err().to_string();
    assert!(err.contains("does not match SHA256SUMS"), "{err}");
}

#[test]
fn waiting_for_an_absent_containerd_times_out_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let err = wait_ready(&tmp.path().join("none.sock"), Duration::from_millis(500))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not ready after"), "{err}");
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data))
}

/// A minimal OCI image archive (one layer with one file) named `reference`.
fn oci_archive(dir: &Path, reference: &str) -> std::path::PathBuf {
    let layout = dir.join("oci");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let content = dir.join("layer-content");
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(content.join("hello.txt"), "baked\n").unwrap();
    let layer_tar = dir.join("layer.tar");
    tar(&layer_tar, &content, &["hello.txt"]);
    let blob = |bytes: Vec<u8>| {
        let digest = sha256_hex(&bytes);
        std::fs::write(blobs.join(&digest), &bytes).unwrap();
        (format!("sha256:{digest}"), bytes.len())
    };
    let (layer, layer_size) = blob(std::fs::read(&layer_tar).unwrap());
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer]}});
    let (config_digest, config_size) = blob(serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}]});
    let (manifest_digest, manifest_size) = blob(serde_json::to_vec(&manifest).unwrap());
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest, "size": manifest_size,
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"io.containerd.image.name": reference, "org.opencontainers.image.ref.name": "3.10"}}]});
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = dir.join("image.tar");
    tar(&archive, &layout, &["oci-layout", "index.json", "blobs"]);
    archive
}

fn tar(out: &Path, dir: &Path, entries: &[&str]) {
    let ok = Command::new("tar")
        .arg("-cf")
        .arg(out)
        .arg("-C")
        .arg(dir)
        .args(entries)
        .status()
        .unwrap();
    assert!(ok.success(), "tar failed");
}
