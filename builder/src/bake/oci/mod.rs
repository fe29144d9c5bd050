//! Pre-pulled images: pulls images from OCI registries (distribution API, anonymous bearer
//! tokens), picks one platform from multi-arch indexes, verifies every blob's digest into the
//! build cache, and writes one reproducible OCI image-layout archive per image that
//! `ctr -n k8s.io images import` takes as it is (what kiln-firstboot does on the node).
//!
//! Caching: every blob is stored by digest. A reference pinned with `@sha256:` is immutable, so a
//! cached pull never asks the registry again. A tag is resolved once per cache (the cache index
//! records `oci:<reference>` → the digest it served) and not again unless `refresh` is set, so a
//! warm build makes no network request at all; `--refresh` re-resolves tags.
//!
//! Modules: `reference` (parsing and normalizing names), `registry` (the HTTP client), `pull`
//! (resolve, choose platform, verify, cache), `archive` (the tar files and SHA256SUMS).

mod archive;
mod pull;
mod reference;
mod registry;

use std::fmt;
use std::str::FromStr;

pub use archive::write_archives;
pub use pull::pull_all;
pub use reference::Reference;

/// The platform to pull from multi-arch images (`linux/amd64`, `linux/arm64/v8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// Go/OCI architecture name (`amd64`, `arm64`).
    pub arch: String,
    /// CPU variant (`v8`), if one is required.
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/<arch>`.
    pub fn linux(arch: &str) -> Self {
        Platform {
            os: "linux".into(),
            arch: arch.into(),
            variant: None,
        }
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric());
        match parts[..] {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform {
                os: os.into(),
                arch: arch.into(),
                variant: None,
            }),
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => Ok(Platform {
                os: os.into(),
                arch: arch.into(),
                variant: Some(variant.into()),
            }),
            _ => Err(format!(
                "{s:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64"
            )),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// One blob of a pulled image, as an OCI descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Its media type.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
}

impl Blob {
    /// The hex part of the digest.
    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

/// An image pulled into the cache: everything needed to write its archive.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The normalized reference it was pulled by (`registry.k8s.io/pause:3.10`).
    pub reference: Reference,
    /// What the reference resolved to: the index when the image is multi-arch, else the
    /// manifest. containerd names the image after this digest.
    pub target: Blob,
    /// The chosen platform's manifest digest (`sha256:<hex>`).
    pub manifest_digest: String,
    /// Every blob the archive holds, all in the cache: index (if any), the platform's manifest,
    /// its config and layers, then the index's other manifests (without their layers).
    pub blobs: Vec<Blob>,
    /// The sum of the blobs' sizes.
    pub size: u64,
}

impl PulledImage {
    /// The names containerd gets on import (`repo:tag` and `repo@<target digest>`).
    pub fn image_names(&self) -> Vec<String> {
        self.reference.image_names(&self.target.digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_print() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.variant.as_deref(), Some("v8"));
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert_eq!(
            "linux/amd64".parse::<Platform>().unwrap(),
            Platform::linux("amd64")
        );
        assert!("amd64".parse::<Platform>().is_err());
        assert!("linux//x".parse::<Platform>().is_err());
    }
}
