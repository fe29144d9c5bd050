//! The Debian root, built with mmdebstrap from the recipe's packages; the initrd is made able to
//! mount the read-only /usr filesystem.

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;

use super::plan::DiskPlan;
use kiln_core::command::{Run, Stream};

/// initramfs-tools hook adding the /usr filesystem's module to the initrd (the initrd mounts
/// /usr from the root's fstab before switching root).
const INITRAMFS_HOOK: &str = "#!/bin/sh
# kiln: the initrd mounts the read-only /usr image (erofs or squashfs) listed in /etc/fstab.
case \"$1\" in prereqs) exit 0;; esac
. /usr/share/initramfs-tools/hook-functions
manual_add_modules erofs squashfs
";

/// mmdebstrap hook: update-initramfs does nothing while packages are installed.
const NO_INITRAMFS: &str = "chroot \"$1\" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs && ln -s /bin/true \"$1/usr/sbin/update-initramfs\"";

/// mmdebstrap hook: update-initramfs back, and the initrd of every kernel made with the /usr hook.
const ONE_INITRAMFS: &str = "rm \"$1/usr/sbin/update-initramfs\" && chroot \"$1\" sh -c 'dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs && update-initramfs -c -k all'";

/// The apt sources line for the recipe's mirror; a local `file:` mirror is trusted unsigned
/// (the operator made it) and read as `copy:` (apt copies the packages into the new root, which
/// cannot see the host's paths).
pub fn sources_line(plan: &DiskPlan) -> String {
    let r = &plan.rootfs;
    let (options, mirror) = match r.mirror.strip_prefix("file:") {
        Some(path) => ("[trusted=yes] ", format!("copy:{path}")),
        None => ("", r.mirror.clone()),
    };
    format!(
        "deb {options}{} {} {}",
        mirror,
        r.suite,
        r.components.join(" ")
    )
}

/// Builds the root as a tarball at `target` (which must not exist yet). An unknown package fails here, in
/// the first seconds, with apt's message naming it.
pub fn build(plan: &DiskPlan, target: &Path, scratch: &Path) -> anyhow::Result<()> {
    let hook = scratch.join("initramfs-hook");
    std::fs::write(&hook, INITRAMFS_HOOK).context("writing the initramfs hook")?;
    let mut cmd = Command::new("mmdebstrap");
    // A tarball whatever the target's name (it is published from a temporary name).
    cmd.arg("--mode=root")
        .arg("--format=tar")
        // Another architecture's root runs its maintainer scripts under qemu-user (binfmt_misc).
        .arg(format!("--architectures={}", plan.arch.kube()))
        .arg(format!("--variant={}", plan.rootfs.variant))
        .arg(format!("--include={}", plan.rootfs.packages.join(",")))
        .arg(format!(
            "--setup-hook=mkdir -p \"$1/etc/initramfs-tools/hooks\" && install -m 0755 {} \"$1/etc/initramfs-tools/hooks/kiln-usr\"",
            hook.display()
        ))
        // The initrd is made once, at the end (the kernel's postinst and initramfs-tools' trigger
        // would make it twice: minutes each for another architecture, under qemu-user).
        .arg(format!("--essential-hook={NO_INITRAMFS}"))
        .arg(format!("--customize-hook={ONE_INITRAMFS}"))
        .arg("--customize-hook=rm -f \"$1\"/var/cache/apt/archives/*.deb \"$1\"/var/lib/apt/lists/*_Packages")
        .arg(&plan.rootfs.suite)
        .arg(target)
        .arg(sources_line(plan));
    // apt's reasons (an unknown package) may be far from the end of mmdebstrap's stderr.
    let picked = std::sync::Mutex::new(Vec::new());
    let progress = |stream: Stream, line: &str| {
        if stream == Stream::Stderr {
            eprintln!("  mmdebstrap: {}", kiln_core::redact::escape(line));
            if line.contains("Unable to locate package")
                || line.contains("has no installation candidate")
                || line.starts_with("E: ")
            {
                picked.lock().map(|mut p| p.push(line.to_owned())).ok();
            }
        }
    };
    let mut run = || -> anyhow::Result<()> {
        let done = Run::new(&mut cmd, "mmdebstrap")
            .log_lines(&progress)
            .output()?;
        let picked = picked.lock().map(|p| p.join("; ")).unwrap_or_default();
        if done.status.success() || picked.is_empty() {
            done.check("mmdebstrap")?;
            return Ok(());
        }
        anyhow::bail!("mmdebstrap: failed ({}): {picked}", done.status)
    };
    run().with_context(|| {
        format!(
            "building the Debian root from {} (check rootfs.packages and rootfs.mirror)",
            plan.rootfs.mirror
        )
    })
}
