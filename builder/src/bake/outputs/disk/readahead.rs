//! First boot's binaries read ahead (issue #13): on a disk image /usr is erofs under dm-verity,
//! so the first read of every block is decompressed and hashed, and under a slow CPU loading
//! containerd (48 MB) took seconds after its start. /usr is mounted by the initrd, so a unit
//! with no dependencies reads containerd, kiln-firstboot, kubeadm and the rest into the page
//! cache while systemd is still bringing up devices (seconds before basic.target, after which
//! containerd and kiln-firstboot start).

use std::path::Path;

use anyhow::Context as _;

/// The unit's name.
const UNIT: &str = "kiln-readahead.service";
/// The binaries read, in the order first boot runs them (each listed only if the image has it).
const BINARIES: [&str; 8] = [
    "usr/bin/containerd",
    "usr/bin/kiln-firstboot",
    "usr/bin/ctr",
    "usr/bin/kubeadm",
    "usr/bin/containerd-shim-runc-v2",
    "usr/sbin/runc",
    "usr/bin/runc",
    "usr/bin/kubelet",
];

/// Writes the read-ahead unit into `root`'s /etc and starts it with sysinit.target, for the
/// [`BINARIES`] `root` has; how many it reads (none: no unit).
pub fn arrange(root: &Path) -> anyhow::Result<usize> {
    let present: Vec<&str> = BINARIES
        .iter()
        .copied()
        .filter(|rel| root.join(rel).is_file())
        .collect();
    if present.is_empty() {
        return Ok(0);
    }
    let units = root.join("etc/systemd/system");
    let path = units.join(UNIT);
    kiln_core::fsutil::write_atomic(&path, unit(&present).as_bytes(), 0o644)
        .with_context(|| format!("writing {}", path.display()))?;
    let wants = units.join("sysinit.target.wants");
    std::fs::create_dir_all(&wants)?;
    let link = wants.join(UNIT);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(format!("/etc/systemd/system/{UNIT}"), &link)
        .with_context(|| format!("enabling {}", link.display()))?;
    Ok(present.len())
}

/// The unit reading `binaries` (paths relative to the root) with `cat` into nothing.
fn unit(binaries: &[&str]) -> String {
    let files: Vec<String> = binaries.iter().map(|rel| format!("/{rel}")).collect();
    format!(
        "# Written by kiln: reads first boot's binaries into the page cache while devices come up\n\
         # (/usr is erofs under dm-verity: each block's first read is decompressed and hashed).\n\
         [Unit]\n\
         Description=kiln: read first boot's binaries ahead\n\
         DefaultDependencies=no\n\n\
         [Service]\n\
         Type=exec\n\
         ExecStart=-/usr/bin/cat {}\n\
         StandardOutput=null\n\
         Nice=5\n",
        files.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_reads_what_the_image_has_and_starts_with_sysinit() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        assert_eq!(arrange(r).unwrap(), 0);
        assert!(!r.join("etc/systemd/system").join(UNIT).exists());
        for rel in ["usr/bin/containerd", "usr/sbin/runc"] {
            std::fs::create_dir_all(r.join(rel).parent().unwrap()).unwrap();
            std::fs::write(r.join(rel), "bin").unwrap();
        }
        assert_eq!(arrange(r).unwrap(), 2);
        assert_eq!(arrange(r).unwrap(), 2, "a second run replaces the link");
        let text = std::fs::read_to_string(r.join("etc/systemd/system").join(UNIT)).unwrap();
        assert!(
            text.contains("ExecStart=-/usr/bin/cat /usr/bin/containerd /usr/sbin/runc\n"),
            "{text}"
        );
        assert!(text.contains("DefaultDependencies=no\n"), "{text}");
        let link = r.join("etc/systemd/system/sysinit.target.wants").join(UNIT);
        assert_eq!(
            std::fs::read_link(link).unwrap(),
            Path::new("/etc/systemd/system/kiln-readahead.service")
        );
    }
}
