//! Recipe → plan: every artifact with the URL it comes from, where its checksum comes from and
//! where its files go in the content tree; every image to pull; every output. Pure: no network,
//! no files. `kiln build --dry-run` prints it.

use std::fmt;

use kiln_core::version::KubeVersion;

use super::images::{ImagePlan, ListSource};
use super::outputs::disk::DiskPlan;
use super::recipe::{Arch, Recipe};

/// Artifact names the recipe's `[checksums.ARCH]` tables may pin.
pub const ARTIFACT_NAMES: &[&str] = &[
    "kubeadm",
    "kubelet",
    "kubectl",
    "containerd",
    "runc",
    "cni_plugins",
    "crictl",
];

/// Where an artifact's expected SHA-256 comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// Pinned in the recipe (wins over the published one).
    Pinned(String),
    /// A checksum file published beside the artifact: one bare digest, or `HEX  NAME` lines
    /// (sha256sum format) of which the one for `file_name` counts.
    Published {
        /// The checksum file's URL.
        url: String,
        /// The artifact's file name in that list.
        file_name: String,
    },
}

/// How an artifact's bytes become files in the content tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Install {
    /// A single executable, installed at this tree path with mode 0755.
    Binary(String),
    /// A gzip tarball: every regular file under `prefix` inside it goes to `dest_dir` (0755),
    /// keeping its name; `only` limits it to the listed names.
    Tarball {
        /// Directory inside the tarball (`bin/`, `` for the top level).
        prefix: String,
        /// Directory in the tree.
        dest_dir: String,
        /// If not empty, only these file names.
        only: Vec<String>,
    },
}

/// One download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The name used in `[checksums.ARCH]` and the manifest (`kubeadm`, `cni_plugins`, …).
    pub name: &'static str,
    /// Target architecture.
    pub arch: Arch,
    /// Release version (as in the URL, with `v` where the project uses it).
    pub version: String,
    /// The official URL (before `--mirror`).
    pub url: String,
    /// Where the expected digest comes from.
    pub checksum: Checksum,
    /// Where it goes in the tree.
    pub install: Install,
}

/// Everything `kiln build` will do for a recipe, decided up front.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The validated recipe.
    pub recipe: Recipe,
    /// Its Kubernetes version.
    pub version: KubeVersion,
    /// Architectures to build, in order.
    pub architectures: Vec<Arch>,
    /// Downloads, in a stable order (architecture, then recipe order).
    pub artifacts: Vec<Artifact>,
    /// The images to pre-pull for every architecture, and who lists kubeadm's.
    pub images: ImagePlan,
    /// The timestamp every output file carries.
    pub source_date_epoch: u64,
    /// The disk image (every architecture's), if the recipe has `[rootfs]` and `[disk]`.
    pub disk: Option<DiskPlan>,
}

impl Plan {
    /// Decides the build for `recipe`, limited to `only_archs` when not empty; `runnable` are
    /// the architectures whose programs the build machine executes (for asking kubeadm).
    pub fn new(
        recipe: Recipe,
        only_archs: &[Arch],
        source_date_epoch: Option<u64>,
        runnable: &[Arch],
    ) -> anyhow::Result<Self> {
        let version = recipe.kube_version()?;
        check_pinned_names(&recipe)?;
        let architectures = selected_architectures(&recipe, only_archs)?;
        let artifacts = architectures
            .iter()
            .flat_map(|&arch| artifacts_for(&recipe, &version, arch))
            .collect();
        let images = ImagePlan::new(&recipe, &version, &architectures, runnable)?;
        if let Some(url) = &recipe.outputs.sysupdate_url {
            super::outputs::sysupdate::transfer(&recipe.name, &version.to_string(), url, false)?;
        }
        let source_date_epoch = source_date_epoch.or(recipe.source_date_epoch).unwrap_or(0);
        let disk = recipe.disk_plan()?;
        if let (Some(_), Some(arch)) = (
            &disk,
            architectures
                .iter()
                .find(|&&a| Some(a) != Arch::host() && !runnable.contains(&a)),
        ) {
            anyhow::bail!(
                "[disk]: a disk image for {0} needs a Debian root for {0}, whose programs this machine cannot run: register qemu-user for {0} in binfmt_misc (Debian: apt install qemu-user-static arch-test; it registers {1}), build on an {0} machine, or build with --arch {2}",
                arch.kube(),
                super::images::binfmt_name(*arch),
                Arch::host().unwrap_or(Arch::Amd64).kube()
            );
        }
        Ok(Plan {
            recipe,
            version,
            architectures,
            artifacts,
            images,
            source_date_epoch,
            disk,
        })
    }

