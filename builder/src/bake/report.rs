//! `kiln build --report FILE`: what a finished build produced, as JSON for the next step of a
//! pipeline (every output with format, architecture, size and SHA-256; the Kubernetes version;
//! the image list and who listed it; the /usr root hash; seconds per phase). Keys are stable
//! (`report_version` changes when one does) and documented in README.md.

use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::outputs::disk::arch::DiskArch;
use super::outputs::disk::Format;
use super::outputs::manifest::{self, Manifest};
use super::phases::Phase;
use super::plan::Plan;
use super::recipe::Arch;

/// The version of the report's keys.
pub const REPORT_VERSION: u32 = 1;

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// [`REPORT_VERSION`].
    pub report_version: u32,
    /// The kiln that built it.
    pub kiln_version: String,
    /// The recipe's name.
    pub name: String,
    /// The output directory, as given to `--out`.
    pub out: String,
    /// The Kubernetes release baked (`v1.31.4`).
    pub kubernetes_version: String,
    /// The architectures built (Kubernetes names).
    pub architectures: Vec<String>,
    /// Every file in the output directory, sorted by path.
    pub outputs: Vec<Output>,
    /// kubeadm's image list and the images baked.
    pub images: Images,
    /// The dm-verity root hash of the amd64 disk's read-only /usr (`usrhash=`), when it has one
    /// (every architecture's: manifest.json's `usr_root_hashes`).
    pub usr_root_hash: Option<String>,
    /// SHA-256 of the certificate whose key signed the sysexts' verity root hashes (only in
    /// the reports of signed builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_certificate_sha256: Option<String>,
    /// Fingerprint of the OpenPGP key that signed `SHA256SUMS` into `SHA256SUMS.gpg` (only in
    /// the reports of signed builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256sums_gpg_key: Option<String>,
    /// Seconds per phase, in the order the phases finished.
    pub phases: Vec<Phase>,
}

/// One output file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Path relative to the output directory (`disk.vhd`, `pxe/vmlinuz`).
    pub path: String,
    /// What it is: a disk format (`raw`, `qcow2`, `vhd`, `vhdx`, `vmdk`, `gce`), `sysext`,
    /// `opt-tar`, `pxe`, `sysupdate`, `manifest`, `sha256sums` or `other`.
    pub format: String,
    /// Its architecture (Kubernetes name), none for architecture-independent files.
    pub architecture: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 (hex).
    pub sha256: String,
}

/// The images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Images {
    /// Who listed kubeadm's images: `kubeadm` (the baked kubeadm), `table` (kiln's table), or
    /// none (the recipe bakes none of them).
    pub kubeadm_list_from: Option<String>,
    /// kubeadm's image list for the release, in kubeadm's order.
    pub kubeadm_list: Vec<String>,
    /// The images baked, `REFERENCE@sha256:DIGEST`, per architecture, sorted.
    pub baked: Vec<BakedImage>,
}

/// One baked image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BakedImage {
    /// `registry.k8s.io/pause:3.10`.
    pub reference: String,
    /// Kubernetes architecture name.
    pub architecture: Option<String>,
    /// The manifest digest (`sha256:...`).
    pub digest: String,
}

impl Report {
    /// The report of the build of `plan` published at `out`, from its `manifest.json`.
    pub fn of_build(plan: &Plan, out: &Path, phases: Vec<Phase>) -> anyhow::Result<Report> {
        let path = out.join(manifest::MANIFEST);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let manifest: Manifest =
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        let outputs = outputs(plan, out, &manifest)?;
        let baked = baked_images(&manifest);
        Ok(Report {
            report_version: REPORT_VERSION,
            kiln_version: manifest.kiln_version,
            name: manifest.name,
            out: out.display().to_string(),
            kubernetes_version: manifest.kubernetes_version,
            architectures: manifest.architectures,
            outputs,
            images: Images {
                kubeadm_list_from: manifest.kubeadm_images_from,
                kubeadm_list: manifest.kubeadm_images,
                baked,
            },
            usr_root_hash: manifest.usr_root_hash,
            signing_certificate_sha256: manifest.signing_certificate_sha256,
            sha256sums_gpg_key: manifest.sha256sums_gpg_key,
            phases,
        })
    }

    /// Pretty JSON ending in a newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("report serialises");
        text.push('\n');
        text
    }

    /// Writes the report to `path` atomically (0644).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        kiln_core::fsutil::write_atomic(path, self.to_json().as_bytes(), 0o644)
            .with_context(|| format!("writing the report {}", path.display()))
    }
}

