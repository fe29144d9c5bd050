//! Where this node's kubeadm config comes from, in order: a kiln node config
//! (`/etc/kiln/node.toml`), else Cluster API bootstrap data (`/run/kubeadm/kubeadm.yaml` for
//! init, `/run/kubeadm/kubeadm-join-config.yaml` for join), found among the files the user-data
//! writes or, failing that, in the root. Cluster API configs are used as given after strict
//! validation; node configs are rendered.
//!
//! The kubeadm version (which picks v1beta3 or v1beta4) is, in order: the caller's, the baked
//! manifest's (`/usr/share/kiln/manifest.json`, `kubernetes_version`), the config's own. The
//! baked kubelet (the manifest's version) must not be newer than that kubeadm, and an init
//! config's control-plane version must be one that kubeadm deploys next to that kubelet: both
//! are checked here, before anything on the node changes. Cluster API data in v1beta3 for
//! kubeadm >= 1.37 is converted to v1beta4 ([`Rendered::converted`]).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use kiln_core::inroot::{InRoot, Last};
use kiln_core::kubeadm::render::{check_deployed, render};
use kiln_core::kubeadm::stream::KubeadmConfig;
use kiln_core::nodeconfig::{NodeConfig, Role, NODE_CONFIG_PATH};
use kiln_core::version::KubeVersion;

use crate::plan::{Node, Plan};

/// Where the baked image records its versions.
pub const MANIFEST_PATH: &str = "/usr/share/kiln/manifest.json";
/// Cluster API's init config.
pub const CAPI_INIT_PATH: &str = "/run/kubeadm/kubeadm.yaml";
/// Cluster API's join config.
pub const CAPI_JOIN_PATH: &str = "/run/kubeadm/kubeadm-join-config.yaml";

/// The largest node file read from the root (a node config, a kubeadm config, the manifest).
pub const MAX_FILE: u64 = 4 << 20;

/// Reads node files: those the user-data plan writes first, then the root's (inside it:
/// symlinks resolve within the root, only regular files of at most [`MAX_FILE`] bytes).
pub struct Files<'a> {
    /// The compiled user-data, if any.
    pub plan: Option<&'a Plan>,
    /// The root directory (`/` on a node).
    pub root: &'a Path,
}

impl Files<'_> {
    /// The contents of the absolute node path `path`, if present.
    pub fn read(&self, path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
        if let Some(bytes) = self.plan.and_then(|p| from_plan(p, path)) {
            return Ok(Some(bytes));
        }
        let root = InRoot::open(self.root).context("opening the root")?;
        root.read(path, Last::Follow, MAX_FILE)
            .with_context(|| format!("reading {}", path.display()))
    }

    /// [`Files::read`] as UTF-8 text.
    pub fn read_text(&self, path: &Path) -> anyhow::Result<Option<String>> {
        self.read(path)?
            .map(|b| String::from_utf8(b).with_context(|| format!("{}: not UTF-8", path.display())))
            .transpose()
    }
}

/// The last file the plan writes at `path`, with its appended fragments.
fn from_plan(plan: &Plan, path: &Path) -> Option<Vec<u8>> {
    plan.nodes.iter().rev().find_map(|n| match n {
        Node::File(f) if f.path == path => {
            let mut bytes = f.contents.clone()?;
            f.append.iter().for_each(|a| bytes.extend_from_slice(a));
            Some(bytes)
        }
        _ => None,
    })
}

/// The config this node will give kubeadm.
#[derive(Debug)]
pub struct Rendered {
    /// What kubeadm will do.
    pub role: Role,
    /// The kubeadm version it was rendered for.
    pub kubeadm: KubeVersion,
    /// The node config, when there is one (Cluster API data has none).
    pub node: Option<NodeConfig>,
    /// The config stream. Carries the token and certificate key: stdout or a 0600 file only.
    pub yaml: kiln_core::secret::Secret,
    /// Where it came from, e.g. `/etc/kiln/node.toml`.
    pub origin: PathBuf,
    /// Allowed but unsafe choices, to log.
    pub warnings: Vec<String>,
    /// Cluster API data converted from v1beta3 for kubeadm >= 1.37: `yaml` is the converted
    /// stream, to be written back to `origin` before the data's runcmd runs kubeadm with it.
    pub converted: bool,
}

/// Finds and renders this node's kubeadm config. `node_config` overrides the search.
pub fn resolve(
    files: &Files<'_>,
    node_config: Option<&Path>,
    kubeadm: Option<&KubeVersion>,
) -> anyhow::Result<Rendered> {
    if let Some(path) = node_config {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return from_node_config(files, &text, path, kubeadm);
    }
    let node_path = Path::new(NODE_CONFIG_PATH);
    if let Some(text) = files.read_text(node_path)? {
        return from_node_config(files, &text, node_path, kubeadm);
    }
    for (path, role) in [(CAPI_INIT_PATH, Role::Init), (CAPI_JOIN_PATH, Role::Join)] {
        if let Some(text) = files.read_text(Path::new(path))? {
            return from_capi(files, &text, Path::new(path), role, kubeadm);
        }
    }
    bail!("no node config: neither {NODE_CONFIG_PATH} nor Cluster API's {CAPI_INIT_PATH} or {CAPI_JOIN_PATH} is written by the user-data or present in the root")
}

