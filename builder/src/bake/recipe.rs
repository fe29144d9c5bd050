//! The recipe format (`images/*.toml`): what to bake, from where, into which outputs.
//!
//! ```toml
//! name = "kubernetes"                 # sysext / output name
//! kubernetes_version = "v1.31.4"
//! architectures = ["amd64"]           # Kubernetes names: amd64, arm64
//!
//! [sources]                           # base URLs; defaults are the official release locations
//! kubernetes = "https://dl.k8s.io/release"
//!
//! [components]                        # optional; omit one to not bake it
//! containerd = "2.0.2"
//! runc = "1.2.4"
//! cni_plugins = "1.6.2"
//! crictl = "1.31.1"
//!
//! [checksums.amd64]                   # pinned SHA-256, wins over the published checksum
//! kubeadm = "…"
//!
//! [images]
//! kubeadm = "control-plane"           # control-plane | node | none
//! extra = ["docker.io/flannel/flannel:v0.26.1"]
//!
//! [outputs]
//! sysext = "squashfs"                 # squashfs | erofs | none
//! opt = true
//! sysupdate_url = "https://example.com/sysext/"  # optional: writes NAME.conf for sysupdate
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use kiln_core::version::KubeVersion;
use serde::Deserialize;

pub use super::arch::Arch;
use super::oci::Reference;
use super::outputs::disk::plan::{Disk, DiskPlan, Rootfs};
pub use super::outputs::sysext::SysextFormat;

/// A parsed, validated recipe.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// The extension / output name (`kubernetes` → `kubernetes-v1.31.4-x86-64.raw`).
    #[serde(default = "default_name")]
    pub name: String,
    /// The Kubernetes release to bake (`v1.31.4`).
    pub kubernetes_version: String,
    /// Target architectures, in Kubernetes' names.
    #[serde(default = "default_architectures")]
    pub architectures: Vec<Arch>,
    /// Timestamp for every file in the outputs; `SOURCE_DATE_EPOCH` in the environment wins.
    #[serde(default)]
    pub source_date_epoch: Option<u64>,
    /// Base URLs of the artifact sources.
    #[serde(default)]
    pub sources: Sources,
    /// Versions of the optional components to bake.
    #[serde(default)]
    pub components: Components,
    /// Pinned SHA-256 digests per architecture and artifact name.
    #[serde(default)]
    pub checksums: BTreeMap<Arch, BTreeMap<String, String>>,
    /// Images to pre-pull.
    #[serde(default)]
    pub images: Images,
    /// Outputs to produce.
    #[serde(default)]
    pub outputs: Outputs,
    /// A directory (relative to the recipe) whose files are added to every content tree after
    /// kiln's own (site units, certificates, hooks), with paths as in the sysext (`usr/...`).
    #[serde(default)]
    pub overlay: Option<PathBuf>,
    /// The Debian root of a disk image (with `[disk]`: `kiln build` writes a bootable disk).
    #[serde(default)]
    pub rootfs: Option<Rootfs>,
    /// The disk image around it.
    #[serde(default)]
    pub disk: Option<Disk>,
}

fn default_name() -> String {
    "kubernetes".into()
}

fn default_architectures() -> Vec<Arch> {
    vec![Arch::Amd64]
}

/// Base URLs of artifact sources.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sources {
    /// Kubernetes release layout: `BASE/vX.Y.Z/bin/linux/ARCH/NAME` with `NAME.sha256`.
    pub kubernetes: String,
    /// containerd release tarballs.
    pub containerd: String,
    /// runc release binaries.
    pub runc: String,
    /// CNI plugins release tarballs.
    pub cni_plugins: String,
    /// crictl (cri-tools) release tarballs.
    pub crictl: String,
}

