//! Packs a build's content trees into its outputs: per architecture the sysext image and the
//! /opt tar; once, the sysupdate transfer file, `manifest.json` and `SHA256SUMS`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::fetch::Fetched;
use super::images::ResolvedImages;
use super::oci::PulledImage;
use super::outputs::manifest::{self, Input, Manifest};
use super::outputs::sysext::verity;
use super::outputs::{opt, sysext, sysupdate};
use super::plan::Plan;
use super::recipe::{Arch, SysextFormat};
use super::signing::Signing;
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
/// `arch`, the sandbox image kiln-firstboot pins in containerd and the digests of the `pulled`
/// images as containerd names them.
pub fn write_inner_manifest(
    plan: &Plan,
    arch: Arch,
    inputs: &[Input],
    images: &ResolvedImages,
    pulled: &[PulledImage],
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
    manifest.image_digests = pulled
        .iter()
        .map(|p| (p.reference.to_string(), p.target.digest.clone()))
        .collect();
    let path = tree.join(tree::MANIFEST);
    tree::write_file(&path, manifest.to_json().as_bytes(), 0o644)
}

/// The sysext image and the /opt tar for `arch`, into `out`; `work` holds the /opt directory
/// (and the filesystem image of a signed sysext). Returns the signed sysext's file name and
/// verity root hash, when `signing` signs it.
pub fn write_arch_outputs(
    plan: &Plan,
    arch: Arch,
    tree: &Path,
    work: &Path,
    out: &Path,
    signing: &Signing,
) -> anyhow::Result<Option<(String, String)>> {
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
    write_sysext(plan, arch, tree, work, out, signing)
}

/// The sysext for `arch` into `out`: the packed tree or, with a verity signer, the signed DDI
/// (its filesystem image made in `work` first). Returns the signed one's name and root hash.
fn write_sysext(
    plan: &Plan,
    arch: Arch,
    tree: &Path,
    work: &Path,
    out: &Path,
    signing: &Signing,
) -> anyhow::Result<Option<(String, String)>> {
    let o = &plan.recipe.outputs;
    if o.sysext == SysextFormat::None {
        return Ok(None);
    }
    let level = match (&o.sysext_version_id, &o.sysext_level) {
        (Some(version_id), _) => sysext::Level::VersionId(version_id),
        (None, level) => sysext::Level::SysextLevel(level.as_deref().unwrap_or("1.0")),
    };
    sysext::write_extension_release(tree, &plan.recipe.name, &o.sysext_id, level, arch)?;
    let name = plan.sysext_name(arch);
    let epoch = plan.source_date_epoch;
    let Some(signer) = &signing.verity else {
        sysext::pack(tree, &out.join(&name), o.sysext, epoch, &name)?;
        return Ok(None);
    };
    let fs_image = work.join(format!("{name}.fs"));
    sysext::pack(tree, &fs_image, o.sysext, epoch, &name)?;
    let seed = sysext::derived_uuid(&format!("{name} ddi"));
    let root_hash = verity::make_image(signer, &fs_image, &out.join(&name), arch, &seed)?;
    std::fs::remove_file(&fs_image)?;
    Ok(Some((name, root_hash)))
}

/// The sysupdate transfer file, `manifest.json` (inputs and output digests, signing keys, the
/// signed sysexts' root hashes) and `SHA256SUMS`, with `SHA256SUMS.gpg` when `signing` signs
/// it.
pub fn write_top_level(
    plan: &Plan,
    inputs: Vec<Input>,
    images: &ResolvedImages,
    signed: Signed<'_>,
    usr_root_hashes: &BTreeMap<String, String>,
    out: &Path,
) -> anyhow::Result<()> {
    let gpg = signed.signing.gpg.as_ref();
    if let Some(url) = &plan.recipe.outputs.sysupdate_url {
        let text = sysupdate::transfer(&plan.recipe.name, &plan.version_tag(), url, gpg.is_some())?;
        let path = out.join(sysupdate::file_name(&plan.recipe.name));
        tree::write_file(&path, text.as_bytes(), 0o644)?;
    }
    let outputs = manifest::output_entries(out)?;
    let manifest = Manifest::new(
        &plan.recipe.name,
        &plan.version_tag(),
        plan.architectures.iter().map(|a| a.kube().to_owned()),
        plan.source_date_epoch,
        inputs,
        outputs.clone(),
    )
    .with_images(images.source.map(|s| s.name()), &images.kubeadm_list)
    .with_signing(
        signed
            .signing
            .verity
            .as_ref()
            .map(|v| v.cert.sha256.as_str()),
        gpg.map(|g| g.fingerprint.as_str()),
        signed.root_hashes,
    )
    .with_usr_root_hashes(usr_root_hashes);
    manifest::write_manifest(out, &manifest)?;
    manifest::write_sums(out, &outputs)?;
    if let Some(gpg) = gpg {
        gpg.sign(
            &out.join(manifest::SUMS),
            &out.join(manifest::SUMS_SIGNATURE),
        )?;
    }
    Ok(())
}

/// What signed a build, for [`write_top_level`].
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// The signing setup.
    pub signing: &'a Signing,
    /// The signed sysexts: file name → verity root hash.
    pub root_hashes: &'a BTreeMap<String, String>,
}
