//! The containerd configuration kiln writes, checked with the real containerd (Debian's
//! `containerd` + `runc`) started by the test with its own root, state and socket: the config is
//! accepted (`containerd config dump` shows kiln's settings), the CRI plugin comes up, and the
//! preflight CRI check finds the socket.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kiln_firstboot::node::containerd::{render, wait_ready, Settings};
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
}

#[test]
fn waiting_for_an_absent_containerd_times_out_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let err = wait_ready(&tmp.path().join("none.sock"), Duration::from_millis(500))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not ready after"), "{err}");
}
