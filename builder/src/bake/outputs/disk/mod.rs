//! Bootable immutable disk images and PXE artifacts from a `kiln build` content tree (issue #7).
//!
//! A Debian root ([`rootfs`], mmdebstrap) gets the content tree and kiln-firstboot
//! ([`layout`]), is split into a read-only /usr image and a writable root (/etc, /var) that grows
//! to fill the disk on first boot, and becomes a GPT disk with systemd-boot ([`image`]), its
//! copies in the recipe's other formats ([`formats`]) and PXE artifacts ([`pxe`]). Everything is built in a scratch directory and published
//! into the output directory only at the end.
//!
//! - [`plan`]: the recipe's `[rootfs]` and `[disk]` sections.
//! - [`prefill`]: containerd's config, CNI plugins and image store filled at build time.
//! - [`arch`]: what differs per architecture (amd64, arm64: kernel, systemd-boot, GUIDs, console).
//! - [`formats`]: raw, qcow2, VHD, VHDX, VMDK, GCE tar.
//! - [`tools`]: the host programs, checked before the long work.

pub mod arch;
pub mod formats;
pub mod image;
pub mod layout;
pub mod plan;
pub mod prefill;
pub mod rootfs;
pub mod tools;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use kiln_core::command::Run;
use kiln_core::fsutil::Replace;

use crate::bake::phases::Phases;
pub use formats::Format;
pub use plan::DiskPlan;

/// What [`build_disk`] wrote.
#[derive(Debug, Clone)]
pub struct DiskOutputs {
    /// The disk image in each format of the plan (`OUT/disk.raw`, `OUT/disk.vhd`, ...).
    pub files: Vec<(Format, PathBuf)>,
    /// The PXE directory (`OUT/pxe`: vmlinuz, initrd, cmdline, boot.ipxe), if `disk.pxe`.
    pub pxe: Option<PathBuf>,
    /// The kernel command line the boot entry uses.
    pub cmdline: String,
    /// Whether the Debian root came from the cache in WORK.
    pub rootfs_cached: bool,
}

/// Builds the disk image and PXE artifacts for `plan` (for `plan.arch`, output names as
/// [`arch::DiskArch::output_name`] gives them) with the content tree `content_tree`
/// (`usr/bin/kubeadm`, ..., `usr/lib/systemd/system/kiln-firstboot.service`), caching the
/// Debian root in `work` and publishing into `out` (created if missing; existing
/// `disk.*` files and `pxe` are replaced only once the new ones are complete). Each long step is
/// a phase of `phases`.
pub fn build_disk(
    plan: &DiskPlan,
    content_tree: &Path,
    work: &Path,
    out: &Path,
    phases: &Phases,
) -> anyhow::Result<DiskOutputs> {
    check_inputs(plan, content_tree)?;
    let formats = plan.formats()?;
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
    let (root, rootfs_cached) = prepare_root(plan, content_tree, work, s, phases)?;
    let boot = boot_files(plan, &root.dir, s)?;
    let cmdline = cmdline(plan, &root.uuids);
    let raw = staging.path().join(Format::Raw.file());
    write_disk(plan, &root, &boot, &cmdline, s, &raw, phases)?;
    formats::convert_all(
        &raw,
        &formats,
        staging.path(),
        formats::default_jobs(),
        phases,
    )?;
    if !formats.contains(&Format::Raw) {
        std::fs::remove_file(&raw).with_context(|| format!("removing {}", raw.display()))?;
    }
    if plan.disk.pxe {
        super::pxe::write(
            &staging.path().join("pxe"),
            &boot.kernel,
            &boot.initrd,
            &cmdline,
        )?;
    }
    let named = |name: &str| out.join(plan.facts().output_name(name));
    publish(plan, staging.path(), out)?;
    Ok(DiskOutputs {
        files: formats.iter().map(|f| (*f, named(f.file()))).collect(),
        pxe: plan.disk.pxe.then(|| named("pxe")),
        cmdline,
        rootfs_cached,
    })
}

/// What is checked before any work: the plan, the host's tools, the content tree.
fn check_inputs(plan: &DiskPlan, content_tree: &Path) -> anyhow::Result<()> {
    plan.check()?;
    formats::check_tools(&plan.formats()?)?;
    tools::check_host(Some(plan.arch) != crate::bake::arch::Arch::host())?;
    anyhow::ensure!(
        content_tree
            .join("usr/lib/systemd/system")
            .join(layout::FIRSTBOOT_UNIT)
            .is_file(),
        "content tree {}: usr/lib/systemd/system/{} is missing (is it a `kiln build` content tree?)",
        content_tree.display(),
        layout::FIRSTBOOT_UNIT
    );
    Ok(())
}

/// The node's root, laid out in the scratch directory, with the partition UUIDs it names.
struct Root {
    /// `SCRATCH/root`: the whole root, /usr split off into `SCRATCH/usr` by [`boot_files`].
    dir: PathBuf,
    uuids: layout::Uuids,
}

