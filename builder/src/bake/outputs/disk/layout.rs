//! The immutable layout: the Kubernetes content tree merged into the root, units enabled, the
//! per-machine identity left empty, then the root split into the read-only /usr tree and the
//! writable root/var tree with the fstab, repart and kubelet settings that make it work.

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;

use super::plan::DiskPlan;
use kiln_core::command::Run;

/// The unit kiln-firstboot ships in the content tree.
pub const FIRSTBOOT_UNIT: &str = "kiln-firstboot.service";

/// The FlexVolume directory off the read-only /usr (kiln-firstboot's `read_only_usr` uses the
/// same for the kubelet and controller-manager; see REFERENCE.md, read-only /usr).
const FLEX_VOLUME_DIR: &str = kiln_core::nodeconfig::FLEX_VOLUME_DIR;

/// Partition UUIDs fixed for one build (the kernel command line and fstab name them).
#[derive(Debug, Clone)]
pub struct Uuids {
    /// The EFI system partition.
    pub esp: String,
    /// The read-only /usr partition; `None` with dm-verity, where /usr is `/dev/mapper/usr` and
    /// its partition's UUID comes from the root hash.
    pub usr: Option<String>,
    /// The writable root partition (/etc, /var, ...).
    pub root: String,
}

/// Copies the content tree (`usr/...`, a sysext-like tree) into `root` and enables units.
pub fn merge_content(plan: &DiskPlan, root: &Path, content: &Path) -> anyhow::Result<()> {
    let unit = content.join("usr/lib/systemd/system").join(FIRSTBOOT_UNIT);
    anyhow::ensure!(
        unit.is_file(),
        "content tree {}: usr/lib/systemd/system/{FIRSTBOOT_UNIT} is missing (is it a `kiln build` content tree?)",
        content.display()
    );
    Run::new(
        Command::new("cp")
            .args(["-a", "--no-preserve=ownership"])
            .arg(content.join("."))
            .arg(root),
        "copying the content tree",
    )
    .run()?;
    let mut units = vec![FIRSTBOOT_UNIT.to_owned()];
    units.extend(plan.rootfs.enable.iter().cloned());
    Run::new(
        Command::new("systemctl")
            .arg(format!("--root={}", root.display()))
            .arg("enable")
            .args(&units),
        "enabling units",
    )
    .run()?;
    Ok(())
}