impl Default for Sources {
    fn default() -> Self {
        Sources {
            kubernetes: "https://dl.k8s.io/release".into(),
            containerd: "https://github.com/containerd/containerd/releases/download".into(),
            runc: "https://github.com/opencontainers/runc/releases/download".into(),
            cni_plugins: "https://github.com/containernetworking/plugins/releases/download".into(),
            crictl: "https://github.com/kubernetes-sigs/cri-tools/releases/download".into(),
        }
    }
}

/// Versions of the optional components (without a leading `v`; omitted = not baked).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Components {
    /// containerd (release tarball: binaries to usr/bin, plus containerd.service).
    pub containerd: Option<String>,
    /// runc.
    pub runc: Option<String>,
    /// CNI plugins.
    pub cni_plugins: Option<String>,
    /// crictl.
    pub crictl: Option<String>,
}

/// Which of kubeadm's images to pre-pull.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KubeadmImages {
    /// Every image `kubeadm config images list` prints.
    #[default]
    ControlPlane,
    /// What every node runs: pause and kube-proxy.
    Node,
    /// None.
    None,
}

/// Images to pre-pull.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Images {
    /// kubeadm's own images for `kubernetes_version`.
    #[serde(default)]
    pub kubeadm: KubeadmImages,
    /// kubeadm's `imageRepository` (default `registry.k8s.io`).
    #[serde(default)]
    pub repository: Option<String>,
    /// Further images (`registry/name:tag` or `…@sha256:…`).
    #[serde(default)]
    pub extra: Vec<String>,
}

/// Outputs to produce.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Outputs {
    /// The sysext image and its filesystem.
    pub sysext: SysextFormat,
    /// The /opt tree.
    pub opt: bool,
    /// `ID=` of the sysext's extension-release: `_any` (any host) or the host's os-release ID.
    pub sysext_id: String,
    /// `SYSEXT_LEVEL=` (default 1.0), compared with the host's when `sysext_id` is not `_any`.
    pub sysext_level: Option<String>,
    /// `VERSION_ID=` instead of `SYSEXT_LEVEL=`: the host's exact OS version.
    pub sysext_version_id: Option<String>,
    /// Where the sysext images will be published: writes a systemd-sysupdate transfer file
    /// (`NAME.conf`) that follows patch releases of the same minor from there.
    pub sysupdate_url: Option<String>,
}

impl Default for Outputs {
    fn default() -> Self {
        Outputs {
            sysext: SysextFormat::Squashfs,
            opt: true,
            sysupdate_url: None,
            sysext_id: "_any".into(),
            sysext_level: None,
            sysext_version_id: None,
        }
    }
}

