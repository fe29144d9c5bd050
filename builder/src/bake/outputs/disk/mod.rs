//! Bootable immutable disk images and PXE artifacts from a `kiln build` content tree (issue #7).
//!
//! A Debian root ([`rootfs`], mmdebstrap) gets the content tree and kiln-firstboot
//! ([`layout`]), is split into a read-only /usr image (with `disk.verity`, a dm-verity hash tree
//! beside it: [`verity`]) and a writable root (/etc, /var) that grows to fill the disk on first
//! boot; the filesystems ([`image`]) become a GPT disk laid out by systemd-repart ([`repart`])
//! with systemd-boot, its copies in the recipe's other formats ([`formats`]) and PXE artifacts
//! ([`super::pxe`]). Every identifier derives from the build's [`seed`] and every timestamp is
//! SOURCE_DATE_EPOCH, so the same recipe and inputs give the same bytes. Everything is built in
//! a scratch directory and published into the output directory only at the end.
//!
//! - [`plan`]: the recipe's `[rootfs]` and `[disk]` sections.
//! - [`view`]: the node's root as a copy-on-write view of the cached Debian root (overlayfs, in
//!   the build's own mount namespace).
//! - [`prefill`]: containerd's config, CNI plugins and image store filled at build time.
//! - [`early`], [`readahead`]: containerd started early, first boot's binaries read ahead.
//! - [`bolt`]: containerd's bbolt databases rewritten reproducibly.
//! - [`arch`]: what differs per architecture (amd64, arm64: kernel, systemd-boot, partition
//!   types, console).
//! - [`formats`]: raw, qcow2, VHD, VHDX, VMDK, GCE tar.
//! - [`tools`]: the host programs, checked before the long work.

pub mod arch;
pub mod bolt;
pub mod early;
pub mod formats;
pub mod image;
pub mod layout;
pub mod plan;
pub mod prefill;
pub mod readahead;
pub mod repart;
pub mod rootfs;
pub mod seed;
pub mod tools;
pub mod verity;
pub mod view;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use kiln_core::fsutil::Replace;

use crate::bake::arch::Arch;
use crate::bake::phases::Phases;
use crate::bake::signing::{root_hash, VeritySigner};
pub use formats::Format;
pub use plan::DiskPlan;
use seed::Seed;
use tempfile::TempDir;

/// What [`build_disk`] wrote.
#[derive(Debug, Clone)]
pub struct DiskOutputs {
    /// The disk image in each format of the plan (`OUT/disk.raw`, `OUT/disk.vhd`, ...).
    pub files: Vec<(Format, PathBuf)>,
    /// The PXE directory (`OUT/pxe`: vmlinuz, initrd, cmdline, boot.ipxe), if `disk.pxe`.
    pub pxe: Option<PathBuf>,
    /// The kernel command line the boot entry uses.
    pub cmdline: String,
    /// The dm-verity root hash of /usr (hex), with `disk.verity`.
    pub usr_root_hash: Option<String>,
    /// Whether the Debian root came from the cache in WORK.
    pub rootfs_cached: bool,
}

