//! Pulling: resolve a reference (cache index first), fetch its manifest or index, choose the
//! platform's manifest, and bring config and layers into the cache — every blob verified against
//! its digest (and size) before it enters the cache. Several images are pulled at once.

use std::collections::BTreeSet;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Deserialize;

use crate::bake::cache::Cache;
use crate::bake::mirror::Mirrors;
use crate::bake::pool;
use kiln_core::digest;

use super::reference::Reference;
use super::registry::Registry;
use super::{Blob, Platform, PulledImage};

/// Images pulled at the same time.
const PARALLEL: usize = 4;

/// Pulls `refs` (duplicates after normalization are pulled once) for `platform` into `cache`,
/// a few at a time, with a progress bar per image on `progress`; returns them in the order
/// given. Tags already resolved in this cache are not asked again unless `refresh`. The first
/// error stops the remaining pulls; blobs already verified stay in the cache.
pub fn pull_all(
    refs: &[String],
    platform: &Platform,
    mirrors: &Mirrors,
    cache: &Cache,
    refresh: bool,
    progress: &MultiProgress,
) -> anyhow::Result<Vec<PulledImage>> {
    let mut seen = BTreeSet::new();
    let mut images = Vec::new();
    for text in refs {
        let reference: Reference = text.parse().map_err(anyhow::Error::msg)?;
        if seen.insert(reference.clone()) {
            images.push(reference);
        }
    }
    let registry = Registry::new(mirrors);
    pool::all(&images, PARALLEL, |image| {
        let bar = progress.add(new_bar(image));
        let puller = Puller {
            registry: &registry,
            cache,
            image,
            bar: &bar,
        };
        let result = puller
            .pull(platform, refresh)
            .with_context(|| format!("pulling image {image}"));
        bar.finish_and_clear();
        progress.remove(&bar);
        result
    })
}

fn new_bar(image: &Reference) -> ProgressBar {
    let bar = ProgressBar::new(0).with_prefix(image.to_string());
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix:40!} [{bar:30}] {bytes:>10}/{total_bytes:10} {binary_bytes_per_sec}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The JSON of a manifest or index: only what kiln reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestJson {
    schema_version: Option<u32>,
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<DescriptorJson>>,
    config: Option<DescriptorJson>,
    #[serde(default)]
    layers: Vec<DescriptorJson>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorJson {
    media_type: String,
    digest: String,
    size: u64,
    platform: Option<PlatformJson>,
}

#[derive(Debug, Clone, Deserialize)]
struct PlatformJson {
    architecture: String,
    os: String,
    variant: Option<String>,
}

impl DescriptorJson {
    fn blob(&self) -> Blob {
        Blob {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
        }
    }
}

struct Puller<'a> {
    registry: &'a Registry,
    cache: &'a Cache,
    image: &'a Reference,
    bar: &'a ProgressBar,
}

