//! The external tools the disk build needs, checked up front (they are run with
//! `kiln_core::command::Run`).

use anyhow::bail;
use kiln_core::command::which;

use super::plan::DiskPlan;

/// Host programs the build runs, with the Debian package that provides each (those of the
/// output formats are checked by [`super::formats::check_tools`]).
pub const REQUIRED: &[(&str, &str)] = &[
    ("mmdebstrap", "mmdebstrap"),
    ("mkfs.erofs", "erofs-utils"),
    ("mksquashfs", "squashfs-tools"),
    ("mke2fs", "e2fsprogs"),
    ("debugfs", "e2fsprogs"),
    ("dumpe2fs", "e2fsprogs"),
    ("mkfs.vfat", "dosfstools"),
    ("mcopy", "mtools"),
    ("mmd", "mtools"),
    ("systemd-repart", "systemd"),
    ("systemctl", "systemd"),
    // containerd fills the image's store at build time (prefill).
    ("containerd", "containerd"),
    ("ctr", "containerd"),
];

/// What mmdebstrap needs besides qemu-user to build a root of another architecture.
pub const FOREIGN: &[(&str, &str)] = &[("arch-test", "arch-test")];

/// The program `disk.verity` needs: it writes the /usr hash tree.
pub const VERITY: (&str, &str) = ("veritysetup", "cryptsetup-bin");

/// Fails naming every missing program and its package (`veritysetup` only with `disk.verity`),
/// or a systemd-repart older than 252; `foreign`: a root of another architecture than the
/// host's is built too.
pub fn check_host(plan: &DiskPlan, foreign: bool) -> anyhow::Result<()> {
    let missing: Vec<String> = REQUIRED
        .iter()
        .chain(if foreign { FOREIGN } else { &[] })
        .filter(|(prog, _)| which(prog).is_none())
        .map(|(prog, pkg)| format!("{prog} (package {pkg})"))
        .collect();
    if !missing.is_empty() {
        bail!(
            "missing build tools: {}; install them (e.g. with .ci/setup)",
            missing.join(", ")
        );
    }
    let (prog, pkg) = VERITY;
    if plan.disk.verity && which(prog).is_none() {
        bail!(
            "disk.verity: {prog} (package {pkg}) is missing; it writes the /usr dm-verity hash tree: install it, or set disk.verity = false"
        );
    }
    crate::bake::repart::find("[disk]", false)?;
    Ok(())
}