/// Builds the disk image and PXE artifacts for `plan` (for `plan.arch`, output names as
/// [`arch::DiskArch::output_name`] gives them), every timestamp `epoch` (SOURCE_DATE_EPOCH),
/// with the content tree `content_tree`
/// (`usr/bin/kubeadm`, ..., `usr/lib/systemd/system/kiln-firstboot.service`), caching the
/// Debian root in `work` and publishing into `out` (created if missing; existing
/// `disk.*` files and `pxe` are replaced only once the new ones are complete). Each long step is
/// a phase of `phases`. With dm-verity and a `signer`, /usr's root hash is signed into a
/// `usr-verity-sig` partition. The same plan, epoch, content tree (and RSA key) give the same
/// bytes.
pub fn build_disk(
    plan: &DiskPlan,
    epoch: u64,
    content_tree: &Path,
    dirs: (&Path, &Path),
    signer: Option<&VeritySigner>,
    phases: &Phases,
) -> anyhow::Result<DiskOutputs> {
    let (work, out) = dirs;
    check_inputs(plan, content_tree)?;
    let formats = plan.formats()?;
    let seed = seed_of(plan, epoch, content_tree)?;
    let (work, scratch, staging) = scratch_dirs(work, out)?;
    let build = Build {
        plan,
        epoch,
        seed: &seed,
        scratch: scratch.path(),
        phases,
        signer,
    };
    let raw = staging.path().join(Format::Raw.file());
    let (boot, cmdline, usr_root_hash, rootfs_cached) = view::in_private_mounts(|| {
        let (root, rootfs_cached) = build.prepare_root(content_tree, &work)?;
        let boot = boot_files(plan, &root.dir, scratch.path(), epoch)?;
        let (cmdline, usr_root_hash) = build.write_disk(&root, &boot, &raw)?;
        Ok((boot, cmdline, usr_root_hash, rootfs_cached))
    })?;
    let jobs = crate::bake::pool::default_jobs();
    formats::convert_all(&raw, &formats, staging.path(), jobs, phases)?;
    if !formats.contains(&Format::Raw) {
        std::fs::remove_file(&raw).with_context(|| format!("removing {}", raw.display()))?;
    }
    if plan.disk.pxe {
        let pxe = staging.path().join("pxe");
        super::pxe::write(&pxe, &boot.kernel, &boot.initrd, &cmdline)?;
    }
    publish(plan, staging.path(), out)?;
    let named = |name: &str| out.join(plan.facts().output_name(name));
    Ok(DiskOutputs {
        files: formats.iter().map(|f| (*f, named(f.file()))).collect(),
        pxe: plan.disk.pxe.then(|| named("pxe")),
        cmdline,
        usr_root_hash,
        rootfs_cached,
    })
}

/// `work` (absolute) and `out`, created if missing; a scratch directory in `work` and a staging
/// directory in `out` (removed when dropped).
fn scratch_dirs(work: &Path, out: &Path) -> anyhow::Result<(PathBuf, TempDir, TempDir)> {
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let work = std::path::absolute(work)?;
    let scratch = tempfile::Builder::new()
        .prefix("kiln-disk-")
        .tempdir_in(&work)
        .context("making a scratch directory in the work directory")?;
    let staging = tempfile::Builder::new()
        .prefix(".kiln-disk.partial-")
        .tempdir_in(out)
        .context("making a staging directory in the output directory")?;
    Ok((work, scratch, staging))
}