impl Puller<'_> {
    fn pull(&self, platform: &Platform, refresh: bool) -> anyhow::Result<PulledImage> {
        let index_key = format!("oci:{}", self.image);
        let target_digest = self.resolve(&index_key, refresh)?;
        let (target_bytes, target) = self.manifest_blob(&target_digest, None)?;
        let target_blob = Blob {
            media_type: media_type(&target),
            digest: target_digest.clone(),
            size: target_bytes.len() as u64,
        };
        let (manifest_bytes, manifest_blob) = match &target.manifests {
            Some(entries) => self.platform_manifest(&target_digest, entries, platform)?,
            None => (target_bytes, target_blob.clone()),
        };
        let manifest = parse_manifest(&manifest_bytes, &manifest_blob, &target_digest)?;
        let mut blobs = Vec::new();
        if target.manifests.is_some() {
            blobs.push(target_blob);
        }
        blobs.push(manifest_blob.clone());
        blobs.extend(self.config_and_layers(&manifest, platform)?);
        blobs.extend(self.other_manifests(&target, &manifest_blob.digest)?);
        let target = blobs[0].clone();
        if self.image.digest.is_none() {
            self.cache
                .index_put(&index_key, target.hex())
                .context("recording the tag's digest in the cache")?;
        }
        Ok(PulledImage {
            reference: self.image.clone(),
            size: blobs.iter().map(|b| b.size).sum(),
            target,
            manifest_digest: manifest_blob.digest,
            blobs,
        })
    }

    /// The manifest of an index for `platform`: its bytes and descriptor.
    fn platform_manifest(
        &self,
        index_digest: &str,
        entries: &[DescriptorJson],
        platform: &Platform,
    ) -> anyhow::Result<(Vec<u8>, Blob)> {
        let entry = choose(entries, platform).ok_or_else(|| {
            anyhow::anyhow!(
                "the image index {index_digest} has no manifest for {platform} (it has: {})",
                platforms(entries)
            )
        })?;
        let (bytes, _) = self.manifest_blob(&entry.digest, Some(entry.size))?;
        Ok((bytes, entry.blob()))
    }

    /// Downloads the manifest's config and layers (verified) and checks the config's platform.
    fn config_and_layers(
        &self,
        manifest: &ManifestJson,
        platform: &Platform,
    ) -> anyhow::Result<Vec<Blob>> {
        let config = manifest.config.as_ref().expect("checked by parse_manifest");
        let parts: Vec<(&str, &DescriptorJson)> = std::iter::once(("config", config))
            .chain(manifest.layers.iter().map(|l| ("layer", l)))
            .collect();
        self.bar.set_length(parts.iter().map(|(_, d)| d.size).sum());
        for (kind, desc) in &parts {
            self.blob(kind, desc)?;
        }
        check_config_platform(self.cache, config, platform)?;
        Ok(parts.iter().map(|(_, d)| d.blob()).collect())
    }

    /// The index's other manifests (small JSON, not their layers): containerd walks every
    /// manifest its platform matcher accepts when importing (on arm64 that includes
    /// linux/arm/v7 and older), and an index whose matching manifest is absent fails to import.
    fn other_manifests(&self, target: &ManifestJson, chosen: &str) -> anyhow::Result<Vec<Blob>> {
        let mut blobs = Vec::new();
        for entry in target.manifests.iter().flatten() {
            if entry.digest != chosen {
                self.manifest_bytes(&entry.digest, Some(entry.size))?;
                blobs.push(entry.blob());
            }
        }
        Ok(blobs)
    }

    /// The digest the reference stands for: its pinned digest, the one this cache recorded for
    /// the tag, or the registry's answer now (stored in the cache, verified against the
    /// registry's `Docker-Content-Digest`).
    fn resolve(&self, index_key: &str, refresh: bool) -> anyhow::Result<String> {
        if let Some(pinned) = &self.image.digest {
            return Ok(pinned.clone());
        }
        if !refresh {
            if let Some(hex) = self.cache.index_get(index_key) {
                return Ok(format!("sha256:{hex}"));
            }
        }
        let tag = self.image.manifest_ref();
        let manifest = self.registry.manifest(self.image, tag)?;
        let expected = manifest
            .digest_header
            .as_deref()
            .map(|d| {
                d.strip_prefix("sha256:")
                    .filter(|h| digest::is_sha256_hex(h))
                    .ok_or_else(|| anyhow::anyhow!("the registry sent Docker-Content-Digest {d:?}"))
            })
            .transpose()?;
        let hex = self
            .cache
            .insert_bytes(&manifest.bytes, expected)
            .with_context(|| format!("manifest of tag {tag}"))?;
        Ok(format!("sha256:{hex}"))
    }

    /// A manifest or index by digest: from the cache, else from the registry, verified.
    fn manifest_blob(
        &self,
        digest: &str,
        size: Option<u64>,
    ) -> anyhow::Result<(Vec<u8>, ManifestJson)> {
        let bytes = self.manifest_bytes(digest, size)?;
        let json: ManifestJson = serde_json::from_slice(&bytes)
            .with_context(|| format!("manifest {digest} is not valid JSON"))?;
        if json.schema_version != Some(2) {
            anyhow::bail!("manifest {digest}: only schemaVersion 2 manifests are supported");
        }
        Ok((bytes, json))
    }

    /// The bytes of a manifest or index by digest (and size, when known): from the cache, else
    /// from the registry, verified before they enter the cache.
    fn manifest_bytes(&self, digest: &str, size: Option<u64>) -> anyhow::Result<Vec<u8>> {
        let hex = hex_of(digest)?;
        let bytes = match self.cache.get_verified(hex)? {
            Some(path) => std::fs::read(&path).with_context(|| format!("{}", path.display()))?,
            None => {
                let manifest = self.registry.manifest(self.image, digest)?;
                if let Some(size) = size {
                    anyhow::ensure!(
                        manifest.bytes.len() as u64 == size,
                        "manifest {digest}: got {} bytes, the index says {size}",
                        manifest.bytes.len()
                    );
                }
                self.cache
                    .insert_bytes(&manifest.bytes, Some(hex))
                    .with_context(|| format!("manifest {digest}"))?;
                manifest.bytes
            }
        };
        Ok(bytes)
    }

    /// A config or layer blob into the cache (unless already there), verified.
    fn blob(&self, kind: &str, desc: &DescriptorJson) -> anyhow::Result<()> {
        let hex = hex_of(&desc.digest)?;
        if self.cache.get_verified(hex)?.is_some() {
            self.bar.inc(desc.size);
            return Ok(());
        }
        let what = format!("{kind} {}", desc.digest);
        let mut writer = self.cache.writer()?;
        self.registry
            .blob(self.image, &desc.digest, desc.size, &mut writer, &|n| {
                self.bar.inc(n)
            })
            .with_context(|| format!("downloading {what}"))?;
        anyhow::ensure!(
            writer.written() == desc.size,
            "{what}: got {} bytes, the manifest says {}",
            writer.written(),
            desc.size
        );
        writer.finish(Some(hex)).with_context(|| what.clone())?;
        Ok(())
    }
}