fn from_node_config(
    files: &Files<'_>,
    text: &str,
    origin: &Path,
    kubeadm: Option<&KubeVersion>,
) -> anyhow::Result<Rendered> {
    let mut node = NodeConfig::parse(text).with_context(|| format!("{}", origin.display()))?;
    if !node.read_only_usr && usr_is_read_only(files.root) {
        // sysext, Flatcar and kiln's disk images: FlexVolume plugins must live off /usr, or the
        // controller-manager's hostPath mount of the default directory fails.
        tracing::info!("/usr is read-only: using read_only_usr");
        node.read_only_usr = true;
    }
    let kubeadm = kubeadm_version(files, kubeadm, node.kubernetes_version.as_ref())?;
    let hatch = match &node.kubeadm_config {
        Some(path) => Some(files.read_text(path)?.with_context(|| {
            format!(
                "kubeadm_config: {} is neither written by the user-data nor present",
                path.display()
            )
        })?),
        None => None,
    };
    let config = render(&node, &kubeadm, hatch.as_deref())
        .with_context(|| format!("{}", origin.display()))?;
    let mut warnings = node.warnings();
    if hatch.is_some() {
        warnings.extend(config.pinning_warnings()?);
    }
    Ok(Rendered {
        warnings,
        role: node.role,
        yaml: kiln_core::secret::Secret::new(config.to_yaml()?),
        kubeadm,
        node: Some(node),
        origin: origin.to_owned(),
        converted: false,
    })
}

/// `node` rendered for `kubeadm` without an escape hatch: a node config completed at join time
/// (the join service's token and endpoint). Carries the token: stdout or a 0600 file only.
pub fn render_node(
    node: &NodeConfig,
    kubeadm: &KubeVersion,
) -> anyhow::Result<kiln_core::secret::Secret> {
    Ok(kiln_core::secret::Secret::new(
        render(node, kubeadm, None)?.to_yaml()?,
    ))
}

