//! `kiln pull`: pre-pull images into archives that kiln-firstboot (or `ctr images import`) loads,
//! e.g. to carry images into an air-gapped site.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use indicatif::{MultiProgress, ProgressDrawTarget};

use crate::bake::cache::Cache;
use crate::bake::mirror::{Mirror, Mirrors};
use crate::bake::oci::{self, Platform};

/// Pull images for one platform, verify every blob, and write one reproducible OCI archive per
/// image plus SHA256SUMS.
///
/// The archives import as they are with `ctr -n k8s.io images import FILE` and are named after
/// the image (`registry.k8s.io_pause_3.10.tar`); each image is named `REPO:TAG` and
/// `REPO@DIGEST` in containerd. Put them in /usr/share/kiln/images on a node and kiln-firstboot
/// imports them before kubeadm runs. Prints `FILE  REFERENCE  DIGEST` per image.
///
/// Blobs are cached by digest; a tag is resolved once per cache and then served from it without
/// contacting the registry (use --refresh to resolve tags again). References pinned with
/// @sha256:... never change.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Images to pull: `registry/repository:tag`, `…@sha256:<hex>`; Docker Hub names such as
    /// `nginx:1.27` mean `docker.io/library/nginx:1.27`.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
    /// The platform to take from multi-arch images.
    #[arg(long, default_value = "linux/amd64", value_name = "OS/ARCH[/VARIANT]")]
    platform: Platform,
    /// Directory for the archives and SHA256SUMS; must be empty or absent.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Blob cache (default: $XDG_CACHE_HOME/kiln or ~/.cache/kiln).
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Reach a registry elsewhere: `registry.k8s.io=http://127.0.0.1:5000` (http:// for plain
    /// HTTP, https:// or no scheme for HTTPS). Repeatable.
    #[arg(long, value_name = "FROM=TO")]
    mirror: Vec<Mirror>,
    /// Ask the registry again for tags already resolved in the cache.
    #[arg(long)]
    refresh: bool,
    /// Timestamp of every archive entry (default: $SOURCE_DATE_EPOCH, else 0).
    #[arg(long, value_name = "SECONDS")]
    source_date_epoch: Option<u64>,
}

impl PullArgs {
    pub fn run(self) -> anyhow::Result<()> {
        if self.out.exists()
            && std::fs::read_dir(&self.out)
                .with_context(|| format!("reading {}", self.out.display()))?
                .next()
                .is_some()
        {
            anyhow::bail!(
                "{} is not empty; give a new or empty directory (SHA256SUMS must list exactly \
                 the archives in it)",
                self.out.display()
            );
        }
        let epoch = match self.source_date_epoch {
            Some(e) => e,
            None => kiln_core::epoch::source_date_epoch()?.unwrap_or(0),
        };
        let cache_dir = self.cache.unwrap_or_else(Cache::default_dir);
        let cache = Cache::open(&cache_dir)?;
        let mirrors = Mirrors::new(self.mirror);
        let progress = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let images = oci::pull_all(
            &self.images,
            &self.platform,
            &mirrors,
            &cache,
            self.refresh,
            &progress,
        )?;
        let archives = oci::write_archives(&images, &cache, &self.out, epoch)?;
        for (image, (file, _)) in images.iter().zip(&archives) {
            tracing::info!(image = %image.reference, manifest = %image.manifest_digest, bytes = image.size, "pulled");
            println!("{file}  {}  {}", image.reference, image.target.digest);
        }
        Ok(())
    }
}
