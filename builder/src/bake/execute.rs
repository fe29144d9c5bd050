//! Applies a [`Plan`]: verified downloads, image pulls, one content tree per architecture, the
//! outputs. Everything is built under a temporary directory beside `--out` and renamed into place
//! at the end, so a failed build leaves no output behind (and a killed one's directory is removed
//! by the next build: see [`super::staging`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressDrawTarget};
use kiln_core::fsutil;

use super::cache::Cache;
use super::fetch::{self, Fetched};
use super::http::Client;
use super::images::{ListSource, ResolvedImages};
use super::mirror::Mirrors;
use super::oci;
use super::outputs::disk;
use super::outputs::manifest;
use super::outputs::sysext;
use super::pack;
use super::phases::{Phase, Phases};
use super::plan::Plan;
use super::recipe::Arch;
use super::signing::Signing;
use super::staging::Staging;
use super::tree;

/// How to run a build (everything that is not in the recipe).
#[derive(Debug, Clone)]
pub struct Options {
    /// The output directory (must not exist unless `force`).
    pub out: PathBuf,
    /// The download cache.
    pub cache: PathBuf,
    /// `--mirror` rules.
    pub mirrors: Mirrors,
    /// The kiln-firstboot binary to bake, per architecture.
    pub firstboot: BTreeMap<Arch, PathBuf>,
    /// Re-resolve image tags instead of trusting the cache's record.
    pub refresh: bool,
    /// Replace an existing `out`.
    pub force: bool,
    /// Who signs the sysexts and `SHA256SUMS` (checked before the build).
    pub signing: Signing,
}

/// What a build did.
#[derive(Debug, Default)]
pub struct Report {
    /// Artifacts downloaded (not served from the cache).
    pub downloaded: usize,
    /// Artifacts served from the cache.
    pub cached: usize,
    /// Bytes downloaded.
    pub downloaded_bytes: u64,
    /// The phases, in the order they finished.
    pub phases: Vec<Phase>,
}

/// Runs the build.
pub fn execute(plan: &Plan, options: &Options) -> anyhow::Result<Report> {
    preflight(plan, options)?;
    let staging = Staging::beside(&options.out)?;
    let cache = Cache::open(&options.cache)?;
    let progress = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let phases = Phases::new();
    let start = Instant::now();
    let fetched = fetch::fetch_all(
        &plan.artifacts,
        &Client::new(),
        &options.mirrors,
        &cache,
        &progress,
    )?;
    phases.record("download", start.elapsed());
    let start = Instant::now();
    let resolved =
        plan.images
            .resolve(&plan.version, baked_kubeadm(plan, &fetched), staging.path())?;
    let images = pull_images(plan, options, &resolved, &cache, &progress)?;
    phases.record("images", start.elapsed());
    let inputs = pack::inputs(plan, &fetched, &images, &options.firstboot)?;
    let out = staging.path().join("out");
    std::fs::create_dir(&out)?;
    let built = Built {
        fetched: &fetched,
        images: &images,
        inputs: &inputs,
        resolved: &resolved,
        cache: &cache,
        phases: &phases,
    };
    let (mut root_hashes, mut usr_root_hashes) = (BTreeMap::new(), BTreeMap::new());
    for &arch in &plan.architectures {
        let made = build_arch(plan, options, &built, arch, staging.path(), &out)?;
        root_hashes.extend(made.signed);
        if let Some(hash) = made.usr_root_hash {
            usr_root_hashes.insert(arch.kube().to_owned(), hash);
        }
    }
    let signed = pack::Signed {
        signing: &options.signing,
        root_hashes: &root_hashes,
    };
    phases.run("manifest", || {
        pack::write_top_level(plan, inputs, &resolved, signed, &usr_root_hashes, &out)
    })?;
    publish(&out, &options.out, options.force)?;
    Ok(report(&fetched, phases.take()))
}