/// Every output of the build at `out`: the manifest's, the manifest and sums files themselves,
/// the PXE files; by path.
fn outputs(plan: &Plan, out: &Path, manifest: &Manifest) -> anyhow::Result<Vec<Output>> {
    let mut outputs: Vec<Output> = manifest
        .outputs
        .iter()
        .map(|o| {
            let (format, architecture) = classify(plan, &o.file);
            Output {
                path: o.file.clone(),
                format: format.to_owned(),
                architecture: architecture.map(|a| a.kube().to_owned()),
                size: o.size,
                sha256: o.sha256.clone(),
            }
        })
        .collect();
    for (file, format) in [
        (manifest::MANIFEST, "manifest"),
        (manifest::SUMS, "sha256sums"),
        (manifest::SUMS_SIGNATURE, "sha256sums-signature"),
    ] {
        if file != manifest::SUMS_SIGNATURE || out.join(file).is_file() {
            outputs.push(file_entry(out, file, format, None)?);
        }
    }
    if plan.disk.as_ref().is_some_and(|d| d.disk.pxe) {
        for &arch in &plan.architectures {
            outputs.extend(pxe_entries(out, arch)?);
        }
    }
    outputs.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(outputs)
}

/// The container images baked in, from the manifest's `docker://` inputs.
fn baked_images(manifest: &Manifest) -> Vec<BakedImage> {
    manifest
        .inputs
        .iter()
        .filter(|i| i.url.starts_with("docker://"))
        .map(|i| BakedImage {
            reference: i.name.clone(),
            architecture: i.arch.clone(),
            digest: format!("sha256:{}", i.sha256),
        })
        .collect()
}

/// The PXE files of `arch` in `out` (`pxe/vmlinuz`, `pxe-arm64/vmlinuz`, ...).
fn pxe_entries(out: &Path, arch: Arch) -> anyhow::Result<Vec<Output>> {
    let dir = DiskArch::of(arch).output_name("pxe");
    let mut entries = Vec::new();
    for name in ["vmlinuz", "initrd", "cmdline", "boot.ipxe"] {
        let file = format!("{dir}/{name}");
        if out.join(&file).is_file() {
            entries.push(file_entry(out, &file, "pxe", Some(arch))?);
        }
    }
    Ok(entries)
}

/// What the output file `file` of `plan` is, and for which architecture.
fn classify(plan: &Plan, file: &str) -> (&'static str, Option<Arch>) {
    for &arch in &plan.architectures {
        let named = |f: &Format| DiskArch::of(arch).output_name(f.file()) == file;
        if let Some(format) = super::outputs::disk::formats::ALL.iter().find(|f| named(f)) {
            return (format.name(), Some(arch));
        }
    }
    for &arch in &plan.architectures {
        if file == plan.sysext_name(arch) {
            return ("sysext", Some(arch));
        }
        let opt = format!(
            "{}-{}-{}-opt.tar",
            plan.recipe.name,
            plan.version_tag(),
            arch.systemd()
        );
        if file == opt {
            return ("opt-tar", Some(arch));
        }
    }
    if file == super::outputs::sysupdate::file_name(&plan.recipe.name) {
        return ("sysupdate", None);
    }
    ("other", None)
}