/// The Debian root (cached) unpacked into `SCRATCH/root` with the content tree merged in and
/// the image's identity and mounts set; whether the Debian root came from the cache.
fn prepare_root(
    plan: &DiskPlan,
    content_tree: &Path,
    work: &Path,
    s: &Path,
    phases: &Phases,
) -> anyhow::Result<(Root, bool)> {
    let (tarball, rootfs_cached) =
        phases.run("Debian root (mmdebstrap)", || cached_rootfs(plan, work, s))?;
    let root = Root {
        dir: s.join("root"),
        uuids: layout::Uuids {
            esp: uuid()?,
            usr: uuid()?,
            root: uuid()?,
        },
    };
    phases.run("layout (content tree, units, identity, fstab)", || {
        std::fs::create_dir(&root.dir)?;
        Run::new(
            std::process::Command::new("tar")
                .args(["-x", "--numeric-owner", "--xattrs", "-f"])
                .arg(&tarball)
                .arg("-C")
                .arg(&root.dir),
            "unpacking the Debian root",
        )
        .run()?;
        layout::merge_content(plan, &root.dir, content_tree)?;
        layout::reset_identity(&root.dir)?;
        layout::immutable_settings(plan, &root.dir, &root.uuids)
    })?;
    let prefilled = phases.run("containerd config and image store (prefill)", || {
        prefill::prefill(
            &root.dir,
            Some(plan.arch) == crate::bake::arch::Arch::host(),
        )
    })?;
    tracing::info!(
        images = prefilled.imported,
        sandbox_image = prefilled.sandbox_image.as_deref().unwrap_or("-"),
        "containerd's store filled at build time"
    );
    Ok((root, rootfs_cached))
}

/// The kernel, initrd and systemd-boot of the image, taken out of the root (kernel and initrd
/// moved into the scratch directory); /usr is split off into `SCRATCH/usr`.
struct Boot {
    kernel: PathBuf,
    initrd: PathBuf,
    efi: PathBuf,
    usr_tree: PathBuf,
}

fn boot_files(plan: &DiskPlan, root: &Path, s: &Path) -> anyhow::Result<Boot> {
    let (boot_kernel, boot_initrd) = layout::kernel(root)?;
    let boot = Boot {
        kernel: s.join("vmlinuz"),
        initrd: s.join("initrd"),
        efi: s
            .join("usr/lib/systemd/boot/efi")
            .join(plan.facts().systemd_boot),
        usr_tree: s.join("usr"),
    };
    std::fs::rename(&boot_kernel, &boot.kernel)?;
    std::fs::rename(&boot_initrd, &boot.initrd)?;
    layout::split(root, &boot.usr_tree)?;
    anyhow::ensure!(
        boot.efi.is_file(),
        "systemd-boot is missing from the root (rootfs.packages needs systemd-boot-efi)"
    );
    Ok(boot)
}

/// The kernel command line of the boot entry: the root partition, then the recipe's own.
fn cmdline(plan: &DiskPlan, uuids: &layout::Uuids) -> String {
    let mut cmdline = vec![format!("root=PARTUUID={}", uuids.root), "rw".into()];
    cmdline.extend(plan.disk.cmdline.iter().cloned());
    cmdline.join(" ")
}

/// The three filesystems (read-only /usr, ESP, root) and the GPT disk around them at `raw`.
fn write_disk(
    plan: &DiskPlan,
    root: &Root,
    boot: &Boot,
    cmdline: &str,
    s: &Path,
    raw: &Path,
    phases: &Phases,
) -> anyhow::Result<()> {
    let usr_img = s.join("usr.img");
    phases.run("read-only /usr image", || {
        image::usr_image(plan, &boot.usr_tree, &usr_img)
    })?;
    let usr_bytes = image::file_size(&usr_img)?;
    let (esp, usr, root_size) = image::sizes(plan, usr_bytes, image::root_needs(&root.dir)?)?;
    let (esp_img, root_img) = (s.join("esp.img"), s.join("root.img"));
    phases.run("ESP and root filesystems", || {
        let files = image::EspFiles {
            efi: &boot.efi,
            loader: plan.facts().removable_loader,
            kernel: &boot.kernel,
            initrd: &boot.initrd,
            cmdline,
        };
        image::esp_image(esp, &files, &esp_img, s)?;
        image::root_image(&root.dir, root_size, &root_img)
    })?;
    phases.run("GPT disk", || {
        image::assemble(
            plan.size()?,
            [(&esp_img, esp), (&usr_img, usr), (&root_img, root_size)],
            &root.uuids,
            plan.facts(),
            raw,
        )
    })
}

/// The Debian root as a tarball in `work/rootfs/`, built once per sources + packages.
fn cached_rootfs(plan: &DiskPlan, work: &Path, scratch: &Path) -> anyhow::Result<(PathBuf, bool)> {
    let key = format!(
        "{}\n{}\n{}\n{}\n",
        plan.arch.kube(),
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
    kiln_core::fsutil::publish(&tarball, Replace::Existing, |partial| {
        rootfs::build(plan, partial, scratch)
    })
    .context("caching the Debian root")?;
    Ok((tarball, false))
}

/// Moves every entry of `staging` into `out` under the architecture's output name, each
/// replacing an older output all at once.
fn publish(plan: &DiskPlan, staging: &Path, out: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(staging)? {
        let entry = entry?;
        let dest = out.join(
            plan.facts()
                .output_name(&entry.file_name().to_string_lossy()),
        );
        kiln_core::fsutil::move_into_place(&entry.path(), &dest, Replace::Existing)
            .with_context(|| format!("publishing {}", dest.display()))?;
    }
    Ok(())
}

/// A random UUID, lower case (udev names /dev/disk/by-partuuid links in lower case).
fn uuid() -> anyhow::Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .context("reading a random UUID")?
        .trim()
        .to_owned())
}