/// What the architecture-independent phases produced, for the per-architecture ones.
struct Built<'a> {
    fetched: &'a [Fetched],
    images: &'a BTreeMap<Arch, Vec<oci::PulledImage>>,
    inputs: &'a [manifest::Input],
    resolved: &'a ResolvedImages,
    cache: &'a Cache,
    phases: &'a Phases,
}

fn report(fetched: &[Fetched], phases: Vec<Phase>) -> Report {
    let downloaded = || fetched.iter().filter(|f| !f.cached);
    Report {
        downloaded: downloaded().count(),
        cached: fetched.len() - downloaded().count(),
        downloaded_bytes: downloaded().map(|f| f.size).sum(),
        phases,
    }
}

/// The images of `resolved`, pulled for every architecture of the plan.
fn pull_images(
    plan: &Plan,
    options: &Options,
    resolved: &ResolvedImages,
    cache: &Cache,
    progress: &MultiProgress,
) -> anyhow::Result<BTreeMap<Arch, Vec<oci::PulledImage>>> {
    let mut images = BTreeMap::new();
    for &arch in &plan.architectures {
        let platform = oci::Platform::linux(arch.kube());
        let pulled = oci::pull_all(
            &resolved.pull,
            &platform,
            &options.mirrors,
            cache,
            options.refresh,
            progress,
        )?;
        images.insert(arch, pulled);
    }
    Ok(images)
}

/// The content tree of `arch` and its outputs (sysext, /opt tar, disk image) into `out`.
fn build_arch(
    plan: &Plan,
    options: &Options,
    built: &Built<'_>,
    arch: Arch,
    work: &Path,
    out: &Path,
) -> anyhow::Result<ArchOutputs> {
    let tree = work.join(arch.kube());
    built
        .phases
        .run(&format!("content tree {}", arch.kube()), || {
            content_tree(plan, options, built, arch, &tree)
        })?;
    let mut usr_root_hash = None;
    if let Some(disk) = &plan.disk {
        let disk = disk.for_arch(arch);
        usr_root_hash = build_disk(
            &disk,
            plan.source_date_epoch,
            options,
            &tree,
            out,
            built.phases,
        )?;
    }
    let signed = built
        .phases
        .run(&format!("sysext and /opt {}", arch.kube()), || {
            pack::write_arch_outputs(plan, arch, &tree, work, out, &options.signing)
        })?;
    Ok(ArchOutputs {
        signed,
        usr_root_hash,
    })
}

/// What [`build_arch`] made besides its files.
struct ArchOutputs {
    /// The signed sysext's name and root hash, if it is signed.
    signed: Option<(String, String)>,
    /// The disk's /usr dm-verity root hash, with `disk.verity`.
    usr_root_hash: Option<String>,
}

/// The content tree of `arch` at `tree`: downloads, images, manifest, overlay, normalised.
fn content_tree(
    plan: &Plan,
    options: &Options,
    built: &Built<'_>,
    arch: Arch,
    tree: &Path,
) -> anyhow::Result<()> {
    assemble(plan, options, arch, built.fetched, tree)?;
    if !built.images[&arch].is_empty() {
        let dir = tree.join(tree::IMAGE_DIR);
        oci::write_archives(
            &built.images[&arch],
            built.cache,
            &dir,
            plan.source_date_epoch,
        )?;
    }
    let pulled = built
        .images
        .get(&arch)
        .map(Vec::as_slice)
        .unwrap_or_default();
    pack::write_inner_manifest(plan, arch, built.inputs, built.resolved, pulled, tree)?;
    if let Some(overlay) = &plan.recipe.overlay {
        tree::copy_overlay(overlay, tree)?;
    }
    sysext::normalise_tree(tree, plan.source_date_epoch)
}