/// Whether the node's /usr is mounted read-only.
fn usr_is_read_only(root: &Path) -> bool {
    nix::sys::statvfs::statvfs(&root.join("usr"))
        .is_ok_and(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

fn from_capi(
    files: &Files<'_>,
    text: &str,
    origin: &Path,
    role: Role,
    kubeadm: Option<&KubeVersion>,
) -> anyhow::Result<Rendered> {
    let declared = declared_version(text);
    let kubeadm = kubeadm_version(files, kubeadm, declared.as_ref())?;
    let at = || format!("{}", origin.display());
    let config = KubeadmConfig::parse_named(text, &kubeadm, &at()).with_context(at)?;
    check_deployed(&config, &kubeadm).with_context(at)?;
    let warnings = config.pinning_warnings().with_context(at)?;
    let converted = !config.conversions.is_empty();
    let yaml = match converted {
        true => config.to_yaml()?,
        false => text.to_owned(),
    };
    let role = match config.join() {
        Some(j) if j.control_plane.is_some() => Role::ControlPlane,
        Some(_) => Role::Join,
        None if role == Role::Join => bail!("{}: no JoinConfiguration", origin.display()),
        None => role,
    };
    Ok(Rendered {
        warnings,
        role,
        kubeadm,
        node: None,
        yaml: kiln_core::secret::Secret::new(yaml),
        origin: origin.to_owned(),
        converted,
    })
}

/// `kubernetesVersion` of a ClusterConfiguration in the stream, if any.
fn declared_version(text: &str) -> Option<KubeVersion> {
    serde_yaml_ng::Deserializer::from_str(text).find_map(|de| {
        let v: serde_yaml_ng::Value = serde::Deserialize::deserialize(de).ok()?;
        v.get("kubernetesVersion")?.as_str()?.parse().ok()
    })
}

/// `imageRepository` of a ClusterConfiguration in the stream, if any: where kubeadm expects its
/// images, the sandbox (pause) image included.
pub fn image_repository(text: &str) -> Option<String> {
    serde_yaml_ng::Deserializer::from_str(text).find_map(|de| {
        let v: serde_yaml_ng::Value = serde::Deserialize::deserialize(de).ok()?;
        if v.get("kind")?.as_str()? != "ClusterConfiguration" {
            return None;
        }
        Some(v.get("imageRepository")?.as_str()?.to_owned())
    })
}

/// The caller's version, else the baked manifest's, else the config's own. The baked kubelet
/// (the manifest's version) must not be newer than the caller's kubeadm.
fn kubeadm_version(
    files: &Files<'_>,
    given: Option<&KubeVersion>,
    declared: Option<&KubeVersion>,
) -> anyhow::Result<KubeVersion> {
    match (given, baked_version(files)?) {
        (Some(kubeadm), Some(kubelet)) => {
            check_kubelet(&kubelet, kubeadm)?;
            Ok(kubeadm.clone())
        }
        (Some(kubeadm), None) => Ok(kubeadm.clone()),
        (None, Some(baked)) => Ok(baked),
        (None, None) => declared.cloned().context(
            "unknown kubeadm version: pass --kubeadm-version, bake /usr/share/kiln/manifest.json or set kubernetes_version",
        ),
    }
}

/// `kubernetes_version` of the baked manifest: the release of the image's kubelet and kubeadm.
fn baked_version(files: &Files<'_>) -> anyhow::Result<Option<KubeVersion>> {
    let Some(bytes) = files.read(Path::new(MANIFEST_PATH))? else {
        return Ok(None);
    };
    #[derive(serde::Deserialize)]
    struct Manifest {
        kubernetes_version: String,
    }
    let m: Manifest = serde_json::from_slice(&bytes)
        .with_context(|| format!("{MANIFEST_PATH}: no kubernetes_version"))?;
    m.kubernetes_version
        .parse()
        .map(Some)
        .with_context(|| format!("{MANIFEST_PATH}: kubernetes_version"))
}

/// kubeadm supports kubelets of its own minor version or older (kubeadm's version skew policy);
/// a newer kubelet is refused here rather than by kubeadm's preflight, after the node changed.
fn check_kubelet(kubelet: &KubeVersion, kubeadm: &KubeVersion) -> anyhow::Result<()> {
    if (kubelet.major, kubelet.minor) > (kubeadm.major, kubeadm.minor) {
        bail!(
            "{MANIFEST_PATH}: the baked kubelet {kubelet} is newer than kubeadm {kubeadm}; kubeadm \
             supports kubelets of its own minor version or older (version skew policy): use \
             kubeadm {}.{}.x or newer",
            kubelet.major,
            kubelet.minor
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KubeVersion {
        s.parse().unwrap()
    }

    fn root_with_manifest(version: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("usr/share/kiln");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("manifest.json"),
            format!("{{\"kubernetes_version\": \"{version}\"}}"),
        )
        .unwrap();
        root
    }

    #[test]
    fn the_baked_kubelet_is_not_newer_than_kubeadm() {
        let root = root_with_manifest("v1.36.3");
        let files = Files {
            plan: None,
            root: root.path(),
        };
        assert_eq!(kubeadm_version(&files, None, None).unwrap(), v("v1.36.3"));
        let newer = v("v1.37.0");
        assert_eq!(kubeadm_version(&files, Some(&newer), None).unwrap(), newer);
        let same_minor = v("v1.36.0");
        kubeadm_version(&files, Some(&same_minor), None).unwrap();
        let e = kubeadm_version(&files, Some(&v("v1.35.7")), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/usr/share/kiln/manifest.json: the baked kubelet v1.36.3 is newer than kubeadm v1.35.7"),
            "{e}"
        );
        let bare = tempfile::tempdir().unwrap();
        let files = Files {
            plan: None,
            root: bare.path(),
        };
        kubeadm_version(&files, Some(&v("v1.20.0")), None).unwrap();
        assert!(kubeadm_version(&files, None, None).is_err());
    }

    const CAPI_V3: &str = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nnodeRegistration:\n  kubeletExtraArgs:\n    cloud-provider: external\n---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: KUBE\n";

    fn capi(manifest: &str, kube: &str) -> anyhow::Result<Rendered> {
        let root = root_with_manifest(manifest);
        let dir = root.path().join("run/kubeadm");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("kubeadm.yaml"), CAPI_V3.replace("KUBE", kube)).unwrap();
        let files = Files {
            plan: None,
            root: root.path(),
        };
        resolve(&files, None, None)
    }

    #[test]
    fn cluster_api_v1beta3_is_converted_for_kubeadm_1_37() {
        let r = capi("v1.37.0", "v1.37.0").unwrap();
        assert!(r.converted);
        let yaml = r.yaml.expose();
        assert!(
            !yaml.contains("v1beta3")
                && yaml.contains(
                    "  kubeletExtraArgs:\n  - name: cloud-provider\n    value: external\n"
                ),
            "{yaml}"
        );
        let r = capi("v1.36.3", "v1.36.3").unwrap();
        assert!(!r.converted);
        assert_eq!(r.yaml.expose(), CAPI_V3.replace("KUBE", "v1.36.3"));
    }

    #[test]
    fn cluster_api_control_plane_version_is_skew_checked() {
        let e = format!("{:#}", capi("v1.37.0", "v1.36.3").unwrap_err());
        assert!(
            e.starts_with("/run/kubeadm/kubeadm.yaml: ClusterConfiguration.kubernetesVersion: v1.36.3 is older than the baked kubelet v1.37.0"),
            "{e}"
        );
        let e = format!("{:#}", capi("v1.36.3", "v1.37.0").unwrap_err());
        assert!(e.contains("cannot be deployed by kubeadm v1.36.3"), "{e}");
    }
}
