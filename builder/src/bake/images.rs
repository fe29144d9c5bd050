//! Which images a build pre-pulls, and who says so. kubeadm's own images come from the kubeadm
//! being baked (`kubeadm config images list`, run once its download is verified) when the build
//! machine can execute one of the recipe's architectures; otherwise from kiln's table of
//! releases, and a release the table does not know is refused before any download.

use std::path::Path;

use anyhow::Context as _;

use kiln_core::images;
use kiln_core::version::KubeVersion;

use super::recipe::{Arch, KubeadmImages, Recipe};

/// Where kubeadm's image list comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListSource {
    /// The downloaded kubeadm for this architecture, run on the build machine.
    Kubeadm(Arch),
    /// kiln's table (no recipe architecture runs here).
    Table,
}

impl ListSource {
    /// The name recorded in manifest.json: `kubeadm` or `table`.
    pub fn name(self) -> &'static str {
        match self {
            ListSource::Kubeadm(_) => "kubeadm",
            ListSource::Table => "table",
        }
    }
}

/// The images decided before any download.
#[derive(Debug, Clone)]
pub struct ImagePlan {
    /// Which of kubeadm's images the recipe wants.
    pub selection: KubeadmImages,
    /// kubeadm's `--image-repository`, if the recipe sets one.
    pub repository: Option<String>,
    /// Where kubeadm's list comes from; `None` when the recipe wants none of kubeadm's images.
    pub source: Option<ListSource>,
    /// The table's list for this release, when it knows it (what the plan prints and what
    /// kubeadm's answer is compared with).
    pub expected: Option<Vec<String>>,
    /// The recipe's further images.
    pub extra: Vec<String>,
}

/// The images a build pulls, once kubeadm (or the table) has answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImages {
    /// Everything to pull, kubeadm's selection first, then the extras.
    pub pull: Vec<String>,
    /// kubeadm's whole list (also the images not pulled), empty when none was asked for.
    pub kubeadm_list: Vec<String>,
    /// Where kubeadm's list came from.
    pub source: Option<ListSource>,
}

impl ImagePlan {
    /// Decides where the list comes from: the first of `archs` the build machine `runnable`
    /// can execute, else the table (which must know `version`).
    pub fn new(
        recipe: &Recipe,
        version: &KubeVersion,
        archs: &[Arch],
        runnable: &[Arch],
    ) -> anyhow::Result<Self> {
        let repository = recipe.images.repository.clone();
        images::repository(repository.as_deref())?;
        let wanted = recipe.images.kubeadm != KubeadmImages::None;
        let expected = images::control_plane_images(version, repository.as_deref());
        let runs_here = archs.iter().copied().find(|a| runnable.contains(a));
        let source = match (wanted, runs_here) {
            (false, _) => None,
            (true, Some(arch)) => Some(ListSource::Kubeadm(arch)),
            (true, None) => {
                expected.as_ref().map_err(|e| no_source(e, archs))?;
                Some(ListSource::Table)
            }
        };
        Ok(ImagePlan {
            selection: recipe.images.kubeadm,
            repository,
            source,
            expected: expected.ok(),
            extra: recipe.images.extra.clone(),
        })
    }

    /// The final list. `kubeadm` is the verified kubeadm binary for [`ListSource::Kubeadm`]
    /// and the URL it came from; `work` a directory of the build where it may be run from.
    pub fn resolve(
        &self,
        version: &KubeVersion,
        kubeadm: Option<(&Path, &str)>,
        work: &Path,
    ) -> anyhow::Result<ResolvedImages> {
        let kubeadm_list = match (self.source, kubeadm) {
            (None, _) => Vec::new(),
            (Some(ListSource::Kubeadm(_)), Some((path, url))) => {
                self.ask(path, url, version, work)?
            }
            (Some(ListSource::Kubeadm(arch)), None) => {
                anyhow::bail!("no kubeadm for {} was downloaded to ask", arch.kube())
            }
            (Some(ListSource::Table), _) => {
                images::control_plane_images(version, self.repository.as_deref())?
            }
        };
        let mut pull = match self.selection {
            KubeadmImages::None => Vec::new(),
            KubeadmImages::ControlPlane => kubeadm_list.clone(),
            KubeadmImages::Node => images::node_images(&kubeadm_list),
        };
        for extra in &self.extra {
            if !pull.contains(extra) {
                pull.push(extra.clone());
            }
        }
        Ok(ResolvedImages {
            pull,
            kubeadm_list,
            source: self.source,
        })
    }