/// The disk image (and PXE artifacts) from the content tree, its Debian root from the mirror;
/// the /usr root hash, with dm-verity.
fn build_disk(
    disk: &disk::DiskPlan,
    epoch: u64,
    options: &Options,
    tree: &Path,
    out: &Path,
    phases: &Phases,
) -> anyhow::Result<Option<String>> {
    let mut disk = disk.clone();
    disk.rootfs.mirror = options.mirrors.rewrite_url(&disk.rootfs.mirror);
    let work = options.cache.join("disk");
    let signer = options.signing.verity.as_ref();
    let built = disk::build_disk(&disk, epoch, tree, (&work, out), signer, phases)?;
    let formats: Vec<&str> = built.files.iter().map(|(f, _)| f.name()).collect();
    tracing::info!(
        formats = %formats.join(","),
        pxe = built.pxe.is_some(),
        cmdline = %built.cmdline,
        debian_root_cached = built.rootfs_cached,
        "disk image built"
    );
    Ok(built.usr_root_hash)
}

/// The verified kubeadm download the plan asks for its images, if it asks one, with its
/// official URL.
fn baked_kubeadm<'a>(plan: &'a Plan, fetched: &'a [Fetched]) -> Option<(&'a Path, &'a str)> {
    let ListSource::Kubeadm(arch) = plan.images.source? else {
        return None;
    };
    let found = plan.artifacts.iter().zip(fetched);
    found
        .filter(|(a, _)| a.name == "kubeadm" && a.arch == arch)
        .map(|(a, f)| (f.path.as_path(), a.url.as_str()))
        .next()
}

/// Checks what can be checked before any download: the kiln-firstboot binaries and `--out`.
fn preflight(plan: &Plan, options: &Options) -> anyhow::Result<()> {
    for arch in &plan.architectures {
        let path = options.firstboot.get(arch).ok_or_else(|| {
            anyhow::anyhow!(
                "no kiln-firstboot binary for {}; pass --firstboot {}=PATH (built for that architecture)",
                arch.kube(),
                arch.kube()
            )
        })?;
        check_elf_arch(path, *arch)?;
    }
    if let Some(disk) = &plan.disk {
        disk.check()?;
        disk::formats::check_tools(&disk.formats()?)?;
        let foreign = plan.architectures.iter().any(|&a| Some(a) != Arch::host());
        disk::tools::check_host(disk, foreign)?;
    }
    if options.out.exists() && !options.force {
        anyhow::bail!(
            "--out {}: already exists; choose a new directory or pass --force to replace it",
            options.out.display()
        );
    }
    Ok(())
}

/// Refuses a kiln-firstboot binary built for another machine.
fn check_elf_arch(path: &Path, arch: Arch) -> anyhow::Result<()> {
    let mut head = [0u8; 20];
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("--firstboot {}: cannot open it", path.display()))?;
    std::io::Read::read_exact(&mut file, &mut head)
        .map_err(|_| anyhow::anyhow!("--firstboot {}: not an executable", path.display()))?;
    let machine = u16::from_le_bytes([head[18], head[19]]);
    let expected = match arch {
        Arch::Amd64 => 0x3e,
        Arch::Arm64 => 0xb7,
    };
    if &head[..4] != b"\x7fELF" || machine != expected {
        anyhow::bail!(
            "--firstboot {}: not a Linux {} executable",
            path.display(),
            arch.kube()
        );
    }
    Ok(())
}

/// Builds the content tree for `arch` at `tree`.
fn assemble(
    plan: &Plan,
    options: &Options,
    arch: Arch,
    fetched: &[Fetched],
    tree: &Path,
) -> anyhow::Result<()> {
    for (artifact, fetched) in plan.artifacts.iter().zip(fetched) {
        if artifact.arch == arch {
            tree::install_artifact(tree, artifact, fetched)?;
        }
    }
    let containerd = plan.recipe.components.containerd.is_some();
    tree::install_node_files(tree, &options.firstboot[&arch], containerd)?;
    Ok(())
}

/// Moves the finished output directory to `dest`. With `force` an existing `dest` is swapped
/// out atomically (`RENAME_EXCHANGE`) and removed afterwards, so it is never lost half-way.
fn publish(built: &Path, dest: &Path, force: bool) -> anyhow::Result<()> {
    let replace = if force {
        fsutil::Replace::Existing
    } else {
        fsutil::Replace::Never
    };
    fsutil::move_into_place(built, dest, replace)
        .with_context(|| format!("moving the build to {}", dest.display()))
}
