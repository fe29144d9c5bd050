//! containerd for kubelet on the node: the pause image kubeadm expects and waiting until its CRI
//! plugin answers. The configuration itself is kiln-core's ([`kiln_core::containerd`]), shared
//! with `kiln build`, which writes it into disk images.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub use kiln_core::containerd::{
    render, sandbox_image_of, seed_cni_bin_dir, Settings, CNI_BIN_DIR, CONFIG_PATH, SERVICE_DROPIN,
    SERVICE_DROPIN_PATH, SOCKET,
};
use kiln_core::retry::{self, Policy};

/// The pause image kubeadm expects for `version`: the node's kubeadm binary is asked
/// (`kubeadm config images list`), kiln's table of kubeadm's images answers when that fails.
/// containerd must use the same sandbox image or an offline init hangs.
pub fn kubeadm_pause_image(
    kubeadm: &std::path::Path,
    version: &kiln_core::version::KubeVersion,
) -> Result<String, kiln_core::Error> {
    use kiln_core::images;
    let asked = images::kubeadm::ask(kubeadm, version, None).map(|list| {
        images::image_named(&list, "pause")
            .expect("checked by images::kubeadm::parse")
            .to_owned()
    });
    asked.or_else(|asking| {
        let table = images::pause_image(version, None);
        match &table {
            Ok(pause) => tracing::warn!(%asking, %pause, "kubeadm did not list its images; using kiln's table"),
            Err(e) => return Err(kiln_core::Error::invalid(format!("{asking}; {e}"))),
        }
        table
    })
}

/// Waits until containerd's socket `address` exists (containerd creates it once its plugins are
/// loaded), polling the path without running anything, until `timeout`.
pub fn wait_socket(address: &Path, timeout: Duration) -> anyhow::Result<()> {
    let policy = Policy::every(Duration::from_millis(50), Instant::now() + timeout);
    let polled = policy.poll(
        |_| match address.exists() {
            true => Ok(()),
            false => Err(()),
        },
        |_, _| {},
    );
    polled.map_err(|_| {
        anyhow::anyhow!(
            "containerd's socket {} did not appear within {timeout:?} (see containerd's log)",
            address.display()
        )
    })
}

/// How often [`wait_ready`] asks containerd.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Waits until containerd at `address` answers and its CRI plugin is loaded (`ctr plugins ls`),
/// polling until `timeout`.
pub fn wait_ready(address: &Path, timeout: Duration) -> anyhow::Result<()> {
    let policy = Policy::every(POLL_INTERVAL, Instant::now() + timeout);
    let polled = policy.poll(
        |_| match cri_plugin_status(address)? {
            true => Ok(()),
            false => Err("the CRI plugin is not loaded (see containerd's log)".to_owned()),
        },
        |_, _| {},
    );
    match polled {
        Ok(()) => Ok(()),
        Err(retry::Error::GaveUp { last, .. }) => anyhow::bail!(
            "containerd at {} not ready after {timeout:?}: {last}",
            address.display()
        ),
    }
}

fn cri_plugin_status(address: &Path) -> Result<bool, String> {
    let mut cmd = Command::new("ctr");
    cmd.arg("--address").arg(address).args(["plugins", "ls"]);
    let out = kiln_core::command::Run::new(&mut cmd, "ctr plugins ls")
        .run()
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().any(|l| {
        l.starts_with("io.containerd.grpc.v1")
            && l.split_whitespace().nth(1) == Some("cri")
            && l.trim_end().ends_with("ok")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_image_comes_from_kubeadm_else_kilns_image_table() {
        let dir = tempfile::tempdir().unwrap();
        let kubeadm = dir.path().join("kubeadm");
        let pause = |v: &str| kubeadm_pause_image(&kubeadm, &v.parse().unwrap());
        // No kubeadm to ask: the table answers for the releases it knows.
        assert_eq!(pause("v1.30.4").unwrap(), "registry.k8s.io/pause:3.9");
        assert_eq!(pause("v1.36.3").unwrap(), "registry.k8s.io/pause:3.10.2");
        let err = pause("v1.99.0").unwrap_err().to_string();
        assert!(
            err.contains("cannot run it") && err.contains("kubeadm-images.tsv"),
            "{err}"
        );
        // A kubeadm (a stand-in script, not the real kubeadm) is the authority.
        let answer = r#"{"kind":"Images","apiVersion":"output.kubeadm.k8s.io/v1alpha3","images":["registry.k8s.io/kube-proxy:v1.99.0","registry.k8s.io/pause:3.99"]}"#;
        std::fs::write(&kubeadm, format!("#!/bin/sh\necho '{answer}'\n")).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&kubeadm, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(pause("v1.99.0").unwrap(), "registry.k8s.io/pause:3.99");
    }
}
