//! containerd for kubelet: its configuration (systemd cgroup driver to match kubelet, the pause
//! image kubeadm expects, the CNI directories), the CNI plugins seeded where it looks, and its
//! image store driven through `ctr` ([`ctr`]). Shared by `kiln build` (which fills a disk image's
//! store and writes its config) and kiln-firstboot (which checks and completes them on the node).

pub mod ctr;

use anyhow::Context;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Where containerd reads its configuration on a node.
pub const CONFIG_PATH: &str = "/etc/containerd/config.toml";
/// containerd's CRI socket on a node.
pub const SOCKET: &str = "/run/containerd/containerd.sock";

/// What kiln sets in containerd's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The sandbox (pause) image; must equal the one kubeadm expects, or offline init hangs.
    pub sandbox_image: String,
    /// CNI plugin binaries.
    pub cni_bin_dir: String,
    /// CNI network configurations.
    pub cni_conf_dir: String,
    /// containerd's persistent root (default /var/lib/containerd).
    pub root: Option<PathBuf>,
    /// containerd's state directory (default /run/containerd).
    pub state: Option<PathBuf>,
    /// The gRPC socket (default [`SOCKET`]).
    pub address: Option<PathBuf>,
}

impl Settings {
    /// Defaults for a node with the given pause image.
    pub fn for_node(sandbox_image: &str) -> Self {
        Settings {
            sandbox_image: sandbox_image.to_owned(),
            cni_bin_dir: "/opt/cni/bin".into(),
            cni_conf_dir: "/etc/cni/net.d".into(),
            root: None,
            state: None,
            address: None,
        }
    }
}

/// Where containerd looks for CNI plugins: writable, so CNI installers (flannel's, Calico's)
/// can add theirs next to the shipped ones.
pub const CNI_BIN_DIR: &str = "/opt/cni/bin";
/// Read-only places CNI plugins ship in: the sysext layout, Debian's `containernetworking-plugins`.
pub const SHIPPED_CNI_DIRS: &[&str] = &["/usr/libexec/cni", "/usr/lib/cni"];

/// Copies the plugins of the first existing [`SHIPPED_CNI_DIRS`] entry inside `root` into
/// [`CNI_BIN_DIR`], keeping plugins already there; returns how many were copied.
pub fn seed_cni_bin_dir(root: &Path) -> anyhow::Result<usize> {
    let Some(shipped) = SHIPPED_CNI_DIRS
        .iter()
        .map(|d| root.join(d.trim_start_matches('/')))
        .find(|d| d.is_dir())
    else {
        return Ok(0);
    };
    let target = root.join(CNI_BIN_DIR.trim_start_matches('/'));
    let mut copied = 0;
    for entry in std::fs::read_dir(&shipped).with_context(|| format!("{}", shipped.display()))? {
        let source = entry
            .with_context(|| format!("{}", shipped.display()))?
            .path();
        let dest = target.join(source.file_name().unwrap_or_default());
        if !source.is_file() || dest.exists() {
            continue;
        }
        let bytes = std::fs::read(&source).with_context(|| format!("{}", source.display()))?;
        crate::fsutil::write_atomic(&dest, &bytes, 0o755)?;
        copied += 1;
    }
    Ok(copied)
}

/// A containerd.service drop-in pointing `CONTAINERD_CONFIG` at kiln's configuration: Flatcar's
/// unit starts `containerd --config ${CONTAINERD_CONFIG}` (default
/// /usr/share/containerd/config.toml); units that don't use the variable ignore it.
pub const SERVICE_DROPIN_PATH: &str = "/etc/systemd/system/containerd.service.d/10-kiln.conf";
/// The drop-in's text.
pub const SERVICE_DROPIN: &str = "\
# Written by kiln: containerd reads /etc/containerd/config.toml (Flatcar's unit passes
# --config ${CONTAINERD_CONFIG}, by default /usr/share/containerd/config.toml).
[Service]
Environment=CONTAINERD_CONFIG=/etc/containerd/config.toml
";

/// containerd's plugins a kiln node never uses, not loaded: snapshotters other than overlayfs
/// (the CRI's default, the one `kiln build` unpacks the images with). Each costs its probe at
/// every start (devmapper's fails without a pool configured).
pub const DISABLED_PLUGINS: [&str; 4] = [
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
];

#[derive(Serialize)]
struct Config<'a> {
    version: u32,
    disabled_plugins: &'a [&'a str],
    #[serde(skip_serializing_if = "Option::is_none")]
    root: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grpc: Option<Grpc<'a>>,
    plugins: Plugins<'a>,
}

#[derive(Serialize)]
struct Grpc<'a> {
    address: &'a Path,
}

