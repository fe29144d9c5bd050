//! `kiln build-disk` (hidden, temporary until `kiln build` drives it): a disk image and PXE
//! artifacts from a recipe's `[rootfs]`/`[disk]` sections and a content tree.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::build::disk::{build_disk, DiskPlan};

/// Options of `kiln build-disk`.
#[derive(Debug, Args)]
pub struct BuildDiskArgs {
    /// The recipe (TOML with [rootfs] and [disk] sections).
    recipe: PathBuf,
    /// The content tree (usr/bin/kubeadm, ..., usr/lib/systemd/system/kiln-firstboot.service).
    #[arg(long)]
    content: PathBuf,
    /// Output directory (disk.raw, disk.qcow2, pxe/).
    #[arg(long)]
    out: PathBuf,
    /// Cache and scratch directory (the Debian root is cached here).
    #[arg(long)]
    cache: PathBuf,
    /// Replace a mirror URL prefix, e.g. http://deb.debian.org/debian=file:///srv/debian.
    #[arg(long, value_name = "FROM=TO")]
    mirror: Vec<String>,
}

impl BuildDiskArgs {
    /// Builds the disk image and prints the outputs' paths.
    pub fn run(self) -> anyhow::Result<()> {
        let mut plan = DiskPlan::from_recipe(&self.recipe)?;
        let mirrors = self
            .mirror
            .iter()
            .map(|m| {
                m.split_once('=')
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .with_context(|| format!("--mirror {m:?}: expected FROM=TO"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        plan.apply_mirrors(&mirrors);
        let outputs = build_disk(&plan, &self.content, &self.cache, &self.out)?;
        tracing::info!(
            cmdline = %outputs.cmdline,
            rootfs_cached = outputs.rootfs_cached,
            "disk image built"
        );
        println!("{}", outputs.raw.display());
        if let Some(q) = &outputs.qcow2 {
            println!("{}", q.display());
        }
        if let Some(p) = &outputs.pxe {
            println!("{}", p.display());
        }
        Ok(())
    }
}
