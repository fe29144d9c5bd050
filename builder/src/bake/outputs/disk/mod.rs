//! Bootable immutable disk images and PXE artifacts from a `kiln build` content tree (issue #7).
//!
//! A Debian root ([`rootfs`], mmdebstrap) gets the content tree and kiln-firstboot
//! ([`layout`]), is split into a read-only /usr image and a writable root (/etc, /var) that grows
//! to fill the disk on first boot, and becomes a GPT disk with systemd-boot ([`image`]), a qcow2
//! copy and PXE artifacts ([`pxe`]). Everything is built in a scratch directory and published
//! into the output directory only at the end.
//!
//! - [`plan`]: the recipe's `[rootfs]` and `[disk]` sections.
//! - [`tools`]: the host programs, checked before the long work.

pub mod image;
pub mod layout;
pub mod plan;
pub mod rootfs;
pub mod tools;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use kiln_core::command::Run;

pub use plan::DiskPlan;

/// What [`build_disk`] wrote.
#[derive(Debug, Clone)]
pub struct DiskOutputs {
    /// The raw GPT disk image (`OUT/disk.raw`).
    pub raw: PathBuf,
    /// Its qcow2 copy (`OUT/disk.qcow2`), if `disk.qcow2`.
    pub qcow2: Option<PathBuf>,
    /// The PXE directory (`OUT/pxe`: vmlinuz, initrd, cmdline, boot.ipxe), if `disk.pxe`.
    pub pxe: Option<PathBuf>,
    /// The kernel command line the boot entry uses.
    pub cmdline: String,
    /// Whether the Debian root came from the cache in WORK.
    pub rootfs_cached: bool,
}

/// Builds the disk image and PXE artifacts for `plan` with the content tree `content_tree`
/// (`usr/bin/kubeadm`, ..., `usr/lib/systemd/system/kiln-firstboot.service`), caching the
/// Debian root in `work` and publishing into `out` (created if missing; existing
/// `disk.raw`, `disk.qcow2` and `pxe` are replaced only once the new ones are complete).
pub fn build_disk(
    plan: &DiskPlan,
    content_tree: &Path,
    work: &Path,
    out: &Path,
) -> anyhow::Result<DiskOutputs> {
    plan.check()?;
    tools::check_host()?;
    anyhow::ensure!(
        content_tree
            .join("usr/lib/systemd/system")
            .join(layout::FIRSTBOOT_UNIT)
            .is_file(),
        "content tree {}: usr/lib/systemd/system/{} is missing (is it a `kiln build` content tree?)",
        content_tree.display(),
        layout::FIRSTBOOT_UNIT
    );
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let scratch = tempfile::Builder::new()
        .prefix("kiln-disk-")
        .tempdir_in(work)
        .context("making a scratch directory in the work directory")?;
    let staging = tempfile::Builder::new()
        .prefix(".kiln-disk.partial-")
        .tempdir_in(out)
        .context("making a staging directory in the output directory")?;
    let s = scratch.path();

    let (tarball, rootfs_cached) =
        step("Debian root (mmdebstrap)", || cached_rootfs(plan, work, s))?;
    let root = s.join("root");
    let usr_tree = s.join("usr");
    let uuids = layout::Uuids {
        esp: uuid()?,
        usr: uuid()?,
        root: uuid()?,
    };
    step("layout (content tree, units, identity, fstab)", || {
        std::fs::create_dir(&root)?;
        Run::new(
            std::process::Command::new("tar")
                .args(["-x", "--numeric-owner", "--xattrs", "-f"])
                .arg(&tarball)
                .arg("-C")
                .arg(&root),
            "unpacking the Debian root",
        )
        .run()?;
        layout::merge_content(plan, &root, content_tree)?;
        layout::reset_identity(&root)?;
        layout::immutable_settings(plan, &root, &uuids)
    })?;
    let (boot_kernel, boot_initrd) = layout::kernel(&root)?;
    let (kernel, initrd) = (s.join("vmlinuz"), s.join("initrd"));
    std::fs::rename(&boot_kernel, &kernel)?;
    std::fs::rename(&boot_initrd, &initrd)?;
    let boot_efi = usr_tree.join("lib/systemd/boot/efi/systemd-bootx64.efi");
    layout::split(&root, &usr_tree)?;
    anyhow::ensure!(
        boot_efi.is_file(),
        "systemd-boot is missing from the root (rootfs.packages needs systemd-boot-efi)"
    );
    let mut cmdline = vec![format!("root=PARTUUID={}", uuids.root), "rw".into()];
    cmdline.extend(plan.disk.cmdline.iter().cloned());
    let cmdline = cmdline.join(" ");

    let usr_img = s.join("usr.img");
    step("read-only /usr image", || {
        image::usr_image(plan, &usr_tree, &usr_img)
    })?;
    let (esp, usr, root_size) =
        image::sizes(plan, image::file_size(&usr_img)?, image::root_needs(&root)?)?;
    let esp_img = s.join("esp.img");
    let root_img = s.join("root.img");
    step("ESP and root filesystems", || {
        image::esp_image(esp, &boot_efi, &kernel, &initrd, &cmdline, &esp_img, s)?;
        image::root_image(&root, root_size, &root_img)
    })?;
    let raw = staging.path().join("disk.raw");
    step("GPT disk", || {
        image::assemble(
            plan.size()?,
            [(&esp_img, esp), (&usr_img, usr), (&root_img, root_size)],
            &uuids,
            &raw,
        )
    })?;
    if plan.disk.qcow2 {
        step("qcow2", || {
            image::qcow2(&raw, &staging.path().join("disk.qcow2"))
        })?;
    }
    if plan.disk.pxe {
        super::pxe::write(&staging.path().join("pxe"), &kernel, &initrd, &cmdline)?;
    }
    publish(staging.path(), out)?;
    Ok(DiskOutputs {
        raw: out.join("disk.raw"),
        qcow2: plan.disk.qcow2.then(|| out.join("disk.qcow2")),
        pxe: plan.disk.pxe.then(|| out.join("pxe")),
        cmdline,
        rootfs_cached,
    })
}