fn file_entry(out: &Path, file: &str, format: &str, arch: Option<Arch>) -> anyhow::Result<Output> {
    let path = out.join(file);
    Ok(Output {
        path: file.to_owned(),
        format: format.to_owned(),
        architecture: arch.map(|a| a.kube().to_owned()),
        size: std::fs::metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .len(),
        sha256: kiln_core::digest::sha256_file(&path)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bake::outputs::manifest::Input;
    use crate::bake::recipe::Recipe;

    const RECIPE: &str = r#"
kubernetes_version = "v1.31.4"
architectures = ["amd64"]
[rootfs]
suite = "bookworm"
mirror = "http://deb.debian.org/debian"
packages = ["systemd-sysv", "linux-image-amd64", "initramfs-tools", "systemd-boot-efi"]
[disk]
size = "3G"
formats = ["raw", "vhd", "gce"]
"#;

    #[test]
    fn arm64_disk_outputs_are_named_and_classified_as_arm64() {
        let both = RECIPE.replace("[\"amd64\"]", "[\"amd64\", \"arm64\"]");
        let runnable = [Arch::Amd64, Arch::Arm64];
        let plan = Plan::new(Recipe::parse(&both).unwrap(), &[], None, &runnable).unwrap();
        let arm64 = Some(Arch::Arm64);
        assert_eq!(classify(&plan, "disk-arm64.raw"), ("raw", arm64));
        assert_eq!(classify(&plan, "disk-arm64-gce.tar.gz"), ("gce", arm64));
        assert_eq!(classify(&plan, "disk.vhd"), ("vhd", Some(Arch::Amd64)));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pxe-arm64")).unwrap();
        std::fs::write(dir.path().join("pxe-arm64/vmlinuz"), "k").unwrap();
        let pxe = pxe_entries(dir.path(), Arch::Arm64).unwrap();
        assert_eq!(pxe.len(), 1);
        assert_eq!(pxe[0].path, "pxe-arm64/vmlinuz");
        assert_eq!(pxe[0].architecture.as_deref(), Some("arm64"));
    }

    #[test]
    fn report_lists_every_output_with_stable_keys() {
        let plan = Plan::new(Recipe::parse(RECIPE).unwrap(), &[], None, &[]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("pxe")).unwrap();
        let sysext = plan.sysext_name(Arch::Amd64);
        for file in [
            "disk.raw",
            "disk.vhd",
            "disk-gce.tar.gz",
            sysext.as_str(),
            "odd",
        ] {
            std::fs::write(out.join(file), file).unwrap();
        }
        for file in ["vmlinuz", "initrd", "cmdline", "boot.ipxe"] {
            std::fs::write(out.join("pxe").join(file), file).unwrap();
        }
        let image = Input {
            name: "registry.k8s.io/pause:3.10".into(),
            arch: Some("amd64".into()),
            url: "docker://registry.k8s.io/pause:3.10".into(),
            version: "3.10".into(),
            sha256: "c".repeat(64),
        };
        let manifest = Manifest::new(
            &plan.recipe.name,
            &plan.version_tag(),
            ["amd64".to_owned()],
            0,
            vec![image],
            manifest::output_entries(&out).unwrap(),
        )
        .with_images(Some("kubeadm"), &["registry.k8s.io/pause:3.10".to_owned()]);
        manifest::write_manifest(&out, &manifest).unwrap();
        manifest::write_sums(&out, &[]).unwrap();
        let phases = vec![Phase {
            name: "download".into(),
            seconds: 1.25,
        }];
        let report = Report::of_build(&plan, &out, phases).unwrap();
        let path = dir.path().join("report.json");
        report.write(&path).unwrap();
        let value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut expected = [
            "report_version",
            "kiln_version",
            "name",
            "out",
            "kubernetes_version",
            "architectures",
            "outputs",
            "images",
            "usr_root_hash",
            "phases",
        ];
        expected.sort();
        let mut keys = keys;
        keys.sort();
        assert_eq!(keys, expected);
        assert_eq!(value["report_version"], 1);
        assert_eq!(value["kubernetes_version"], "v1.31.4");
        assert!(value["usr_root_hash"].is_null());
        assert_eq!(value["phases"][0]["name"], "download");
        assert_eq!(value["phases"][0]["seconds"], 1.25);
        assert_eq!(value["images"]["kubeadm_list_from"], "kubeadm");
        assert_eq!(
            value["images"]["baked"][0]["digest"],
            format!("sha256:{}", "c".repeat(64))
        );
        let formats: Vec<(String, String, Option<String>)> = report
            .outputs
            .iter()
            .map(|o| (o.path.clone(), o.format.clone(), o.architecture.clone()))
            .collect();
        let amd64 = || Some("amd64".to_owned());
        let expect = |p: &str, f: &str, a: Option<String>| (p.to_owned(), f.to_owned(), a);
        assert_eq!(
            formats,
            [
                expect("SHA256SUMS", "sha256sums", None),
                expect("disk-gce.tar.gz", "gce", amd64()),
                expect("disk.raw", "raw", amd64()),
                expect("disk.vhd", "vhd", amd64()),
                expect(&sysext, "sysext", amd64()),
                expect("manifest.json", "manifest", None),
                expect("odd", "other", None),
                expect("pxe/boot.ipxe", "pxe", amd64()),
                expect("pxe/cmdline", "pxe", amd64()),
                expect("pxe/initrd", "pxe", amd64()),
                expect("pxe/vmlinuz", "pxe", amd64()),
            ]
        );
        let raw = report
            .outputs
            .iter()
            .find(|o| o.path == "disk.raw")
            .unwrap();
        assert_eq!(raw.size, 8);
        assert_eq!(raw.sha256, kiln_core::digest::sha256_hex(b"disk.raw"));
        let back: Report = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(back, report);
    }
}
