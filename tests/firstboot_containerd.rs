//! The containerd configuration kiln writes, checked with the real containerd (Debian's
//! `containerd` + `runc`) started by the test with its own root, state and socket: the config is
//! accepted (`containerd config dump` shows kiln's settings), the CRI plugin comes up, the
//! preflight CRI check finds the socket, and baked image archives are verified and imported (the
//! sandbox image pinned).

#[path = "firstboot/mod.rs"]
mod firstboot;

use std::process::Command;
use std::time::Duration;

use firstboot::*;
use kiln_firstboot::node::containerd::wait_ready;
use kiln_firstboot::node::images::import_all;
use kiln_firstboot::node::preflight::{checks, Host, Outcome};

#[test]
fn real_containerd_accepts_the_config_and_serves_cri() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let daemon = start_containerd(dir);

    let dump = Command::new("containerd")
        .arg("--config")
        .arg(dir.join("config.toml"))
        .args(["config", "dump"])
        .output()
        .unwrap();
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

    let host = Host {
        root: "/".into(),
        cri_socket: Some(format!("unix://{}", daemon.socket.display())),
    };
    assert_eq!(checks::cri(&host).outcome, Outcome::Pass);

    // Pre-pulled images: verified against SHA256SUMS, imported where kubelet looks.
    let images = dir.join("images");
    std::fs::create_dir(&images).unwrap();
    let archive = oci_archive(dir, "registry.k8s.io/pause:3.10");
    std::fs::copy(&archive, images.join("pause.tar")).unwrap();
    let sum = sha256_hex(&std::fs::read(&archive).unwrap());
    std::fs::write(images.join("SHA256SUMS"), format!("{sum}  pause.tar\n")).unwrap();
    let sandbox = Some("registry.k8s.io/pause:3.10");
    assert_eq!(
        import_all(&images, &daemon.socket, sandbox).unwrap().len(),
        1
    );
    assert!(k8s_images(&daemon.socket).contains("registry.k8s.io/pause:3.10"));
    // The sandbox image is pinned so kubelet's image garbage collection keeps it.
    let listed = Command::new("ctr")
        .arg("--address")
        .arg(&daemon.socket)
        .args([
            "-n",
            "k8s.io",
            "images",
            "ls",
            "name==registry.k8s.io/pause:3.10",
        ])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("io.cri-containerd.pinned=pinned"),
        "{listed}"
    );
    // A sandbox image that was not baked is left alone (no error).
    assert_eq!(
        import_all(&images, &daemon.socket, Some("registry.k8s.io/pause:9.9"))
            .unwrap()
            .len(),
        1
    );

    // A changed archive is refused before anything is imported.
    std::fs::write(
        images.join("SHA256SUMS"),
        format!("{}  pause.tar\n", "0".repeat(64)),
    )
    .unwrap();
    let err = import_all(&images, &daemon.socket, sandbox)
        .unwrap_err()
        .to_string();
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