/// What is checked before any work: the plan, the host's tools, the content tree.
fn check_inputs(plan: &DiskPlan, content_tree: &Path) -> anyhow::Result<()> {
    plan.check()?;
    formats::check_tools(&plan.formats()?)?;
    tools::check_host(plan, Some(plan.arch) != Arch::host())?;
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

/// The seed of this build: what decides the raw disk's contents (the `[rootfs]` section, the
/// `[disk]` layout: not the output formats or PXE), the architecture, the epoch and the content
/// tree's manifest (every baked input's SHA-256).
fn seed_of(plan: &DiskPlan, epoch: u64, content_tree: &Path) -> anyhow::Result<Seed> {
    let manifest = content_tree.join(crate::bake::content::MANIFEST);
    let manifest =
        std::fs::read(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let d = &plan.disk;
    let layout = (
        &d.size,
        &d.esp_size,
        &d.usr_filesystem,
        d.verity,
        &d.cmdline,
    );
    let sections =
        serde_json::to_vec(&(&plan.rootfs, layout)).context("serialising the disk plan")?;
    Ok(Seed::of(&[
        &sections,
        plan.arch.systemd().as_bytes(),
        epoch.to_string().as_bytes(),
        &manifest,
    ]))
}

/// The node's root, laid out in the scratch directory, with the partition UUIDs it names.
struct Root {
    /// `SCRATCH/root`: the whole root (a view of the cached Debian root), /usr shown at
    /// `SCRATCH/usr` and hidden here by [`boot_files`].
    dir: PathBuf,
    uuids: layout::Uuids,
}

/// One disk build's fixed inputs, for its steps.
struct Build<'a> {
    plan: &'a DiskPlan,
    epoch: u64,
    seed: &'a Seed,
    scratch: &'a Path,
    phases: &'a Phases,
    signer: Option<&'a VeritySigner>,
}

impl Build<'_> {
    /// The Debian root (cached) seen at `SCRATCH/root` (see [`view`]) with the content tree
    /// merged in and the image's identity and mounts set; whether the Debian root came from the
    /// cache. Runs in the build's private mount namespace.
    fn prepare_root(&self, content_tree: &Path, work: &Path) -> anyhow::Result<(Root, bool)> {
        let (plan, s) = (self.plan, self.scratch);
        let (cached, rootfs_cached) = self.phases.run("Debian root (mmdebstrap)", || {
            cached_rootfs(plan, self.epoch, work, s)
        })?;
        let root = Root {
            dir: s.join("root"),
            uuids: layout::Uuids {
                esp: self.seed.uuid("esp"),
                usr: (!plan.disk.verity).then(|| self.seed.uuid("usr")),
                root: self.seed.uuid("root"),
            },
        };
        let overlay = view::root_view(&cached, s, &root.dir)?;
        tracing::debug!(
            overlay,
            "the node's root is a view of the cached Debian root"
        );
        self.phases
            .run("layout (content tree, units, identity, fstab)", || {
                layout::merge_content(plan, &root.dir, content_tree)?;
                layout::reset_identity(&root.dir)?;
                layout::immutable_settings(plan, &root.dir, &root.uuids)
            })?;
        let prefilled = self
            .phases
            .run("containerd config and image store (prefill)", || {
                store_on_scratch(&root.dir, s)?;
                prefill::prefill(&root.dir, Some(plan.arch) == Arch::host(), self.epoch)
            })?;
        let early = early::arrange(&root.dir)?;
        let read_ahead = readahead::arrange(&root.dir)?;
        tracing::debug!(
            containerd_unit_overridden = early,
            read_ahead,
            "kernel settings baked, containerd started early, binaries read ahead"
        );
        tracing::info!(
            images = prefilled.imported,
            sandbox_image = prefilled.sandbox_image.as_deref().unwrap_or("-"),
            "containerd's store filled at build time"
        );
        Ok((root, rootfs_cached))
    }

    /// The filesystems and the GPT disk around them at `raw`; the kernel command line and the
    /// /usr root hash.
    fn write_disk(
        &self,
        root: &Root,
        boot: &Boot,
        raw: &Path,
    ) -> anyhow::Result<(String, Option<String>)> {
        let (usr, verity) = self.usr_images(boot)?;
        let root_hash = verity.as_ref().map(|(hash, _)| hash.clone());
        let signature = self.signature(root_hash.as_deref())?;
        let cmdline = cmdline(self.plan, &root.uuids, root_hash.as_deref());
        let file_size = |s: Option<&repart::Sized>| s.map_or(Ok(0), |s| image::file_size(&s.image));
        let images = (
            image::file_size(&usr.image)?,
            file_size(verity.as_ref().map(|(_, tree)| tree))?,
            file_size(signature.as_ref())?,
        );
        let root_min = image::root_needs(&root.dir)?;
        let (esp_size, usr_size, hash_size, root_size) = image::sizes(self.plan, images, root_min)?;
        let (esp, root_img) = self.esp_and_root(root, boot, &cmdline, esp_size, root_size)?;
        let usr = usr.sized(usr_size);
        let verity = verity.map(|(hash, tree)| (hash, tree.sized(hash_size)));
        let verity = verity.as_ref().map(|(h, t)| (h.as_str(), t));
        let parts = repart::layout(
            self.plan.facts(),
            &root.uuids,
            (&esp, &usr),
            verity,
            signature.as_ref(),
            root_size,
        )?;
        self.phases.run("GPT disk (systemd-repart)", || {
            let placed = repart::make_disk(
                &parts,
                &self.scratch.join("repart.d"),
                self.plan.size()?,
                &self.seed.uuid("disk"),
                raw,
            )?;
            write_root(&placed, &root_img, raw)
        })?;
        Ok((cmdline, root_hash))
    }

    /// The read-only /usr image and, with dm-verity, its root hash and hash tree (sizes are
    /// filled in once every partition's size is known).
    fn usr_images(
        &self,
        boot: &Boot,
    ) -> anyhow::Result<(repart::Sized, Option<(String, repart::Sized)>)> {
        let (plan, s, epoch) = (self.plan, self.scratch, self.epoch);
        let usr = repart::Sized {
            image: s.join("usr.img"),
            size: 0,
        };
        self.phases.run("read-only /usr image", || {
            let uuid = self.seed.uuid("usr-filesystem");
            image::usr_image(plan, &boot.usr_tree, &usr.image, &uuid, epoch)
        })?;
        if !plan.disk.verity {
            return Ok((usr, None));
        }
        let tree = repart::Sized {
            image: s.join("usr-verity.img"),
            size: 0,
        };
        let hash = self.phases.run("dm-verity hash tree (/usr)", || {
            verity::format(
                &usr.image,
                &tree.image,
                &self.seed.hex("verity-salt"),
                &self.seed.uuid("verity-superblock"),
            )
        })?;
        Ok((usr, Some((hash, tree))))
    }

    /// With a signer and dm-verity, the `usr-verity-sig` partition's image for `root_hash`.
    fn signature(&self, root_hash: Option<&str>) -> anyhow::Result<Option<repart::Sized>> {
        let (Some(signer), Some(root_hash)) = (self.signer, root_hash) else {
            return Ok(None);
        };
        let image = self.scratch.join("usr-verity-sig.img");
        let bytes = signer.signature_partition(root_hash)?;
        std::fs::write(&image, bytes).with_context(|| format!("writing {}", image.display()))?;
        Ok(Some(repart::Sized {
            image,
            size: root_hash::PARTITION_SIZE,
        }))
    }

    /// The ESP image (with the boot entry's `cmdline`) and the root filesystem image.
    fn esp_and_root(
        &self,
        root: &Root,
        boot: &Boot,
        cmdline: &str,
        esp_size: u64,
        root_size: u64,
    ) -> anyhow::Result<(repart::Sized, PathBuf)> {
        let (s, epoch) = (self.scratch, self.epoch);
        let esp = repart::Sized {
            image: s.join("esp.img"),
            size: esp_size,
        };
        let root_img = s.join("root.img");
        self.phases.run("ESP and root filesystems", || {
            let files = image::EspFiles {
                efi: &boot.efi,
                loader: self.plan.facts().removable_loader,
                kernel: &boot.kernel,
                initrd: &boot.initrd,
                cmdline,
                epoch,
            };
            image::esp_image(esp_size, &files, &esp.image, s)?;
            let uuid = self.seed.uuid("root-filesystem");
            image::root_image(&root.dir, root_size, &root_img, &uuid, epoch)
        })?;
        Ok((esp, root_img))
    }
}