/// Makes each clone its own machine: empty machine-id (first boot generates it and applies
/// presets), no host name, no leftovers from the build host, no record of the build's time
/// (package manager logs, ldconfig's cache of file times: two builds would differ in them).
pub fn reset_identity(root: &Path) -> anyhow::Result<()> {
    write(root, "etc/machine-id", "")?;
    for rel in [
        "etc/hostname",
        "var/lib/dbus/machine-id",
        "etc/resolv.conf",
        "var/lib/systemd/random-seed",
        "var/cache/ldconfig/aux-cache",
        "var/log/dpkg.log",
        "var/log/alternatives.log",
        "var/log/bootstrap.log",
        "var/log/apt/history.log",
        "var/log/apt/term.log",
        "var/log/apt/eipp.log.xz",
    ] {
        match std::fs::remove_file(root.join(rel)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {rel} from the root"))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Files for the read-only /usr layout: fstab (/usr read-only, root growing), repart growing
/// the root partition to the disk's end, DHCP on wired links, the kubelet's FlexVolume directory.
pub fn immutable_settings(plan: &DiskPlan, root: &Path, uuids: &Uuids) -> anyhow::Result<()> {
    write(root, "etc/fstab", &fstab(plan, uuids))?;
    std::fs::create_dir_all(root.join("boot/efi"))?;
    write(
        root,
        "usr/lib/repart.d/50-kiln-root.conf",
        "# kiln: grow the root partition (/etc, /var) to the end of the disk on boot.\n[Partition]\nType=root\n",
    )?;
    write(
        root,
        "usr/lib/systemd/network/80-kiln-dhcp.network",
        "# kiln: DHCP on wired links (user-data can replace it in /etc/systemd/network).\n[Match]\nType=ether\nName=en* eth*\n\n[Network]\nDHCP=yes\n",
    )?;
    write(
        root,
        "etc/default/kubelet",
        &format!(
            "# kiln: /usr is read-only, so FlexVolume plugins live under /opt.\nKUBELET_EXTRA_ARGS=--volume-plugin-dir={FLEX_VOLUME_DIR}\n"
        ),
    )?;
    Ok(())
}

/// The fstab: / growing, /usr read-only (the verity device when there is one), the ESP.
fn fstab(plan: &DiskPlan, uuids: &Uuids) -> String {
    let usr_fs = &plan.disk.usr_filesystem;
    let (usr, what) = match &uuids.usr {
        Some(uuid) => (format!("PARTUUID={uuid}"), "a read-only image"),
        None => (
            "/dev/mapper/usr".to_owned(),
            "a read-only image checked by dm-verity (opened by the initrd from usrhash=)",
        ),
    };
    format!(
        "# kiln: /usr is {what}; / (with /etc and /var) grows to fill the disk.\n\
         PARTUUID={} / ext4 rw,x-systemd.growfs 0 1\n\
         {usr} /usr {usr_fs} ro 0 0\n\
         PARTUUID={} /boot/efi vfat umask=0077,noauto,x-systemd.automount 0 0\n",
        uuids.root, uuids.esp
    )
}

/// Clamps every timestamp under `tree` newer than `epoch` to `epoch` (what the layout wrote;
/// the Debian root's files are already clamped by mmdebstrap).
pub fn clamp_times(tree: &Path, epoch: u64) -> anyhow::Result<()> {
    Run::new(
        Command::new("find")
            .arg(tree)
            .arg("-newermt")
            .arg(format!("@{epoch}"))
            .args(["-exec", "touch", "--no-dereference", "--date"])
            .arg(format!("@{epoch}"))
            .args(["{}", "+"]),
        "clamping timestamps to SOURCE_DATE_EPOCH",
    )
    .run()?;
    Ok(())
}

/// Shows `root/usr` at `usr_tree` too, and an empty directory `empty` at `root/usr` (the root
/// filesystem's /usr mount point): bind mounts, in the build's own mount namespace (see
/// [`super::view`]); a rename cannot move a directory out of the root's overlayfs view.
pub fn split(root: &Path, usr_tree: &Path, empty: &Path) -> anyhow::Result<()> {
    for dir in [usr_tree, empty] {
        std::fs::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    super::view::bind(&root.join("usr"), usr_tree)?;
    super::view::bind(empty, &root.join("usr"))
}

/// The kernel and initrd in the root's /boot: `(vmlinuz, initrd)`.
pub fn kernel(root: &Path) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let boot = root.join("boot");
    let mut kernels: Vec<_> = std::fs::read_dir(&boot)
        .with_context(|| format!("reading {}", boot.display()))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vmlinuz-"))
        .collect();
    kernels.sort();
    let name = kernels
        .pop()
        .context("no kernel in the root's /boot (rootfs.packages needs the kernel package, linux-image-amd64 or linux-image-arm64)")?;
    let version = name.trim_start_matches("vmlinuz-");
    let initrd = boot.join(format!("initrd.img-{version}"));
    anyhow::ensure!(
        initrd.is_file(),
        "no initrd for kernel {version} in the root's /boot"
    );
    Ok((boot.join(&name), initrd))
}

fn write(root: &Path, rel: &str, text: &str) -> anyhow::Result<()> {
    let path = root.join(rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, text).with_context(|| format!("writing {rel} in the root"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> DiskPlan {
        toml::from_str(
            "[rootfs]\nsuite = \"bookworm\"\nmirror = \"http://m\"\npackages = []\n[disk]\nsize = \"3G\"\n",
        )
        .unwrap()
    }

    #[test]
    fn fstab_mounts_the_verity_volume_or_the_partition() {
        let mut uuids = Uuids {
            esp: "e".into(),
            usr: Some("u".into()),
            root: "r".into(),
        };
        let plain = fstab(&plan(), &uuids);
        assert!(
            plain.contains("\nPARTUUID=u /usr erofs ro 0 0\n"),
            "{plain}"
        );
        assert!(plain.contains("\nPARTUUID=r / ext4 rw,x-systemd.growfs 0 1\n"));
        uuids.usr = None;
        let verity = fstab(&plan(), &uuids);
        assert!(
            verity.contains("\n/dev/mapper/usr /usr erofs ro 0 0\n"),
            "{verity}"
        );
    }
}