#[derive(Serialize)]
struct Plugins<'a> {
    #[serde(rename = "io.containerd.grpc.v1.cri")]
    cri: Cri<'a>,
}

#[derive(Serialize)]
struct Cri<'a> {
    sandbox_image: &'a str,
    containerd: Containerd,
    cni: Cni<'a>,
}

#[derive(Serialize)]
struct Containerd {
    default_runtime_name: &'static str,
    runtimes: Runtimes,
}

#[derive(Serialize)]
struct Runtimes {
    runc: Runc,
}

#[derive(Serialize)]
struct Runc {
    runtime_type: &'static str,
    options: RuncOptions,
}

#[derive(Serialize)]
struct RuncOptions {
    #[serde(rename = "SystemdCgroup")]
    systemd_cgroup: bool,
}

#[derive(Serialize)]
struct Cni<'a> {
    bin_dir: &'a str,
    conf_dir: &'a str,
}

/// The CRI sandbox image a containerd 1.x configuration sets, if any (for a config the user-data
/// brought).
pub fn sandbox_image_of(config: &str) -> Option<String> {
    let parsed: toml::Value = toml::from_str(config).ok()?;
    parsed
        .get("plugins")?
        .get("io.containerd.grpc.v1.cri")?
        .get("sandbox_image")?
        .as_str()
        .map(str::to_owned)
}

/// containerd 1.x configuration (format version 2) for `settings`.
pub fn render(settings: &Settings) -> String {
    let config = Config {
        version: 2,
        disabled_plugins: &DISABLED_PLUGINS,
        root: settings.root.as_deref(),
        state: settings.state.as_deref(),
        grpc: settings.address.as_deref().map(|address| Grpc { address }),
        plugins: Plugins {
            cri: Cri {
                sandbox_image: &settings.sandbox_image,
                containerd: Containerd {
                    default_runtime_name: "runc",
                    runtimes: Runtimes {
                        runc: Runc {
                            runtime_type: "io.containerd.runc.v2",
                            options: RuncOptions {
                                systemd_cgroup: true,
                            },
                        },
                    },
                },
                cni: Cni {
                    bin_dir: &settings.cni_bin_dir,
                    conf_dir: &settings.cni_conf_dir,
                },
            },
        },
    };
    let body = toml::to_string(&config).expect("containerd config serializes");
    format!("# Written by kiln: systemd cgroups (as kubelet), kubeadm's pause image.\n{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_sets_systemd_cgroups_pause_image_and_cni() {
        let text = render(&Settings::for_node("registry.k8s.io/pause:3.10"));
        let parsed: toml::Value = toml::from_str(&text).unwrap();
        let cri = &parsed["plugins"]["io.containerd.grpc.v1.cri"];
        assert_eq!(parsed["version"].as_integer(), Some(2));
        assert_eq!(
            sandbox_image_of(&text).as_deref(),
            Some("registry.k8s.io/pause:3.10")
        );
        assert_eq!(sandbox_image_of("version = 2\n"), None);
        assert_eq!(
            cri["sandbox_image"].as_str(),
            Some("registry.k8s.io/pause:3.10")
        );
        assert_eq!(
            cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"].as_bool(),
            Some(true)
        );
        assert_eq!(cri["cni"]["bin_dir"].as_str(), Some("/opt/cni/bin"));
        assert!(parsed.get("root").is_none());
        let disabled = parsed["disabled_plugins"].as_array().unwrap();
        assert!(disabled
            .iter()
            .any(|p| p.as_str() == Some("io.containerd.snapshotter.v1.devmapper")));
        assert!(!disabled
            .iter()
            .any(|p| p.as_str() == Some("io.containerd.snapshotter.v1.overlayfs")));
    }

    #[test]
    fn shipped_cni_plugins_are_seeded_into_opt_keeping_installed_ones() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(seed_cni_bin_dir(root.path()).unwrap(), 0);
        let shipped = root.path().join("usr/libexec/cni");
        std::fs::create_dir_all(&shipped).unwrap();
        std::fs::write(shipped.join("bridge"), "new bridge").unwrap();
        std::fs::write(shipped.join("loopback"), "loopback").unwrap();
        let opt = root.path().join("opt/cni/bin");
        std::fs::create_dir_all(&opt).unwrap();
        std::fs::write(opt.join("bridge"), "installed bridge").unwrap();
        assert_eq!(seed_cni_bin_dir(root.path()).unwrap(), 1);
        assert_eq!(
            std::fs::read_to_string(opt.join("bridge")).unwrap(),
            "installed bridge"
        );
        assert_eq!(
            std::fs::read_to_string(opt.join("loopback")).unwrap(),
            "loopback"
        );
    }
}
