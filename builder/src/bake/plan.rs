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
    /// The disk image (amd64), if the recipe has `[rootfs]` and `[disk]`.
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
        let architectures: Vec<Arch> = if only_archs.is_empty() {
            recipe.architectures.clone()
        } else {
            for arch in only_archs {
                if !recipe.architectures.contains(arch) {
                    anyhow::bail!(
                        "--arch {}: the recipe builds only {}",
                        arch.kube(),
                        names(&recipe.architectures)
                    );
                }
            }
            only_archs.to_vec()
        };
        let artifacts = architectures
            .iter()
            .flat_map(|&arch| artifacts_for(&recipe, &version, arch))
            .collect();
        let images = ImagePlan::new(&recipe, &version, &architectures, runnable)?;
        if let Some(url) = &recipe.outputs.sysupdate_url {
            super::outputs::sysupdate::transfer(&recipe.name, &version.to_string(), url, false)?;
        }
        let source_date_epoch = source_date_epoch.or(recipe.source_date_epoch).unwrap_or(0);
        let disk = match recipe.disk_plan()? {
            Some(disk) if architectures.contains(&Arch::Amd64) => Some(disk),
            _ => None,
        };
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

fn artifacts_for(recipe: &Recipe, version: &KubeVersion, arch: Arch) -> Vec<Artifact> {
    let a = arch.kube();
    let src = &recipe.sources;
    let pinned = |name: &str| {
        recipe
            .checksums
            .get(&arch)
            .and_then(|sums| sums.get(name))
            .map(|hex| hex.to_ascii_lowercase())
    };
    let make = |name: &'static str, version: String, url: String, sums: Option<String>, install| {
        let file_name = url.rsplit('/').next().unwrap_or_default().to_owned();
        let checksum = match pinned(name) {
            Some(hex) => Checksum::Pinned(hex),
            None => Checksum::Published {
                url: sums.unwrap_or_else(|| format!("{url}.sha256")),
                file_name,
            },
        };
        Artifact {
            name,
            arch,
            version,
            url,
            checksum,
            install,
        }
    };
    let kube = version.to_string();
    let base = src.kubernetes.trim_end_matches('/');
    let mut out: Vec<Artifact> = ["kubeadm", "kubelet", "kubectl"]
        .into_iter()
        .map(|name| {
            let url = format!("{base}/{kube}/bin/linux/{a}/{name}");
            make(
                name,
                kube.clone(),
                url,
                None,
                Install::Binary(format!("usr/bin/{name}")),
            )
        })
        .collect();
    let c = &recipe.components;
    if let Some(v) = &c.containerd {
        let url = format!(
            "{}/v{v}/containerd-{v}-linux-{a}.tar.gz",
            src.containerd.trim_end_matches('/')
        );
        let sums = format!("{url}.sha256sum");
        let install = Install::Tarball {
            prefix: "bin/".into(),
            dest_dir: "usr/bin".into(),
            only: Vec::new(),
        };
        out.push(make("containerd", v.clone(), url, Some(sums), install));
    }
    if let Some(v) = &c.runc {
        let dir = format!("{}/v{v}", src.runc.trim_end_matches('/'));
        let install = Install::Binary("usr/bin/runc".into());
        out.push(make(
            "runc",
            v.clone(),
            format!("{dir}/runc.{a}"),
            Some(format!("{dir}/runc.sha256sum")),
            install,
        ));
    }
    if let Some(v) = &c.cni_plugins {
        let url = format!(
            "{}/v{v}/cni-plugins-linux-{a}-v{v}.tgz",
            src.cni_plugins.trim_end_matches('/')
        );
        let install = Install::Tarball {
            prefix: String::new(),
            dest_dir: "usr/libexec/cni".into(),
            only: Vec::new(),
        };
        out.push(make("cni_plugins", v.clone(), url, None, install));
    }
    if let Some(v) = &c.crictl {
        let url = format!(
            "{}/v{v}/crictl-v{v}-linux-{a}.tar.gz",
            src.crictl.trim_end_matches('/')
        );
        let install = Install::Tarball {
            prefix: String::new(),
            dest_dir: "usr/bin".into(),
            only: vec!["crictl".into()],
        };
        out.push(make("crictl", v.clone(), url, None, install));
    }
    out
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
                    format!("sha256 from the download server: {url}")
                }
            };
            writeln!(
                f,
                "  {:<11} {:<5} {}\n              {sum}",
                a.name,
                a.arch.kube(),
                a.url
            )?;
        }
        self.fmt_images(f)?;
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
        if let Some(disk) = &self.disk {
            let extra: Vec<&str> = [("disk.qcow2", disk.disk.qcow2), ("pxe/", disk.disk.pxe)]
                .iter()
                .filter(|(_, on)| *on)
                .map(|(name, _)| *name)
                .collect();
            writeln!(
                f,
                "  disk.raw ({}, Debian {} from {}) {}",
                disk.disk.size,
                disk.rootfs.suite,
                disk.rootfs.mirror,
                extra.join(" ")
            )?;
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
}

impl Plan {
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