/// The Debian root as a tarball in `work/rootfs/`, built once per sources + packages.
fn cached_rootfs(plan: &DiskPlan, work: &Path, scratch: &Path) -> anyhow::Result<(PathBuf, bool)> {
    let key = format!(
        "{}\n{}\n{}\n",
        rootfs::sources_line(plan),
        plan.rootfs.variant,
        plan.rootfs.packages.join(",")
    );
    let name = format!(
        "{}.tar",
        &kiln_core::digest::sha256_hex(key.as_bytes())[..24]
    );
    let dir = work.join("rootfs");
    let tarball = dir.join(&name);
    if tarball.is_file() {
        tracing::info!(tarball = %tarball.display(), "Debian root from the cache");
        return Ok((tarball, true));
    }
    std::fs::create_dir_all(&dir)?;
    let partial = scratch.join(&name);
    rootfs::build(plan, &partial, scratch)?;
    std::fs::rename(&partial, &tarball).context("caching the Debian root")?;
    Ok((tarball, false))
}

/// Moves every entry of `staging` into `out`, replacing older outputs.
fn publish(staging: &Path, out: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(staging)? {
        let entry = entry?;
        let dest = out.join(entry.file_name());
        if dest.is_dir() {
            std::fs::remove_dir_all(&dest)?;
        }
        std::fs::rename(entry.path(), &dest)
            .with_context(|| format!("publishing {}", dest.display()))?;
    }
    std::fs::File::open(out)?.sync_all()?;
    Ok(())
}

fn step<T>(what: &str, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let start = Instant::now();
    tracing::info!("{what}: starting");
    let value = f().with_context(|| what.to_owned())?;
    tracing::info!("{what}: done in {:.1}s", start.elapsed().as_secs_f64());
    Ok(value)
}

/// A random UUID, lower case (udev names /dev/disk/by-partuuid links in lower case).
fn uuid() -> anyhow::Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .context("reading a random UUID")?
        .trim()
        .to_owned())
}
