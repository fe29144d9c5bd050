//! The Debian root, built with mmdebstrap from the recipe's packages (reproducibly: with
//! SOURCE_DATE_EPOCH); the initrd is made able to open /usr with dm-verity and mount it.

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;

use super::plan::DiskPlan;
use kiln_core::command::{Run, Stream};

/// initramfs-tools hook: the /usr filesystem's module, dm-verity and systemd's own
/// `systemd-veritysetup` go into the initrd (the initrd opens and mounts /usr from the root's
/// fstab before switching root).
pub const INITRAMFS_HOOK: &str = "#!/bin/sh
# kiln: the initrd mounts the read-only /usr image (erofs or squashfs) listed in /etc/fstab,
# through dm-verity when the kernel command line has usrhash=.
case \"$1\" in prereqs) exit 0;; esac
. /usr/share/initramfs-tools/hook-functions
manual_add_modules erofs squashfs dm_verity
copy_exec /lib/systemd/systemd-veritysetup /sbin/systemd-veritysetup
";

/// mmdebstrap hook: update-initramfs does nothing while packages are installed.
const NO_INITRAMFS: &str = "chroot \"$1\" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs && ln -s /bin/true \"$1/usr/sbin/update-initramfs\"";

/// mmdebstrap hook: update-initramfs back, and the initrd of every kernel made with the /usr hook.
const ONE_INITRAMFS: &str = "rm \"$1/usr/sbin/update-initramfs\" && chroot \"$1\" sh -c 'dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs && update-initramfs -c -k all'";
/// initramfs-tools `local-premount` script: with `usrhash=` on the kernel command line, opens
/// `/dev/mapper/usr` with dm-verity from the partitions the root hash names (its first and
/// last 128 bits are the data and hash partitions' UUIDs, as systemd-veritysetup-generator
/// finds them), before the root and /usr are mounted, and reads its first block; a failure or
/// a block that does not verify stops the boot. Debian 12's
/// initramfs-tools has no verity support of its own; the verification is systemd's
/// `systemd-veritysetup` (libcryptsetup), which also finds the volume active after switch-root.
pub const INITRAMFS_VERITY: &str = r##"#!/bin/sh
# kiln: open /usr with dm-verity (usrhash= on the kernel command line) before it is mounted.
case "$1" in prereqs) exit 0;; esac
. /scripts/functions
hash=
for arg in $(cat /proc/cmdline); do
  case "$arg" in usrhash=*) hash="${arg#usrhash=}";; esac
done
[ -n "$hash" ] || exit 0
# 32 hex digits as a UUID (8-4-4-4-12), with the shell alone (the initrd may lack sed and cut).
uuid() {
  s=$1; out=
  for n in 8 4 4 4 12; do
    part=; i=0
    while [ "$i" -lt "$n" ]; do part="$part${s%"${s#?}"}"; s=${s#?}; i=$((i + 1)); done
    out="${out:+$out-}$part"
  done
  echo "$out"
}
tail=$hash
while [ "${#tail}" -gt 32 ]; do tail=${tail#?}; done
data=/dev/disk/by-partuuid/$(uuid "$hash")
hashdev=/dev/disk/by-partuuid/$(uuid "$tail")
i=0
while [ ! -e "$data" ] || [ ! -e "$hashdev" ]; do
  i=$((i + 1)); [ "$i" -gt 20 ] && break; sleep 1
done
modprobe dm_verity 2>/dev/null
log_begin_msg "kiln: opening /usr with dm-verity (usrhash=$hash)"
if ! systemd-veritysetup attach usr "$data" "$hashdev" "$hash"; then
  panic "kiln: dm-verity setup of /usr failed (data $data, hash $hashdev)"
fi
# Read the filesystem's first block (its superblock, which mounting reads first): a /usr that is
# not the one the root hash names stops here, with this message, rather than later as a
# missing device.
dd if=/dev/mapper/usr of=/dev/null bs=4096 count=1 2>/dev/null
case "$(dmsetup status usr 2>/dev/null)" in
  *" verity C")
    panic "kiln: /usr fails dm-verity verification: its partition is not the one usrhash= names"
    ;;
esac
log_end_msg
"##;

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

/// Builds the root as a directory at `target` (which must not exist yet). An unknown package
/// fails here, in the first seconds, with apt's message naming it.
pub fn build(plan: &DiskPlan, epoch: u64, target: &Path, scratch: &Path) -> anyhow::Result<()> {
    let hook = scratch.join("initramfs-hook");
    std::fs::write(&hook, INITRAMFS_HOOK).context("writing the initramfs hook")?;
    let premount = scratch.join("initramfs-verity");
    std::fs::write(&premount, INITRAMFS_VERITY).context("writing the initramfs script")?;
    let mut cmd = mmdebstrap(plan, epoch, target, (&hook, &premount));
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

/// The mmdebstrap command that builds the root at `target` with the initramfs `hooks`
/// (kiln's hook and its verity premount script, installed before any package).
fn mmdebstrap(plan: &DiskPlan, epoch: u64, target: &Path, hooks: (&Path, &Path)) -> Command {
    let mut cmd = Command::new("mmdebstrap");
    // mmdebstrap, dpkg and mkinitramfs make their output reproducible with it.
    cmd.env("SOURCE_DATE_EPOCH", epoch.to_string());
    // A directory: the cache keeps the tree the builds' views read (no tarball to pack and
    // unpack again, 0.8 GB each way).
    cmd.arg("--mode=root")
        .arg("--format=directory")
        // Another architecture's root runs its maintainer scripts under qemu-user (binfmt_misc).
        .arg(format!("--architectures={}", plan.arch.kube()))
        .arg(format!("--variant={}", plan.rootfs.variant))
        .arg(format!("--include={}", plan.rootfs.packages.join(",")))
        .arg(format!(
            "--setup-hook=mkdir -p \"$1/etc/initramfs-tools/hooks\" \"$1/etc/initramfs-tools/scripts/local-premount\" && install -m 0755 {} \"$1/etc/initramfs-tools/hooks/kiln-usr\" && install -m 0755 {} \"$1/etc/initramfs-tools/scripts/local-premount/kiln-verity\"",
            hooks.0.display(),
            hooks.1.display()
        ))
        // The initrd is made once, at the end (the kernel's postinst and initramfs-tools' trigger
        // would make it twice: minutes each for another architecture, under qemu-user).
        .arg(format!("--essential-hook={NO_INITRAMFS}"))
        .arg(format!("--customize-hook={ONE_INITRAMFS}"))
        .arg("--customize-hook=rm -f \"$1\"/var/cache/apt/archives/*.deb \"$1\"/var/lib/apt/lists/*_Packages")
        .arg(&plan.rootfs.suite)
        .arg(target)
        .arg(sources_line(plan));
    cmd
}
