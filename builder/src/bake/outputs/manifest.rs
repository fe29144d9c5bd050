//! `manifest.json` (what went in, what came out) and `SHA256SUMS` for an output directory. Both
//! are functions of the inputs only: no build-machine time, host name or path, entries sorted,
//! so two builds of the same recipe write the same bytes.
//!
//! Order in a build: write the outputs, then `manifest.json` (listing them via
//! [`output_entries`]), then [`write_sums`] (listing every file, the manifest too), then, when
//! the build signs, `SHA256SUMS.gpg` ([`SUMS_SIGNATURE`], listed by neither). A
//! systemd-sysupdate source directory needs that `SHA256SUMS` (and for `Verify=yes` its
//! signature).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::bake::arch::Arch;
use kiln_core::digest::sha256_file;

/// The name of the checksum file [`write_sums`] writes.
pub const SUMS: &str = "SHA256SUMS";
/// The detached OpenPGP signature of [`SUMS`] (systemd-sysupdate's `Verify=yes` reads it).
pub const SUMS_SIGNATURE: &str = "SHA256SUMS.gpg";
/// The name of the manifest [`write_manifest`] writes.
pub const MANIFEST: &str = "manifest.json";

/// Everything a build used and made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The kiln version that built it.
    pub kiln_version: String,
    /// The recipe's name (the output name).
    pub name: String,
    /// The Kubernetes release baked.
    pub kubernetes_version: String,
    /// Target architectures (Kubernetes names), sorted.
    pub architectures: Vec<String>,
    /// The timestamp every file in the outputs carries.
    pub source_date_epoch: u64,
    /// Every verified input, sorted by (name, arch, url).
    pub inputs: Vec<Input>,
    /// Every output file, sorted by file name.
    pub outputs: Vec<Output>,
    /// The baked pause image kiln-firstboot pins as containerd's sandbox image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_image: Option<String>,
    /// Who listed kubeadm's images: `kubeadm` (the baked kubeadm, asked at build time with
    /// `kubeadm config images list`) or `table` (kiln's table of releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeadm_images_from: Option<String>,
    /// kubeadm's image list for this release, in kubeadm's order (also images not baked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubeadm_images: Vec<String>,
    /// SHA-256 (hex) of the DER certificate whose key signed the sysexts' verity root hashes
    /// (`kiln build --certificate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_certificate_sha256: Option<String>,
    /// Fingerprint of the OpenPGP key that signed `SHA256SUMS` into `SHA256SUMS.gpg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256sums_gpg_key: Option<String>,
    /// The signed sysexts: file name → dm-verity root hash of their `/usr` partition.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub verity_root_hashes: BTreeMap<String, String>,
    /// The baked images (content tree manifest only): name -> the digest containerd names the
    /// image after (the index of a multi-arch image, else the manifest), which kiln-firstboot
    /// checks containerd's store against.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub image_digests: std::collections::BTreeMap<String, String>,
    /// The dm-verity root hash of the amd64 disk image's /usr (`disk.raw`; hex, `usrhash=` on
    /// its kernel command line), if it has dm-verity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usr_root_hash: Option<String>,
    /// Every disk image's /usr dm-verity root hash: architecture (`arm64`) → root hash.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub usr_root_hashes: BTreeMap<String, String>,
}

/// One input: a release artifact or a pulled image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// What it is (`kubelet`, `containerd`, `registry.k8s.io/pause`).
    pub name: String,
    /// The architecture it is for (Kubernetes name); none for architecture-independent inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Where it came from (before `--mirror` rewriting, so mirrors do not change the manifest).
    pub url: String,
    /// Its version or tag.
    pub version: String,
    /// SHA-256 of the bytes used (for images: the manifest digest's hex).
    pub sha256: String,
}

/// One output file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// File name in the output directory.
    pub file: String,
    /// SHA-256 (hex).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

impl Manifest {
    /// A manifest stamped with this kiln's version.
    pub fn new(
        name: &str,
        kubernetes_version: &str,
        architectures: impl IntoIterator<Item = String>,
        source_date_epoch: u64,
        inputs: Vec<Input>,
        outputs: Vec<Output>,
    ) -> Self {
        Manifest {
            kiln_version: env!("CARGO_PKG_VERSION").to_owned(),
            name: name.to_owned(),
            kubernetes_version: kubernetes_version.to_owned(),
            architectures: architectures.into_iter().collect(),
            source_date_epoch,
            inputs,
            outputs,
            sandbox_image: None,
            kubeadm_images_from: None,
            kubeadm_images: Vec::new(),
            signing_certificate_sha256: None,
            sha256sums_gpg_key: None,
            verity_root_hashes: BTreeMap::new(),
            image_digests: Default::default(),
            usr_root_hash: None,
            usr_root_hashes: BTreeMap::new(),
        }
    }

