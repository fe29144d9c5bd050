//! A disk image's node started without waits first boot does not need (issue #13): containerd
//! not ordered after network.target (it serves its socket without a network; kubelet, which
//! needs one, waits for network-online.target itself) and without its `modprobe overlay` exec,
//! the kernel settings kubeadm asks for (forwarding, `overlay`, `br_netfilter`) written where
//! systemd applies them early in boot, so neither containerd nor kiln-firstboot's preflight runs
//! `modprobe`. systemd drop-ins cannot remove an ordering, so containerd's unit is overridden in
//! /etc by the image's own unit rewritten ([`early_unit`]).

use std::path::Path;

use anyhow::Context as _;
use kiln_core::kernel;

/// Where the image's packages put containerd's unit (Debian: /lib is /usr/lib).
const PACKAGED_UNIT: &str = "usr/lib/systemd/system/containerd.service";
/// The override systemd prefers to it.
const OVERRIDE_UNIT: &str = "etc/systemd/system/containerd.service";

/// Writes the kernel settings and, when the root has a packaged containerd unit, its early
/// override into `root`; whether containerd's unit was overridden.
pub fn arrange(root: &Path) -> anyhow::Result<bool> {
    for (rel, text) in [
        (kernel::SYSCTL_FILE, kernel::SYSCTL),
        (kernel::MODULES_FILE, kernel::MODULES),
    ] {
        kiln_core::fsutil::write_atomic(&root.join(rel), text.as_bytes(), 0o644)
            .with_context(|| format!("writing /{rel} in the root"))?;
    }
    let packaged = root.join(PACKAGED_UNIT);
    let text = match std::fs::read_to_string(&packaged) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("reading {}", packaged.display())),
    };
    kiln_core::fsutil::write_atomic(
        &root.join(OVERRIDE_UNIT),
        early_unit(&text).as_bytes(),
        0o644,
    )
    .with_context(|| format!("writing /{OVERRIDE_UNIT} in the root"))?;
    Ok(true)
}

/// containerd's unit `text` without `network.target` in its `After=` lines and without its
/// `ExecStartPre=` of `modprobe overlay` (systemd-modules-load loads it from
/// [`kernel::MODULES_FILE`]); everything else as packaged.
pub fn early_unit(text: &str) -> String {
    let mut out = String::from(
        "# Written by kiln: the packaged unit (/lib/systemd/system/containerd.service) without\n\
         # After=network.target and without its modprobe (/etc/modules-load.d loads overlay).\n",
    );
    for line in text.lines() {
        if line.starts_with("ExecStartPre=") && line.contains("modprobe overlay") {
            continue;
        }
        match line.strip_prefix("After=") {
            Some(units) => {
                let kept: Vec<&str> = units
                    .split_whitespace()
                    .filter(|u| *u != "network.target")
                    .collect();
                if !kept.is_empty() {
                    out.push_str(&format!("After={}\n", kept.join(" ")));
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian 12's containerd.service (package containerd 1.6.20), comments left out.
    const DEBIAN: &str = "[Unit]\nDescription=containerd container runtime\n\
        Documentation=https://containerd.io\nAfter=network.target local-fs.target\n\n\
        [Service]\nExecStartPre=-/sbin/modprobe overlay\nExecStart=/usr/bin/containerd\n\n\
        Type=notify\nDelegate=yes\nKillMode=process\nRestart=always\n\n\
        [Install]\nWantedBy=multi-user.target\n";

    #[test]
    fn containerd_loses_only_network_ordering_and_modprobe() {
        let unit = early_unit(DEBIAN);
        assert!(unit.contains("\nAfter=local-fs.target\n"), "{unit}");
        assert!(!unit.contains("network.target\n") && !unit.contains("=-/sbin/modprobe"));
        assert!(unit.starts_with("# Written by kiln"), "{unit}");
        for kept in [
            "ExecStart=/usr/bin/containerd\n",
            "Type=notify\n",
            "Delegate=yes\n",
            "WantedBy=multi-user.target\n",
        ] {
            assert!(unit.contains(kept), "{kept}: {unit}");
        }
        let only_network = early_unit("[Unit]\nAfter=network.target\n");
        assert!(
            !only_network.lines().any(|l| l.starts_with("After=")),
            "{only_network}"
        );
    }

    #[test]
    fn kernel_settings_always_unit_only_where_packaged() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        assert!(!arrange(r).unwrap());
        assert_eq!(
            std::fs::read_to_string(r.join(kernel::MODULES_FILE)).unwrap(),
            "overlay\nbr_netfilter\n"
        );
        assert!(std::fs::read_to_string(r.join(kernel::SYSCTL_FILE))
            .unwrap()
            .contains("net.ipv4.ip_forward = 1"));
        assert!(!r.join(OVERRIDE_UNIT).exists());
        std::fs::create_dir_all(r.join("usr/lib/systemd/system")).unwrap();
        std::fs::write(r.join(PACKAGED_UNIT), DEBIAN).unwrap();
        assert!(arrange(r).unwrap());
        let unit = std::fs::read_to_string(r.join(OVERRIDE_UNIT)).unwrap();
        assert_eq!(unit, early_unit(DEBIAN));
    }
}