/// Copies the root filesystem image into the root partition repart made, sparse.
fn write_root(placed: &[repart::Placed], root_img: &Path, raw: &Path) -> anyhow::Result<()> {
    let root = placed
        .iter()
        .find(|p| p.label == "root")
        .context("systemd-repart made no root partition")?;
    let size = image::file_size(root_img)?;
    anyhow::ensure!(
        size <= root.raw_size,
        "the root filesystem ({size} bytes) is larger than its partition ({} bytes)",
        root.raw_size
    );
    let mut disk = std::fs::OpenOptions::new()
        .write(true)
        .open(raw)
        .with_context(|| format!("opening {}", raw.display()))?;
    image::copy_sparse(root_img, &mut disk, root.offset)
        .with_context(|| format!("copying {} into the disk", root_img.display()))?;
    disk.sync_all()?;
    Ok(())
}

/// The kernel, initrd and systemd-boot of the image, taken out of the root (kernel and initrd
/// moved into the scratch directory); /usr is split off into `SCRATCH/usr`.
struct Boot {
    kernel: PathBuf,
    initrd: PathBuf,
    efi: PathBuf,
    usr_tree: PathBuf,
}

fn boot_files(plan: &DiskPlan, root: &Path, s: &Path, epoch: u64) -> anyhow::Result<Boot> {
    let (boot_kernel, boot_initrd) = layout::kernel(root)?;
    let boot = Boot {
        kernel: s.join("vmlinuz"),
        initrd: s.join("initrd"),
        efi: s
            .join("usr/lib/systemd/boot/efi")
            .join(plan.facts().systemd_boot),
        usr_tree: s.join("usr"),
    };
    move_out(&boot_kernel, &boot.kernel)?;
    move_out(&boot_initrd, &boot.initrd)?;
    layout::split(root, &boot.usr_tree, &s.join("empty-usr"))?;
    layout::clamp_times(root, epoch)?;
    anyhow::ensure!(
        boot.efi.is_file(),
        "systemd-boot is missing from the root (rootfs.packages needs systemd-boot-efi)"
    );
    Ok(boot)
}

