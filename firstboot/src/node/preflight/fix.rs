//! What preflight repairs itself, as the kubeadm install page tells operators to do by hand:
//! IPv4 forwarding on, `overlay` and `br_netfilter` loaded, both persisted across reboots.

use anyhow::Context as _;
use std::path::Path;
use std::process::Command;

use kiln_core::command::Run;

use super::{Check, Host};

use kiln_core::kernel::{MODULES, SYSCTL};
pub use kiln_core::kernel::{MODULES_FILE, SYSCTL_FILE};

/// Repairs the failed checks kiln knows how to repair; returns what it did, or an error naming
/// the step.
pub fn apply(host: &Host, checks: &[Check]) -> anyhow::Result<Vec<String>> {
    let failed = |name: &str| checks.iter().any(|c| c.name == name && c.failed());
    let mut done = Vec::new();
    if failed("FileContent--proc-sys-net-ipv4-ip_forward") {
        write(host, "proc/sys/net/ipv4/ip_forward", "1\n", false)?;
        write(host, SYSCTL_FILE, SYSCTL, true)?;
        done.push(format!(
            "enabled net.ipv4.ip_forward and persisted it in /{SYSCTL_FILE}"
        ));
    }
    let modules: Vec<&str> = ["overlay", "br_netfilter"]
        .into_iter()
        .filter(|m| failed(&format!("KernelModule-{m}")))
        .collect();
    if !modules.is_empty() {
        if host.root == Path::new("/") {
            for m in &modules {
                let mut cmd = Command::new("modprobe");
                cmd.arg(m);
                Run::new(&mut cmd, format!("modprobe {m}"))
                    .run()
                    .map_err(|e| {
                        anyhow::anyhow!("{e} (the kernel lacks the module or modprobe is missing)")
                    })?;
            }
        }
        write(host, MODULES_FILE, MODULES, true)?;
        done.push(format!(
            "loaded {} and persisted them in /{MODULES_FILE}",
            modules.join(", ")
        ));
    }
    Ok(done)
}

fn write(host: &Host, rel: &str, text: &str, durable: bool) -> anyhow::Result<()> {
    let path = host.root.join(rel);
    if durable {
        kiln_core::fsutil::write_atomic(&path, text.as_bytes(), 0o644)?;
    } else {
        // /proc/sys files cannot be replaced, only written.
        std::fs::write(&path, text).with_context(|| path.display().to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{checks, Host};
    use super::*;

    #[test]
    fn forwarding_and_modules_are_fixed_and_persisted() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("proc/sys/net/ipv4")).unwrap();
        std::fs::write(tmp.path().join("proc/sys/net/ipv4/ip_forward"), "0\n").unwrap();
        let host = Host {
            root: tmp.path().to_owned(),
            cri_socket: None,
        };
        let mut found = vec![checks::ip_forward(&host)];
        found.extend(checks::modules(&host));
        let done = apply(&host, &found).unwrap();
        assert_eq!(done.len(), 2, "{done:?}");
        assert!(!checks::ip_forward(&host).failed());
        let modules = std::fs::read_to_string(tmp.path().join(MODULES_FILE)).unwrap();
        assert_eq!(modules, "overlay\nbr_netfilter\n");
        assert!(std::fs::read_to_string(tmp.path().join(SYSCTL_FILE))
            .unwrap()
            .contains("ip_forward = 1"));
    }
}