impl Recipe {
    /// Reads and validates the recipe at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading recipe {}", path.display()))?;
        let mut recipe =
            Self::parse(&text).with_context(|| format!("recipe {}", path.display()))?;
        if let Some(overlay) = &recipe.overlay {
            let dir = path.parent().unwrap_or(Path::new(".")).join(overlay);
            if !dir.is_dir() {
                anyhow::bail!(
                    "recipe {}: overlay {}: not a directory",
                    path.display(),
                    dir.display()
                );
            }
            recipe.overlay = Some(dir);
        }
        Ok(recipe)
    }

    /// The disk image plan, when the recipe has `[rootfs]` and `[disk]`.
    pub fn disk_plan(&self) -> anyhow::Result<Option<DiskPlan>> {
        match (&self.rootfs, &self.disk) {
            (Some(rootfs), Some(disk)) => Ok(Some(DiskPlan::new(rootfs.clone(), disk.clone())?)),
            (None, None) => Ok(None),
            _ => anyhow::bail!("a disk image needs both [rootfs] and [disk]; the recipe has one"),
        }
    }

    /// Parses and validates recipe text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let recipe: Recipe = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!("{}", e.message().trim_end()).context(location(text, e.span()))
        })?;
        recipe.validate()?;
        Ok(recipe)
    }

    /// The Kubernetes version, parsed.
    /// A recipe names an exact release, so that a build means the same thing tomorrow; `1.36`
    /// is refused with the release it would mean today.
    pub fn kube_version(&self) -> anyhow::Result<KubeVersion> {
        let text = &self.kubernetes_version;
        text.parse().map_err(|e| {
            match kiln_core::images::table::resolve(text) {
                Ok(v) => anyhow::anyhow!(
                    "kubernetes_version {text:?}: name an exact release so the recipe always builds the same; the newest {text} kiln knows is {v}"
                ),
                Err(_) => anyhow::anyhow!("kubernetes_version {text:?}: {e}"),
            }
        })
    }

    /// Checks the recipe field group by field group, reporting the first problem.
    fn validate(&self) -> anyhow::Result<()> {
        self.check_name()?;
        self.kube_version()?;
        if self.architectures.is_empty() {
            anyhow::bail!("architectures: list at least one (amd64, arm64)");
        }
        self.check_components()?;
        self.check_checksums()?;
        self.check_sources()?;
        self.check_images()?;
        self.check_sysext_identity()?;
        self.check_outputs()
    }

    /// The name names the sysext image: a DNS label (no dots).
    fn check_name(&self) -> anyhow::Result<()> {
        if !kiln_core::names::is_dns1123_subdomain(&self.name) || self.name.contains('.') {
            anyhow::bail!(
                "name {:?}: use lower-case letters, digits and '-' (it names the sysext image)",
                self.name
            );
        }
        Ok(())
    }

    fn check_components(&self) -> anyhow::Result<()> {
        for (field, version) in [
            ("components.containerd", &self.components.containerd),
            ("components.runc", &self.components.runc),
            ("components.cni_plugins", &self.components.cni_plugins),
            ("components.crictl", &self.components.crictl),
        ] {
            if let Some(v) = version {
                check_component_version(field, v)?;
            }
        }
        Ok(())
    }

    fn check_checksums(&self) -> anyhow::Result<()> {
        for (arch, sums) in &self.checksums {
            for (artifact, hex) in sums {
                if !kiln_core::digest::is_sha256_hex(hex) {
                    anyhow::bail!(
                        "checksums.{}.{artifact}: {hex:?} is not a SHA-256 (64 hex characters)",
                        arch.kube()
                    );
                }
            }
        }
        Ok(())
    }

    fn check_sources(&self) -> anyhow::Result<()> {
        for (field, url) in [
            ("sources.kubernetes", &self.sources.kubernetes),
            ("sources.containerd", &self.sources.containerd),
            ("sources.runc", &self.sources.runc),
            ("sources.cni_plugins", &self.sources.cni_plugins),
            ("sources.crictl", &self.sources.crictl),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                anyhow::bail!("{field}: {url:?} must be an http:// or https:// base URL");
            }
        }
        Ok(())
    }

    /// Every image reference parses (and the repository is one kubeadm takes), so a typo is
    /// found before any download rather than after all of them.
    fn check_images(&self) -> anyhow::Result<()> {
        if let Some(repository) = &self.images.repository {
            kiln_core::images::repository(Some(repository)).context("images.repository")?;
            // kubeadm's images are named REPOSITORY/NAME:TAG.
            format!("{repository}/pause:3.10")
                .parse::<Reference>()
                .map_err(|e| anyhow::anyhow!("images.repository {repository:?}: {e}"))?;
        }
        for (i, image) in self.images.extra.iter().enumerate() {
            image
                .parse::<Reference>()
                .map_err(|e| anyhow::anyhow!("images.extra[{i}]: {e}"))?;
        }
        Ok(())
    }

    /// The sysext's extension-release values: one of level or version id, os-release syntax.
    fn check_sysext_identity(&self) -> anyhow::Result<()> {
        let o = &self.outputs;
        if o.sysext_level.is_some() && o.sysext_version_id.is_some() {
            anyhow::bail!("outputs: set sysext_level or sysext_version_id, not both");
        }
        for (field, value) in [
            ("outputs.sysext_id", Some(&o.sysext_id)),
            ("outputs.sysext_level", o.sysext_level.as_ref()),
            ("outputs.sysext_version_id", o.sysext_version_id.as_ref()),
        ] {
            if let Some(v) = value.filter(|v| !is_os_release_value(v)) {
                anyhow::bail!("{field}: {v:?}: use 0-9, a-z, '.', '_', '-' (os-release(5))");
            }
        }
        Ok(())
    }

    /// Something to build.
    fn check_outputs(&self) -> anyhow::Result<()> {
        let disk = self.disk_plan()?;
        if self.outputs.sysext == SysextFormat::None && !self.outputs.opt && disk.is_none() {
            anyhow::bail!("outputs: nothing to build; set outputs.sysext or outputs.opt, or add [rootfs] and [disk]");
        }
        Ok(())
    }
}