    /// The version string used in output names (`v1.31.4`).
    pub fn version_tag(&self) -> String {
        self.version.to_string()
    }

    /// The sysext file name for `arch` (`kubernetes-v1.31.4-x86-64.raw`).
    pub fn sysext_name(&self, arch: Arch) -> String {
        format!(
            "{}-{}-{}.raw",
            self.recipe.name,
            self.version_tag(),
            arch.systemd()
        )
    }
}

/// The recipe's architectures, or `only_archs` (`--arch`) when given, each of which the
/// recipe must build.
fn selected_architectures(recipe: &Recipe, only_archs: &[Arch]) -> anyhow::Result<Vec<Arch>> {
    if only_archs.is_empty() {
        return Ok(recipe.architectures.clone());
    }
    for arch in only_archs {
        if !recipe.architectures.contains(arch) {
            anyhow::bail!(
                "--arch {}: the recipe builds only {}",
                arch.kube(),
                names(&recipe.architectures)
            );
        }
    }
    Ok(only_archs.to_vec())
}

fn names(archs: &[Arch]) -> String {
    archs
        .iter()
        .map(|a| a.kube())
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_pinned_names(recipe: &Recipe) -> anyhow::Result<()> {
    for (arch, sums) in &recipe.checksums {
        for name in sums.keys() {
            if !ARTIFACT_NAMES.contains(&name.as_str()) {
                anyhow::bail!(
                    "checksums.{}.{name}: unknown artifact; pin one of {}",
                    arch.kube(),
                    ARTIFACT_NAMES.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// The downloads for `arch`: kubeadm, kubelet and kubectl, then each component the recipe sets.
fn artifacts_for(recipe: &Recipe, version: &KubeVersion, arch: Arch) -> Vec<Artifact> {
    let (src, c, a) = (&recipe.sources, &recipe.components, arch.kube());
    let mut downloads = kube_downloads(&src.kubernetes, &version.to_string(), a);
    downloads.extend(
        c.containerd
            .as_deref()
            .map(|v| containerd(&src.containerd, v, a)),
    );
    downloads.extend(c.runc.as_deref().map(|v| runc(&src.runc, v, a)));
    downloads.extend(
        c.cni_plugins
            .as_deref()
            .map(|v| cni_plugins(&src.cni_plugins, v, a)),
    );
    downloads.extend(c.crictl.as_deref().map(|v| crictl(&src.crictl, v, a)));
    (downloads.into_iter())
        .map(|d| d.into_artifact(recipe, arch))
        .collect()
}

/// One download before its checksum source is decided.
struct Download {
    name: &'static str,
    version: String,
    url: String,
    /// The published checksum file, when not `URL.sha256`.
    sums: Option<String>,
    install: Install,
}

impl Download {
    /// The artifact, its checksum pinned by the recipe's `[checksums.ARCH]` or else published.
    fn into_artifact(self, recipe: &Recipe, arch: Arch) -> Artifact {
        let pinned = (recipe.checksums.get(&arch))
            .and_then(|sums| sums.get(self.name))
            .map(|hex| hex.to_ascii_lowercase());
        let checksum = match pinned {
            Some(hex) => Checksum::Pinned(hex),
            None => Checksum::Published {
                file_name: self.url.rsplit('/').next().unwrap_or_default().to_owned(),
                url: (self.sums).unwrap_or_else(|| format!("{}.sha256", self.url)),
            },
        };
        Artifact {
            name: self.name,
            arch,
            version: self.version,
            url: self.url,
            checksum,
            install: self.install,
        }
    }
}

/// kubeadm, kubelet and kubectl from the Kubernetes release server.
fn kube_downloads(base: &str, kube: &str, a: &str) -> Vec<Download> {
    let base = base.trim_end_matches('/');
    ["kubeadm", "kubelet", "kubectl"]
        .into_iter()
        .map(|name| Download {
            name,
            version: kube.to_owned(),
            url: format!("{base}/{kube}/bin/linux/{a}/{name}"),
            sums: None,
            install: Install::Binary(format!("usr/bin/{name}")),
        })
        .collect()
}

fn containerd(base: &str, v: &str, a: &str) -> Download {
    let url = format!(
        "{}/v{v}/containerd-{v}-linux-{a}.tar.gz",
        base.trim_end_matches('/')
    );
    Download {
        name: "containerd",
        version: v.to_owned(),
        sums: Some(format!("{url}.sha256sum")),
        url,
        install: tarball("bin/", "usr/bin", &[]),
    }
}

fn runc(base: &str, v: &str, a: &str) -> Download {
    let dir = format!("{}/v{v}", base.trim_end_matches('/'));
    Download {
        name: "runc",
        version: v.to_owned(),
        url: format!("{dir}/runc.{a}"),
        sums: Some(format!("{dir}/runc.sha256sum")),
        install: Install::Binary("usr/bin/runc".into()),
    }
}

fn cni_plugins(base: &str, v: &str, a: &str) -> Download {
    Download {
        name: "cni_plugins",
        version: v.to_owned(),
        url: format!(
            "{}/v{v}/cni-plugins-linux-{a}-v{v}.tgz",
            base.trim_end_matches('/')
        ),
        sums: None,
        install: tarball("", "usr/libexec/cni", &[]),
    }
}

fn crictl(base: &str, v: &str, a: &str) -> Download {
    Download {
        name: "crictl",
        version: v.to_owned(),
        url: format!(
            "{}/v{v}/crictl-v{v}-linux-{a}.tar.gz",
            base.trim_end_matches('/')
        ),
        sums: None,
        install: tarball("", "usr/bin", &["crictl"]),
    }
}

fn tarball(prefix: &str, dest_dir: &str, only: &[&str]) -> Install {
    Install::Tarball {
        prefix: prefix.into(),
        dest_dir: dest_dir.into(),
        only: only.iter().map(|&name| name.into()).collect(),
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "recipe {} (Kubernetes {}), architectures {}, SOURCE_DATE_EPOCH {}",
            self.recipe.name,
            self.version,
            names(&self.architectures),
            self.source_date_epoch
        )?;
        self.fmt_downloads(f)?;
        self.fmt_images(f)?;
        self.fmt_outputs(f)
    }
}

impl Plan {
    /// Each artifact with its URL and where its checksum comes from.
    fn fmt_downloads(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pinned = (self.artifacts.iter())
            .filter(|a| matches!(a.checksum, Checksum::Pinned(_)))
            .count();
        writeln!(
            f,
            "downloads ({pinned} checksums pinned in the recipe, {} from the download server):",
            self.artifacts.len() - pinned
        )?;
        for a in &self.artifacts {
            let sum = match &a.checksum {
                Checksum::Pinned(hex) => format!("sha256 pinned in the recipe: {hex}"),
                Checksum::Published { url, .. } => {
                    format!(
                        "sha256 from the download server: {}",
                        kiln_core::url::redact(url)
                    )
                }
            };
            writeln!(
                f,
                "  {:<11} {:<5} {}\n              {sum}",
                a.name,
                a.arch.kube(),
                kiln_core::url::redact(&a.url)
            )?;
        }
        Ok(())
    }

    /// The output files: per architecture, then the disk, the sysupdate transfer and the sums.
    fn fmt_outputs(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "outputs:")?;
        let o = &self.recipe.outputs;
        for arch in &self.architectures {
            if o.sysext != super::recipe::SysextFormat::None {
                writeln!(f, "  {} ({:?})", self.sysext_name(*arch), o.sysext)?;
            }
            if o.opt {
                let base = self.sysext_name(*arch);
                writeln!(f, "  {}-opt.tar (/opt tree)", base.trim_end_matches(".raw"))?;
            }
        }
        for (disk, arch) in self
            .disk
            .iter()
            .flat_map(|d| self.architectures.iter().map(move |a| (d, *a)))
        {
            fmt_disk_output(&disk.for_arch(arch), f)?;
        }
        if let Some(url) = &o.sysupdate_url {
            writeln!(
                f,
                "  {}.conf (systemd-sysupdate transfer from {url})",
                self.recipe.name
            )?;
        }
        write!(f, "  manifest.json, SHA256SUMS")
    }

    fn fmt_images(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.images;
        match i.source {
            None => writeln!(f, "images (each architecture), none of kubeadm's:")?,
            Some(ListSource::Kubeadm(arch)) => writeln!(
                f,
                "images (each architecture), kubeadm's list from the baked kubeadm ({}): \
                 `kubeadm config images list --kubernetes-version {}` once its download is \
                 verified; kiln's table expects{}",
                arch.kube(),
                self.version,
                if i.expected.is_some() {
                    ":"
                } else {
                    " nothing (it does not know this release)"
                }
            )?,
            Some(ListSource::Table) => writeln!(
                f,
                "images (each architecture), kubeadm's list from kiln's table (this machine runs \
                 none of the recipe's architectures):"
            )?,
        }
        let kubeadm = i.source.and(i.expected.as_ref()).into_iter().flatten();
        for image in kubeadm.chain(&i.extra) {
            writeln!(f, "  {image}")?;
        }
        Ok(())
    }
}

/// The disk image line of one architecture: its files, size, Debian suite and mirror, kernel.
fn fmt_disk_output(disk: &DiskPlan, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let facts = disk.facts();
    let mut files: Vec<String> = disk
        .formats()
        .unwrap_or_default()
        .iter()
        .map(|f| facts.output_name(f.file()))
        .collect();
    if disk.disk.pxe {
        files.push(format!("{}/", facts.output_name("pxe")));
    }
    let usr = match disk.disk.verity {
        true => "read-only /usr with dm-verity (usrhash=)",
        false => "read-only /usr",
    };
    writeln!(
        f,
        "  {} ({}, Debian {} {} from {}, {}; {usr}; GPT by systemd-repart)",
        files.join(" "),
        disk.disk.size,
        disk.rootfs.suite,
        disk.arch.kube(),
        disk.rootfs.mirror,
        facts.kernel_package,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> anyhow::Result<Plan> {
        Plan::new(Recipe::parse(text)?, &[], None, &[])
    }

    const FULL: &str = r#"
kubernetes_version = "v1.31.4"
architectures = ["amd64", "arm64"]
[components]
containerd = "2.0.2"
runc = "1.2.4"
cni_plugins = "1.6.2"
crictl = "1.31.1"
[checksums.arm64]
runc = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
[images]
kubeadm = "none"
extra = ["docker.io/library/busybox:1.36"]
"#;

    #[test]
    fn official_url_layouts() {
        let p = plan(FULL).unwrap();
        let urls: Vec<&str> = p.artifacts.iter().map(|a| a.url.as_str()).collect();
        for expected in [
            "https://dl.k8s.io/release/v1.31.4/bin/linux/amd64/kubeadm",
            "https://dl.k8s.io/release/v1.31.4/bin/linux/arm64/kubectl",
            "https://github.com/containerd/containerd/releases/download/v2.0.2/containerd-2.0.2-linux-amd64.tar.gz",
            "https://github.com/opencontainers/runc/releases/download/v1.2.4/runc.arm64",
            "https://github.com/containernetworking/plugins/releases/download/v1.6.2/cni-plugins-linux-amd64-v1.6.2.tgz",
            "https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.31.1/crictl-v1.31.1-linux-arm64.tar.gz",
        ] {
            assert!(urls.contains(&expected), "{expected} not in {urls:#?}");
        }
        assert_eq!(p.artifacts.len(), 14);
    }

    #[test]
    fn pinned_checksums_win_and_published_ones_sit_beside() {
        let p = plan(FULL).unwrap();
        let find = |name: &str, arch| {
            p.artifacts
                .iter()
                .find(|a| a.name == name && a.arch == arch)
                .unwrap()
                .checksum
                .clone()
        };
        assert_eq!(find("runc", Arch::Arm64), Checksum::Pinned("a".repeat(64)));
        assert_eq!(
            find("runc", Arch::Amd64),
            Checksum::Published {
                url:
                    "https://github.com/opencontainers/runc/releases/download/v1.2.4/runc.sha256sum"
                        .into(),
                file_name: "runc.amd64".into()
            }
        );
        assert_eq!(
            find("kubeadm", Arch::Amd64),
            Checksum::Published {
                url: "https://dl.k8s.io/release/v1.31.4/bin/linux/amd64/kubeadm.sha256".into(),
                file_name: "kubeadm".into()
            }
        );
    }

    #[test]
    fn arch_filter_and_unknown_pins_are_checked() {
        let p = Plan::new(Recipe::parse(FULL).unwrap(), &[Arch::Arm64], None, &[]).unwrap();
        assert!(p.artifacts.iter().all(|a| a.arch == Arch::Arm64));
        let r = Recipe::parse("kubernetes_version = \"v1.31.2\"\n").unwrap();
        let err = Plan::new(r, &[Arch::Arm64], None, &[]).unwrap_err();
        assert!(err.to_string().contains("--arch arm64"), "{err}");
        let err = plan("kubernetes_version = \"v1.31.4\"\n[checksums.amd64]\nkubeadmm = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n").unwrap_err();
        assert!(
            err.to_string().contains("checksums.amd64.kubeadmm"),
            "{err}"
        );
    }

    const DISK: &str = r#"
[outputs]
sysext = "none"
opt = false
[rootfs]
suite = "bookworm"
mirror = "http://deb.debian.org/debian"
packages = ["systemd-sysv", "linux-image-amd64", "initramfs-tools", "systemd-boot-efi"]
[disk]
size = "3G"
formats = ["raw", "vhd", "gce"]
"#;

    #[test]
    fn a_disk_image_for_an_architecture_the_machine_cannot_run_is_refused() {
        let both = format!(
            "kubernetes_version = \"v1.31.4\"\narchitectures = [\"amd64\", \"arm64\"]\n{DISK}"
        );
        let err = plan(&both).unwrap_err().to_string();
        assert!(
            err.contains("disk image for arm64")
                && err.contains("binfmt_misc")
                && err.contains("qemu-aarch64")
                && err.contains("--arch amd64"),
            "{err}"
        );
        let err = Plan::new(Recipe::parse(&both).unwrap(), &[Arch::Arm64], None, &[]).unwrap_err();
        assert!(err.to_string().contains("for arm64"), "{err}");
        let p = Plan::new(Recipe::parse(&both).unwrap(), &[Arch::Amd64], None, &[]).unwrap();
        assert!(p.disk.is_some());
        let text = p.to_string();
        assert!(
            text.contains("  disk.raw disk.vhd disk-gce.tar.gz pxe/ (3G, Debian bookworm amd64"),
            "{text}"
        );
        let runnable = [Arch::Amd64, Arch::Arm64];
        let p = Plan::new(Recipe::parse(&both).unwrap(), &[], None, &runnable).unwrap();
        let text = p.to_string();
        assert!(
            text.contains("  disk-arm64.raw disk-arm64.vhd disk-arm64-gce.tar.gz pxe-arm64/ (3G, Debian bookworm arm64 from http://deb.debian.org/debian, linux-image-arm64; read-only /usr; GPT by systemd-repart)"),
            "{text}"
        );
    }

    #[test]
    fn dry_run_print_lists_downloads_images_and_outputs() {
        let text = plan(FULL).unwrap().to_string();
        assert!(text.starts_with("recipe "), "{text}");
        assert!(text.contains("architectures amd64, arm64, SOURCE_DATE_EPOCH 0\n"));
        assert!(text.contains(
            "downloads (1 checksums pinned in the recipe, 13 from the download server):\n"
        ));
        assert!(text.contains(&format!(
            "  runc        arm64 https://github.com/opencontainers/runc/releases/download/v1.2.4/runc.arm64\n              sha256 pinned in the recipe: {}\n",
            "a".repeat(64)
        )));
        assert!(
            text.contains("  docker.io/library/busybox:1.36\n"),
            "{text}"
        );
        let outputs = text.split("outputs:\n").nth(1).unwrap();
        assert!(
            outputs.ends_with("  manifest.json, SHA256SUMS"),
            "{outputs}"
        );
    }

    #[test]
    fn epoch_precedence() {
        let r = Recipe::parse("kubernetes_version = \"v1.31.2\"\nsource_date_epoch = 5\n").unwrap();
        assert_eq!(
            Plan::new(r.clone(), &[], None, &[])
                .unwrap()
                .source_date_epoch,
            5
        );
        assert_eq!(
            Plan::new(r, &[], Some(7), &[]).unwrap().source_date_epoch,
            7
        );
    }
}
