//! Where this node's kubeadm config comes from, in order: a kiln node config
//! (`/etc/kiln/node.toml`), else Cluster API bootstrap data (`/run/kubeadm/kubeadm.yaml` for
//! init, `/run/kubeadm/kubeadm-join-config.yaml` for join), found among the files the user-data
//! writes or, failing that, in the root. Cluster API configs are used as given after strict
//! validation; node configs are rendered.
//!
//! The kubeadm version (which picks v1beta3 or v1beta4) is, in order: the caller's, the baked
//! manifest's (`/usr/share/kiln/manifest.json`, `kubernetes_version`), the config's own.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use kiln_core::kubeadm::render::render;
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

/// Reads node files: those the user-data plan writes first, then the root's.
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
        let on_disk = self.root.join(path.strip_prefix("/").unwrap_or(path));
        match std::fs::read(&on_disk) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", on_disk.display())),
        }
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
    })
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
    let config =
        KubeadmConfig::parse(text, &kubeadm).with_context(|| format!("{}", origin.display()))?;
    let warnings = config
        .pinning_warnings()
        .with_context(|| format!("{}", origin.display()))?;
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
        yaml: kiln_core::secret::Secret::new(text),
        origin: origin.to_owned(),
    })
}

/// `kubernetesVersion` of a ClusterConfiguration in the stream, if any.
fn declared_version(text: &str) -> Option<KubeVersion> {
    serde_yaml_ng::Deserializer::from_str(text).find_map(|de| {
        let v: serde_yaml_ng::Value = serde::Deserialize::deserialize(de).ok()?;
        v.get("kubernetesVersion")?.as_str()?.parse().ok()
    })
}

/// The caller's version, else the baked manifest's, else the config's own.
fn kubeadm_version(
    files: &Files<'_>,
    given: Option<&KubeVersion>,
    declared: Option<&KubeVersion>,
) -> anyhow::Result<KubeVersion> {
    if let Some(v) = given {
        return Ok(v.clone());
    }
    if let Some(bytes) = files.read(Path::new(MANIFEST_PATH))? {
        #[derive(serde::Deserialize)]
        struct Manifest {
            kubernetes_version: String,
        }
        let m: Manifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("{MANIFEST_PATH}: no kubernetes_version"))?;
        return m
            .kubernetes_version
            .parse()
            .with_context(|| format!("{MANIFEST_PATH}: kubernetes_version"));
    }
    declared.cloned().context(
        "unknown kubeadm version: pass --kubeadm-version, bake /usr/share/kiln/manifest.json or set kubernetes_version",
    )
}