/// The image manifest in `bytes`: JSON, with a config, not another index.
fn parse_manifest(bytes: &[u8], blob: &Blob, index_digest: &str) -> anyhow::Result<ManifestJson> {
    let manifest: ManifestJson = serde_json::from_slice(bytes)
        .with_context(|| format!("manifest {} is not valid JSON", blob.digest))?;
    if manifest.config.is_none() {
        anyhow::bail!("manifest {} has no config", blob.digest);
    }
    if manifest.manifests.is_some() {
        anyhow::bail!(
            "index {index_digest} points at another index; nested indexes are not supported"
        );
    }
    Ok(manifest)
}

/// The platform's entry in an index: exact variant first, then any variant when none is asked
/// for. Attestation entries (`unknown/unknown`) never match.
fn choose<'a>(entries: &'a [DescriptorJson], want: &Platform) -> Option<&'a DescriptorJson> {
    let candidates: Vec<&DescriptorJson> = entries
        .iter()
        .filter(|e| {
            e.platform
                .as_ref()
                .is_some_and(|p| p.os == want.os && p.architecture == want.arch)
        })
        .collect();
    let variant = |e: &DescriptorJson| e.platform.as_ref().and_then(|p| p.variant.clone());
    match &want.variant {
        Some(v) => candidates
            .iter()
            .find(|e| variant(e).as_deref() == Some(v))
            .or_else(|| {
                // arm64's only variant is v8; images often leave it out.
                (want.arch == "arm64" && v == "v8")
                    .then(|| candidates.iter().find(|e| variant(e).is_none()))
                    .flatten()
            })
            .copied(),
        None => candidates
            .iter()
            .find(|e| variant(e).is_none())
            .or(candidates.first())
            .copied(),
    }
}

fn platforms(entries: &[DescriptorJson]) -> String {
    let names: Vec<String> = entries
        .iter()
        .filter_map(|e| e.platform.as_ref())
        .map(|p| match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        })
        .collect();
    if names.is_empty() {
        "no platforms".into()
    } else {
        names.join(", ")
    }
}

/// A single-platform image must be for the platform asked for.
fn check_config_platform(
    cache: &Cache,
    config: &DescriptorJson,
    want: &Platform,
) -> anyhow::Result<()> {
    #[derive(Deserialize)]
    struct Config {
        architecture: Option<String>,
        os: Option<String>,
    }
    let path = cache
        .get_verified(hex_of(&config.digest)?)?
        .ok_or_else(|| anyhow::anyhow!("config {} vanished from the cache", config.digest))?;
    let parsed: Config = serde_json::from_slice(&std::fs::read(&path)?)
        .with_context(|| format!("config {} is not valid JSON", config.digest))?;
    let (os, arch) = (
        parsed.os.unwrap_or_default(),
        parsed.architecture.unwrap_or_default(),
    );
    anyhow::ensure!(
        os == want.os && arch == want.arch,
        "the image is for {os}/{arch}, not {want}"
    );
    Ok(())
}

/// The media type of a manifest or index: its `mediaType`, else what its fields say.
fn media_type(json: &ManifestJson) -> String {
    match (&json.media_type, &json.manifests) {
        (Some(t), _) => t.clone(),
        (None, Some(_)) => "application/vnd.oci.image.index.v1+json".into(),
        (None, None) => "application/vnd.oci.image.manifest.v1+json".into(),
    }
}

fn hex_of(digest: &str) -> anyhow::Result<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| digest::is_sha256_hex(h))
        .ok_or_else(|| anyhow::anyhow!("{digest:?}: only sha256 digests are supported"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, variant: Option<&str>, digest: &str) -> DescriptorJson {
        DescriptorJson {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: digest.into(),
            size: 1,
            platform: Some(PlatformJson {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(Into::into),
            }),
        }
    }

    #[test]
    fn platform_choice() {
        let entries = vec![
            entry("amd64", None, "a"),
            entry("arm", Some("v7"), "b"),
            entry("arm64", Some("v8"), "c"),
            DescriptorJson {
                platform: Some(PlatformJson {
                    architecture: "unknown".into(),
                    os: "unknown".into(),
                    variant: None,
                }),
                ..entry("amd64", None, "att")
            },
        ];
        let pick = |p: &str| choose(&entries, &p.parse().unwrap()).map(|e| e.digest.clone());
        assert_eq!(pick("linux/amd64").as_deref(), Some("a"));
        assert_eq!(pick("linux/arm64").as_deref(), Some("c"));
        assert_eq!(pick("linux/arm64/v8").as_deref(), Some("c"));
        assert_eq!(pick("linux/arm/v7").as_deref(), Some("b"));
        assert_eq!(pick("linux/arm/v6"), None);
        assert_eq!(pick("linux/s390x"), None);
        let bare_arm64 = vec![entry("arm64", None, "d")];
        assert_eq!(
            choose(&bare_arm64, &"linux/arm64/v8".parse().unwrap()).map(|e| e.digest.as_str()),
            Some("d")
        );
        assert_eq!(platforms(&entries[..2]), "linux/amd64, linux/arm/v7");
    }
}