    /// Records who signed: the verity certificate's SHA-256, the OpenPGP key's fingerprint,
    /// and each signed sysext's root hash.
    pub fn with_signing(
        mut self,
        certificate_sha256: Option<&str>,
        gpg_key: Option<&str>,
        root_hashes: &BTreeMap<String, String>,
    ) -> Self {
        self.signing_certificate_sha256 = certificate_sha256.map(str::to_owned);
        self.sha256sums_gpg_key = gpg_key.map(str::to_owned);
        self.verity_root_hashes = root_hashes.clone();
        self
    }

    /// Records kubeadm's image list and who gave it (`kubeadm` or `table`).
    pub fn with_images(mut self, from: Option<&str>, kubeadm_images: &[String]) -> Self {
        self.kubeadm_images_from = from.map(str::to_owned);
        self.kubeadm_images = kubeadm_images.to_vec();
        self
    }

    /// Records the disk images' /usr dm-verity root hashes (architecture → root hash).
    pub fn with_usr_root_hashes(mut self, hashes: &BTreeMap<String, String>) -> Self {
        self.usr_root_hash = hashes.get(Arch::Amd64.kube()).cloned();
        self.usr_root_hashes = hashes.clone();
        self
    }

    /// Pretty JSON with every list sorted and deduplicated, ending in a newline.
    pub fn to_json(&self) -> String {
        let mut m = self.clone();
        m.architectures.sort();
        m.architectures.dedup();
        m.inputs.sort();
        m.inputs.dedup();
        m.outputs.sort();
        m.outputs.dedup();
        let mut text = serde_json::to_string_pretty(&m).expect("manifest serialises");
        text.push('\n');
        text
    }
}

/// Writes `DIR/manifest.json` atomically (0644).
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    let path = dir.join(MANIFEST);
    kiln_core::fsutil::write_atomic(&path, manifest.to_json().as_bytes(), 0o644)
        .with_context(|| format!("writing {}", path.display()))
}

/// Regular files at the top of `dir` (not symlinks, directories or hidden temp files; not
/// `manifest.json` and `SHA256SUMS`, which describe the others), sorted by name bytes.
fn top_level_files(dir: &Path, skip: &[&str]) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            anyhow::bail!("{}: file name is not UTF-8", entry.path().display());
        };
        if name.starts_with('.') || skip.contains(&name) || !entry.file_type()?.is_file() {
            continue;
        }
        anyhow::ensure!(
            !name.contains(['\n', '\\']),
            "{}: newline or backslash in an output name",
            entry.path().display()
        );
        names.push(name.to_owned());
    }
    // String order is byte order (UTF-8), as LC_ALL=C sorts.
    names.sort();
    Ok(names)
}

/// The output files of `dir` with digest and size, for [`Manifest::outputs`] (hashed a few at
/// a time: a disk image and its conversions are gigabytes each).
pub fn output_entries(dir: &Path) -> anyhow::Result<Vec<Output>> {
    let files = top_level_files(dir, &[MANIFEST, SUMS, SUMS_SIGNATURE])?;
    crate::bake::pool::all(&files, crate::bake::pool::default_jobs(), |file| {
        let path = dir.join(file);
        let size = std::fs::metadata(&path)
            .with_context(|| format!("{}", path.display()))?
            .len();
        Ok(Output {
            sha256: sha256_file(&path)?,
            file: file.clone(),
            size,
        })
    })
}

/// The `SHA256SUMS` text for `dir`: `<hex>  <name>` per regular top-level file (the manifest
/// included), sorted by name as `LC_ALL=C sha256sum *` prints it; the digests of `known`
/// (files already hashed for the manifest) are taken as they are.
pub fn sums(dir: &Path, known: &[Output]) -> anyhow::Result<String> {
    let mut entries = Vec::new();
    for name in top_level_files(dir, &[SUMS, SUMS_SIGNATURE])? {
        let hex = match known.iter().find(|o| o.file == name) {
            Some(o) => o.sha256.clone(),
            None => sha256_file(&dir.join(&name))?,
        };
        entries.push((name, hex));
    }
    Ok(kiln_core::digest::write_sums(entries))
}

