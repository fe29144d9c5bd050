//! `kiln build`: bake a recipe into a sysext image, an /opt tree and a manifest.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use crate::bake::cache::Cache;
use crate::bake::execute::{self, Options};
use crate::bake::images;
use crate::bake::mirror::{Mirror, Mirrors};
use crate::bake::plan::Plan;
use crate::bake::recipe::{Arch, Recipe, SysextFormat};
use crate::bake::report::Report;
use crate::bake::signing::{Signable, Signing, SigningArgs};

/// Refuses a `--report` path whose directory does not exist (before any download).
fn check_report_path(path: &std::path::Path) -> anyhow::Result<()> {
    let dir = kiln_core::fsutil::parent_dir(path);
    anyhow::ensure!(
        dir.is_dir() && !path.is_dir(),
        "--report {}: its directory {} does not exist, or it is a directory",
        path.display(),
        dir.display()
    );
    Ok(())
}

/// Bake Kubernetes from a recipe into a systemd-sysext image and an /opt tree.
///
/// Downloads kubeadm, kubelet, kubectl and the recipe's components (each verified against its
/// published or pinned SHA-256 before use), pulls the images to pre-pull (every blob digest
/// verified), and writes the outputs into --out: `NAME-vX.Y.Z-ARCH.raw` (sysext), the /opt
/// tar, `NAME.conf` (systemd-sysupdate transfer, when the recipe sets `outputs.sysupdate_url`),
/// with `[rootfs]` and `[disk]` a disk image in the recipe's `[disk] formats` (raw, qcow2, vhd,
/// vhdx, vmdk, gce) and PXE files, `manifest.json` and `SHA256SUMS`. The same recipe and inputs
/// give the same sysext and /opt bytes. With --signing-key and --certificate the sysext is a
/// signed verity image and a dm-verity disk gets its /usr root hash signed; with --gpg-key SHA256SUMS gets a detached SHA256SUMS.gpg. Example:
///
///   kiln build images/flatcar-sysext.toml --out out/ --arch amd64
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The recipe (see images/*.toml).
    recipe: PathBuf,
    /// Output directory; must not exist (pass --force to replace it).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Download cache; content-addressed and safe to share [default: ~/.cache/kiln].
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Fetch from a mirror: a base URL (https://dl.k8s.io/release=http://mirror/k8s) or a
    /// registry (registry.k8s.io=http://127.0.0.1:5000); repeatable.
    #[arg(long = "mirror", value_name = "FROM=TO")]
    mirrors: Vec<Mirror>,
    /// Build only this architecture of the recipe; repeatable.
    #[arg(long = "arch", value_name = "ARCH")]
    archs: Vec<Arch>,
    /// The kiln-firstboot binary to bake: PATH (for the host's architecture) or ARCH=PATH
    /// [default: kiln-firstboot next to this kiln].
    #[arg(long = "firstboot", value_name = "[ARCH=]PATH")]
    firstboot: Vec<String>,
    /// Ask registries again what image tags point to (the cache otherwise remembers).
    #[arg(long)]
    refresh: bool,
    /// Replace --out if it exists.
    #[arg(long)]
    force: bool,
    /// Print the plan (downloads, checksum sources, images, outputs) and exit.
    #[arg(long)]
    dry_run: bool,
    /// Write a JSON report of the finished build to FILE: every output (path, format,
    /// architecture, size, SHA-256), the Kubernetes version, the images, seconds per phase
    /// (keys in README.md, `report_version` 1). Written only when the build succeeds.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Make each sysext a verity-protected image (root, root-verity, root-verity-sig partitions)
    /// whose root hash is signed with this PEM private key (RSA or ECDSA), and sign a dm-verity
    /// disk's /usr root hash into a usr-verity-sig partition; needs --certificate.
    #[arg(long, value_name = "KEY", requires = "certificate")]
    signing_key: Option<PathBuf>,
    /// The PEM X.509 certificate of --signing-key (nodes trust it in /etc/verity.d/ or the
    /// kernel keyring).
    #[arg(long, value_name = "CRT", requires = "signing_key")]
    certificate: Option<PathBuf>,
    /// Sign SHA256SUMS into SHA256SUMS.gpg with this OpenPGP secret key (fingerprint, key id or
    /// user id); the sysupdate transfer then says Verify=yes.
    #[arg(long, value_name = "KEY")]
    gpg_key: Option<String>,
    /// The GnuPG home directory holding --gpg-key [default: $GNUPGHOME, else ~/.gnupg].
    #[arg(long, value_name = "DIR", requires = "gpg_key")]
    gpg_homedir: Option<PathBuf>,
}

impl BuildArgs {
    /// Runs the build.
    pub fn run(self) -> anyhow::Result<()> {
        let recipe = Recipe::load(&self.recipe)?;
        let epoch = kiln_core::epoch::source_date_epoch()?;
        let plan = Plan::new(recipe, &self.archs, epoch, &images::runnable_here())?;
        let signing = Signing::check(
            &SigningArgs {
                key: self.signing_key,
                certificate: self.certificate,
                gpg_key: self.gpg_key,
                gpg_homedir: self.gpg_homedir,
            },
            Signable {
                sysext: plan.recipe.outputs.sysext != SysextFormat::None,
                disk_verity: plan.disk.as_ref().is_some_and(|d| d.disk.verity),
            },
        )?;
        if self.dry_run {
            println!("{plan}{signing}");
            return Ok(());
        }
        let options = Options {
            out: self.out,
            cache: self.cache.unwrap_or_else(Cache::default_dir),
            mirrors: Mirrors::new(self.mirrors),
            firstboot: firstboot_binaries(&self.firstboot)?,
            refresh: self.refresh,
            force: self.force,
            signing,
        };
        if let Some(path) = &self.report {
            check_report_path(path)?;
        }
        let report = execute::execute(&plan, &options)?;
        if let Some(path) = &self.report {
            Report::of_build(&plan, &options.out, report.phases.clone())?.write(path)?;
        }
        eprintln!(
            "built {} into {} ({} downloaded ({:.1} MB), {} from the cache)",
            plan.recipe.name,
            kiln_core::redact::escape(&options.out.display().to_string()),
            report.downloaded,
            report.downloaded_bytes as f64 / 1e6,
            report.cached
        );
        Ok(())
    }
}

/// `--firstboot` values → binary per architecture; the default is the kiln-firstboot beside
/// this executable, for the host's architecture.
fn firstboot_binaries(values: &[String]) -> anyhow::Result<BTreeMap<Arch, PathBuf>> {
    let mut out = BTreeMap::new();
    for value in values {
        let (arch, path) = match value.split_once('=') {
            Some((arch, path)) => {
                let arch = <Arch as clap::ValueEnum>::from_str(arch, true).map_err(|_| {
                    anyhow::anyhow!(
                        "--firstboot {value}: unknown architecture {arch:?} (amd64, arm64)"
                    )
                })?;
                (arch, path)
            }
            None => (
                Arch::host().ok_or_else(|| {
                    anyhow::anyhow!("--firstboot {value}: say which architecture: ARCH=PATH")
                })?,
                value.as_str(),
            ),
        };
        out.insert(arch, PathBuf::from(path));
    }
    if let (Some(arch), Ok(exe)) = (Arch::host(), std::env::current_exe()) {
        let beside = exe.with_file_name("kiln-firstboot");
        if beside.exists() {
            out.entry(arch).or_insert(beside);
        }
    }
    Ok(out)
}