/// Moves `from` (in the root's view) to `to` (outside it: a rename cannot cross the mount).
fn move_out(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    std::fs::remove_file(from).with_context(|| format!("removing {}", from.display()))
}

/// containerd's store (`var/lib/containerd`) on a directory of its own in the scratch
/// directory, bound into the root: containerd's overlayfs snapshotter cannot keep its
/// snapshots on an overlayfs (the root's view). Whatever the Debian root has there is copied.
fn store_on_scratch(root: &Path, scratch: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let (store, at) = (scratch.join("containerd-store"), root.join(prefill::STORE));
    // The mode containerd gives the directory it makes.
    std::fs::DirBuilder::new()
        .mode(0o711)
        .create(&store)
        .with_context(|| format!("creating {}", store.display()))?;
    if at.is_dir() {
        view::copy_tree(&at, &store, "copying the Debian root's /var/lib/containerd")?;
    }
    std::fs::create_dir_all(&at).with_context(|| format!("creating {}", at.display()))?;
    view::bind(&store, &at)
}

/// The kernel command line of the boot entry: the root partition, the /usr root hash (with
/// dm-verity), then the recipe's own.
fn cmdline(plan: &DiskPlan, uuids: &layout::Uuids, usr_root_hash: Option<&str>) -> String {
    let mut cmdline = vec![format!("root=PARTUUID={}", uuids.root), "rw".into()];
    if let Some(hash) = usr_root_hash {
        cmdline.push(format!("usrhash={hash}"));
    }
    cmdline.extend(plan.disk.cmdline.iter().cloned());
    cmdline.join(" ")
}

/// The Debian root as a directory in `work/rootfs/`, built once per sources + packages by
/// mmdebstrap, its times clamped to `epoch` as mmdebstrap's tarballs have them, published
/// whole. The builds' views only read it (see [`view`]).
fn cached_rootfs(
    plan: &DiskPlan,
    epoch: u64,
    work: &Path,
    scratch: &Path,
) -> anyhow::Result<(PathBuf, bool)> {
    let key = format!(
        "{}\n{}\n{}\n{}\n{epoch}\n{}{}",
        plan.arch.kube(),
        rootfs::sources_line(plan),
        plan.rootfs.variant,
        plan.rootfs.packages.join(","),
        rootfs::INITRAMFS_HOOK,
        rootfs::INITRAMFS_VERITY
    );
    let name = &kiln_core::digest::sha256_hex(key.as_bytes())[..24];
    let tree = work.join("rootfs").join(name);
    if tree.is_dir() {
        tracing::info!(tree = %tree.display(), "Debian root from the cache");
        return Ok((tree, true));
    }
    std::fs::create_dir_all(work.join("rootfs"))?;
    kiln_core::fsutil::publish(&tree, Replace::Never, |partial| {
        rootfs::build(plan, epoch, partial, scratch)?;
        layout::clamp_times(partial, epoch)?;
        // Its data on disk before it is published (a cache a crash left half-written would
        // make wrong images).
        let dir = std::fs::File::open(partial)?;
        nix::unistd::syncfs(&dir).with_context(|| format!("syncing {}", partial.display()))
    })
    .context("caching the Debian root")?;
    // An older kiln cached the same root as a tarball.
    let _ = std::fs::remove_file(tree.with_extension("tar"));
    Ok((tree, false))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_names_root_then_usrhash_then_the_recipes_own() {
        let plan: DiskPlan = toml::from_str(
            "[rootfs]\nsuite = \"b\"\nmirror = \"http://m\"\npackages = []\n[disk]\nsize = \"3G\"\ncmdline = [\"quiet\"]\n",
        )
        .unwrap();
        let uuids = layout::Uuids {
            esp: "e".into(),
            usr: None,
            root: "r".into(),
        };
        assert_eq!(
            cmdline(&plan, &uuids, Some("ab12")),
            "root=PARTUUID=r rw usrhash=ab12 quiet"
        );
        assert_eq!(cmdline(&plan, &uuids, None), "root=PARTUUID=r rw quiet");
    }
}