/// Writes `DIR/SHA256SUMS` atomically (0644), reusing the digests of `known`.
pub fn write_sums(dir: &Path, known: &[Output]) -> anyhow::Result<()> {
    let text = sums(dir, known)?;
    let path = dir.join(SUMS);
    kiln_core::fsutil::write_atomic(&path, text.as_bytes(), 0o644)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sample() -> Manifest {
        Manifest::new(
            "kubernetes",
            "v1.31.4",
            ["arm64".to_owned(), "amd64".to_owned()],
            1_700_000_000,
            vec![
                Input {
                    name: "kubelet".into(),
                    arch: Some("amd64".into()),
                    url: "https://dl.k8s.io/release/v1.31.4/bin/linux/amd64/kubelet".into(),
                    version: "v1.31.4".into(),
                    sha256: "b".repeat(64),
                },
                Input {
                    name: "kubeadm".into(),
                    arch: Some("amd64".into()),
                    url: "https://dl.k8s.io/release/v1.31.4/bin/linux/amd64/kubeadm".into(),
                    version: "v1.31.4".into(),
                    sha256: "a".repeat(64),
                },
            ],
            vec![],
        )
    }

    #[test]
    fn manifest_is_sorted_pretty_and_round_trips() {
        let m = sample();
        let text = m.to_json();
        assert!(text.ends_with("}\n"));
        let back: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(back.architectures, ["amd64", "arm64"]);
        assert_eq!(back.inputs[0].name, "kubeadm");
        assert_eq!(back.kiln_version, env!("CARGO_PKG_VERSION"));
        // Input order does not change the bytes.
        let mut shuffled = m.clone();
        shuffled.inputs.reverse();
        shuffled.architectures.reverse();
        assert_eq!(shuffled.to_json(), text);
        assert!(text.starts_with("{\n  \"kiln_version\": "), "{text}");
    }

    #[test]
    fn sums_match_sha256sum_and_list_only_top_level_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("kubernetes-v1.31.4-x86-64.raw"), b"image").unwrap();
        std::fs::write(d.join("kubernetes-v1.31.4-arm64.raw"), b"other").unwrap();
        std::fs::write(d.join("Z-upper"), b"z").unwrap();
        std::fs::write(d.join(".partial.tmp-1"), b"x").unwrap();
        std::fs::create_dir(d.join("kubernetes-v1.31.4-x86-64-opt")).unwrap();
        std::fs::write(d.join("kubernetes-v1.31.4-x86-64-opt/inner"), b"x").unwrap();
        std::os::unix::fs::symlink("Z-upper", d.join("link")).unwrap();

        let outputs = output_entries(d).unwrap();
        let files: Vec<&str> = outputs.iter().map(|o| o.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "Z-upper",
                "kubernetes-v1.31.4-arm64.raw",
                "kubernetes-v1.31.4-x86-64.raw"
            ]
        );
        assert_eq!(outputs[2].size, 5);
        write_manifest(
            d,
            &Manifest {
                outputs,
                ..sample()
            },
        )
        .unwrap();
        write_sums(d, &[]).unwrap();

        let text = std::fs::read_to_string(d.join(SUMS)).unwrap();
        let names: Vec<&str> = text.lines().map(|l| &l[66..]).collect();
        assert_eq!(
            names,
            [
                "Z-upper",
                "kubernetes-v1.31.4-arm64.raw",
                "kubernetes-v1.31.4-x86-64.raw",
                "manifest.json"
            ]
        );
        // sha256sum agrees with every line, and prints the same lines in C-locale order.
        let out = Command::new("sha256sum")
            .arg("--check")
            .arg("--strict")
            .arg(SUMS)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let out = Command::new("sha256sum")
            .args(names.iter())
            .current_dir(d)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
        // Rewriting is stable (SHA256SUMS does not list itself).
        write_sums(d, &[]).unwrap();
        assert_eq!(std::fs::read_to_string(d.join(SUMS)).unwrap(), text);
    }

    #[test]
    fn sums_reuse_the_digests_already_made() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("disk.raw"), b"raw").unwrap();
        std::fs::write(d.join("other"), b"other").unwrap();
        let known = [Output {
            file: "disk.raw".into(),
            size: 3,
            sha256: "ab".repeat(32),
        }];
        let text = sums(d, &known).unwrap();
        assert!(
            text.contains(&format!("{}  disk.raw", "ab".repeat(32))),
            "{text}"
        );
        let other = kiln_core::digest::sha256_hex(b"other");
        assert!(text.contains(&format!("{other}  other")), "{text}");
    }
}