    /// Runs a copy of the cached kubeadm blob (cache files are not executable) from `work`
    /// (the build's own directory beside --out: /tmp may be mounted noexec).
    fn ask(
        &self,
        blob: &Path,
        url: &str,
        version: &KubeVersion,
        work: &Path,
    ) -> anyhow::Result<Vec<String>> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir_in(work)
            .with_context(|| format!("making a directory in {}", work.display()))?;
        let exe = dir.path().join("kubeadm");
        std::fs::copy(blob, &exe)
            .and_then(|_| std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)))
            .with_context(|| format!("copying the baked kubeadm to {}", exe.display()))?;
        let name = format!(
            "kubeadm (verified download of {})",
            kiln_core::url::redact(url)
        );
        let list = images::kubeadm::ask_named(&exe, &name, version, self.repository.as_deref())
            .map_err(|e| {
                anyhow::anyhow!("asking the baked kubeadm {version} for its images: {e}")
            })?;
        if let Some(expected) = self.expected.as_ref().filter(|e| **e != list) {
            tracing::warn!(
                kubeadm = ?list,
                table = ?expected,
                "kubeadm {version} lists other images than kiln's table; baking what kubeadm lists"
            );
        }
        Ok(list)
    }
}

fn no_source(table_error: &kiln_core::Error, archs: &[Arch]) -> anyhow::Error {
    let names: Vec<&str> = archs.iter().map(|a| a.kube()).collect();
    anyhow::anyhow!(
        "images.kubeadm: this machine cannot run the baked kubeadm ({}) to ask it for its images, \
         and {table_error}; build on a machine of that architecture (or with qemu-user-static \
         registered in binfmt_misc), or list the images yourself in images.extra with \
         images.kubeadm = \"none\"",
        names.join(", ")
    )
}

/// The architectures whose programs this machine runs: its own, and those a qemu-user
/// interpreter is registered and enabled for in binfmt_misc.
pub fn runnable_here() -> Vec<Arch> {
    [Arch::Amd64, Arch::Arm64]
        .into_iter()
        .filter(|&a| Arch::host() == Some(a) || binfmt_enabled(a))
        .collect()
}

/// The binfmt_misc entry of the qemu-user interpreter for `arch` (`qemu-aarch64`).
pub fn binfmt_name(arch: Arch) -> &'static str {
    match arch {
        Arch::Amd64 => "qemu-x86_64",
        Arch::Arm64 => "qemu-aarch64",
    }
}

fn binfmt_enabled(arch: Arch) -> bool {
    std::fs::read_to_string(Path::new("/proc/sys/fs/binfmt_misc").join(binfmt_name(arch)))
        .is_ok_and(|s| s.lines().next() == Some("enabled"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(version: &str, images: &str) -> Recipe {
        Recipe::parse(&format!(
            "kubernetes_version = \"{version}\"\narchitectures = [\"amd64\", \"arm64\"]\n[images]\n{images}\n"
        ))
        .unwrap()
    }

    fn plan(version: &str, images: &str, runnable: &[Arch]) -> anyhow::Result<ImagePlan> {
        let r = recipe(version, images);
        let v = r.kube_version().unwrap();
        ImagePlan::new(&r, &v, &r.architectures.clone(), runnable)
    }

    #[test]
    fn the_baked_kubeadm_answers_when_it_runs_here() {
        let p = plan("v1.36.3", "", &[Arch::Arm64]).unwrap();
        assert_eq!(p.source, Some(ListSource::Kubeadm(Arch::Arm64)));
        assert_eq!(p.expected.as_ref().unwrap().len(), 7);
        let p = plan("v1.99.0", "", &[Arch::Amd64]).unwrap();
        assert_eq!(p.source, Some(ListSource::Kubeadm(Arch::Amd64)));
        assert!(p.expected.is_none());
    }

    #[test]
    fn the_table_answers_otherwise_and_must_know_the_release() {
        let p = plan("v1.36.3", "", &[]).unwrap();
        assert_eq!(p.source, Some(ListSource::Table));
        let resolved = p
            .resolve(&"v1.36.3".parse().unwrap(), None, Path::new("/nonexistent"))
            .unwrap();
        assert!(resolved
            .pull
            .contains(&"registry.k8s.io/etcd:3.6.8-0".to_owned()));
        let err = plan("v1.99.0", "", &[]).unwrap_err().to_string();
        assert!(
            err.starts_with("images.kubeadm: this machine cannot run"),
            "{err}"
        );
        assert!(err.contains("newer than kiln's image table"), "{err}");
        assert!(plan("v1.99.0", "kubeadm = \"none\"", &[])
            .unwrap()
            .source
            .is_none());
    }

    #[test]
    fn node_selection_and_extras() {
        let p = plan(
            "v1.35.0",
            "kubeadm = \"node\"\nextra = [\"docker.io/library/busybox:1.36\", \"registry.k8s.io/pause:3.10.1\"]",
            &[],
        )
        .unwrap();
        let r = p
            .resolve(&"v1.35.0".parse().unwrap(), None, Path::new("/nonexistent"))
            .unwrap();
        assert_eq!(
            r.pull,
            [
                "registry.k8s.io/kube-proxy:v1.35.0",
                "registry.k8s.io/pause:3.10.1",
                "docker.io/library/busybox:1.36"
            ]
        );
        assert_eq!(r.kubeadm_list.len(), 7);
    }
}
