//! Packs a build's content trees into its outputs: per architecture the sysext image and the
//! /opt tar; once, the sysupdate transfer file, `manifest.json` and `SHA256SUMS`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::fetch::Fetched;
use super::images::ResolvedImages;
use super::oci::PulledImage;
use super::outputs::manifest::{self, Input, Manifest};
use super::outputs::{opt, sysext, sysupdate};
use super::plan::Plan;
use super::recipe::{Arch, SysextFormat};
use super::tree;
use kiln_core::digest;

/// Every input of the build, for the manifests: artifacts (official URLs, not mirrors), images
/// (manifest digests) and the kiln-firstboot binaries.
pub fn inputs(
    plan: &Plan,
    fetched: &[Fetched],
    images: &BTreeMap<Arch, Vec<PulledImage>>,
    firstboot: &BTreeMap<Arch, PathBuf>,
) -> anyhow::Result<Vec<Input>> {
    let mut inputs: Vec<Input> = plan
        .artifacts
        .iter()
        .zip(fetched)
        .map(|(a, f)| Input {
            name: a.name.to_owned(),
            arch: Some(a.arch.kube().to_owned()),
            url: a.url.clone(),
            version: a.version.clone(),
            sha256: f.sha256.clone(),
        })
        .collect();
    for (arch, pulled) in images {
        for image in pulled {
            let reference = image.reference.to_string();
            let version = reference
                .rsplit_once(':')
                .map(|(_, tag)| tag.to_owned())
                .unwrap_or_default();
            inputs.push(Input {
                name: reference.clone(),
                arch: Some(arch.kube().to_owned()),
                url: format!("docker://{reference}"),
                version,
                sha256: image
                    .manifest_digest
                    .trim_start_matches("sha256:")
                    .to_owned(),
            });
        }
    }
    for &arch in &plan.architectures {
        let path = &firstboot[&arch];
        inputs.push(Input {
            name: "kiln-firstboot".into(),
            arch: Some(arch.kube().to_owned()),
            url: "local: --firstboot".into(),
            version: "local".into(),
            sha256: digest::sha256_file(path)?,
        });
    }
    inputs.sort();
    Ok(inputs)
}

/// The manifest inside the content tree (`usr/share/kiln/manifest.json`): what was baked for
/// `arch`, and the sandbox image kiln-firstboot pins in containerd.
pub fn write_inner_manifest(
    plan: &Plan,
    arch: Arch,
    inputs: &[Input],
    images: &ResolvedImages,
    tree: &Path,
) -> anyhow::Result<()> {
    let mine = inputs
        .iter()
        .filter(|i| i.arch.as_deref() == Some(arch.kube()))
        .cloned()
        .collect();
    let mut manifest = Manifest::new(
        &plan.recipe.name,
        &plan.version_tag(),
        [arch.kube().to_owned()],
        plan.source_date_epoch,
        mine,
        Vec::new(),
    )
    .with_images(images.source.map(|s| s.name()), &images.kubeadm_list);
    manifest.sandbox_image =
        kiln_core::images::image_named(&images.pull, "pause").map(str::to_owned);
    let path = tree.join(tree::MANIFEST);
    tree::write_file(&path, manifest.to_json().as_bytes(), 0o644)
}

/// The sysext image and the /opt tar for `arch`, into `out`; `work` holds the /opt directory.
pub fn write_arch_outputs(
    plan: &Plan,
    arch: Arch,
    tree: &Path,
    work: &Path,
    out: &Path,
) -> anyhow::Result<()> {
    let o = &plan.recipe.outputs;
    let base = format!(
        "{}-{}-{}",
        plan.recipe.name,
        plan.version_tag(),
        arch.systemd()
    );
    if o.opt {
        let dir = work.join(format!("{base}-opt"));
        opt::write_tree(tree, &dir, plan.source_date_epoch)?;
        sysext::normalise_tree(&dir, plan.source_date_epoch)?;
        opt::write_tar(
            &dir,
            &out.join(format!("{base}-opt.tar")),
            plan.source_date_epoch,
        )?;
    }
    if o.sysext != SysextFormat::None {
        let level = match (&o.sysext_version_id, &o.sysext_level) {
            (Some(version_id), _) => sysext::Level::VersionId(version_id),
            (None, level) => sysext::Level::SysextLevel(level.as_deref().unwrap_or("1.0")),
        };
        sysext::write_extension_release(tree, &plan.recipe.name, &o.sysext_id, level, arch)?;
        let name = plan.sysext_name(arch);
        sysext::pack(
            tree,
            &out.join(&name),
            o.sysext,
            plan.source_date_epoch,
            &name,
        )?;
    }
    Ok(())
}

/// The sysupdate transfer file, `manifest.json` (inputs and output digests) and `SHA256SUMS`.
pub fn write_top_level(
    plan: &Plan,
    inputs: Vec<Input>,
    images: &ResolvedImages,
    usr_root_hash: Option<&str>,
    out: &Path,
) -> anyhow::Result<()> {
    if let Some(url) = &plan.recipe.outputs.sysupdate_url {
        let text = sysupdate::transfer(&plan.recipe.name, &plan.version_tag(), url, false)?;
        let path = out.join(sysupdate::file_name(&plan.recipe.name));
        tree::write_file(&path, text.as_bytes(), 0o644)?;
    }
    let manifest = Manifest::new(
        &plan.recipe.name,
        &plan.version_tag(),
        plan.architectures.iter().map(|a| a.kube().to_owned()),
        plan.source_date_epoch,
        inputs,
        manifest::output_entries(out)?,
    )
    .with_images(images.source.map(|s| s.name()), &images.kubeadm_list)
    .with_usr_root_hash(usr_root_hash);
    manifest::write_manifest(out, &manifest)?;
    manifest::write_sums(out)
}