/// An os-release(5) identifier value: not empty, only 0-9, a-z, '.', '_' and '-'.
fn is_os_release_value(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
}

fn check_component_version(field: &str, version: &str) -> anyhow::Result<()> {
    let ok = !version.is_empty()
        && !version.starts_with('v')
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !ok {
        anyhow::bail!(
            "{field}: {version:?} must be a release version without a leading v, e.g. 1.7.24"
        );
    }
    Ok(())
}

/// "line N" for a TOML error span.
fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => format!(
            "line {}",
            text[..span.start.min(text.len())].lines().count().max(1)
        ),
        None => "recipe".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "kubernetes_version = \"v1.31.4\"\n";

    #[test]
    fn os_release_values() {
        for ok in ["kubernetes", "1.31_4-a", "0"] {
            assert!(is_os_release_value(ok), "{ok}");
        }
        for bad in ["", "Kubernetes", "a b", "a/b"] {
            assert!(!is_os_release_value(bad), "{bad}");
        }
    }

    #[test]
    fn minimal_recipe_gets_official_defaults() {
        let r = Recipe::parse(MINIMAL).unwrap();
        assert_eq!(r.name, "kubernetes");
        assert_eq!(r.architectures, vec![Arch::Amd64]);
        assert_eq!(r.sources.kubernetes, "https://dl.k8s.io/release");
        assert_eq!(r.images.kubeadm, KubeadmImages::ControlPlane);
        assert_eq!(r.outputs.sysext, SysextFormat::Squashfs);
        assert!(r.components.containerd.is_none());
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        for (text, needle) in [
            (
                "kubernetes_version = \"v1.31.4\"\nkubernetes_verison = 1\n",
                "kubernetes_verison",
            ),
            ("kubernetes_version = \"1.x\"\n", "kubernetes_version"),
            (
                "kubernetes_version = \"v1.31.4\"\narchitectures = [\"s390x\"]\n",
                "s390x",
            ),
            (
                "kubernetes_version = \"v1.31.4\"\n[checksums.amd64]\nkubeadm = \"abc\"\n",
                "checksums.amd64.kubeadm",
            ),
            (
                "kubernetes_version = \"v1.31.4\"\n[components]\nrunc = \"v1.2\"\n",
                "components.runc",
            ),
            (
                "kubernetes_version = \"v1.31.4\"\n[sources]\nrunc = \"ftp://x\"\n",
                "sources.runc",
            ),
            (
                "kubernetes_version = \"v1.31.4\"\nname = \"Bad_Name\"\n",
                "name",
            ),
            (
                "kubernetes_version = \"v1.31.4\"\n[images]\nextra = [\"registry.k8s.io/pause:3.10\", \"Docker.io/Bad:tag\"]\n",
                "images.extra[1]: image reference \"Docker.io/Bad:tag\"",
            ),
            (
                "kubernetes_version = \"v1.31.4\"\n[images]\nextra = [\"ghcr.io/a/b@sha256:123\"]\n",
                "images.extra[0]",
            ),
        ] {
            let err = format!("{:#}", Recipe::parse(text).unwrap_err());
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn shipped_recipes_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Recipe::load(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                seen += 1;
            }
        }
        assert!(seen >= 1);
    }
}
