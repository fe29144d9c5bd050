//! First boot's work that does not depend on user-data, done at build time (issue #13): the
//! node's containerd config (systemd cgroups, the baked sandbox image, the CNI directories) and
//! its drop-in written into the root, the image's CNI plugins placed in /opt/cni/bin, and
//! containerd's image store filled. The store is filled by the real containerd (the build host's,
//! package `containerd`) run against the root's /var/lib/containerd with its own state
//! directory and socket, its CRI plugin off: the baked archives are imported into `k8s.io` and
//! unpacked with containerd's default snapshotter (overlayfs, the one the node's CRI uses), the
//! sandbox image pinned. The node then only checks the store against the manifest
//! (kiln-firstboot's `node::store`): nothing imported and containerd not restarted at boot.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use kiln_core::containerd::{self, ctr};
use kiln_core::retry::{self, Policy};

use crate::bake::content::{IMAGE_DIR as IMAGES, MANIFEST};

/// containerd's persistent root on the node.
pub const STORE: &str = "var/lib/containerd";
/// containerd's bbolt databases in the store: its metadata and the overlayfs snapshotter's.
const DATABASES: [&str; 2] = [
    "io.containerd.metadata.v1.bolt/meta.db",
    "io.containerd.snapshotter.v1.overlayfs/metadata.db",
];
/// The containerd instance's UUID (introspection), made at its first start.
const INSTANCE_UUID: &str = "io.containerd.grpc.v1.introspection/uuid";
/// The name [`collect_garbage`] gives an image for a moment.
const GC_TAG: &str = "kiln.invalid/gc:sync";
/// How long the build's containerd may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// What [`prefill`] put into the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefilled {
    /// The sandbox image containerd's config names (none: no pause image baked, the node
    /// writes the config).
    pub sandbox_image: Option<String>,
    /// The image archives imported into the store.
    pub imported: usize,
}

/// Writes containerd's config and seeds the CNI plugins in `root`, then, when `fill` (the root is
/// of the build host's architecture), fills its image store from the baked archives, its
/// databases made reproducible (see [`super::bolt`]; every timestamp `epoch`). The host's
/// containerd cannot check or unpack another architecture's images, so a foreign root (arm64
/// built on amd64) keeps an empty store and its node imports the archives at first boot.
pub fn prefill(root: &Path, fill: bool, epoch: u64) -> anyhow::Result<Prefilled> {
    let sandbox_image = baked_sandbox_image(root)?;
    if let Some(pause) = &sandbox_image {
        write_config(root, pause)?;
    }
    containerd::seed_cni_bin_dir(root).context("placing the CNI plugins in /opt/cni/bin")?;
    let archives = if fill {
        archives(&root.join(IMAGES))?
    } else {
        Vec::new()
    };
    if !archives.is_empty() {
        fill_store(root, &archives, sandbox_image.as_deref())?;
        reproducible(&root.join(STORE), epoch)?;
    }
    Ok(Prefilled {
        sandbox_image,
        imported: archives.len(),
    })
}

/// The manifest's `sandbox_image`, if the content tree has a manifest naming one.
fn baked_sandbox_image(root: &Path) -> anyhow::Result<Option<String>> {
    let path = root.join(MANIFEST);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let value: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    Ok(value["sandbox_image"].as_str().map(str::to_owned))
}

/// containerd's config and its service drop-in, as kiln-firstboot would write them.
fn write_config(root: &Path, pause: &str) -> anyhow::Result<()> {
    let text = containerd::render(&containerd::Settings::for_node(pause));
    for (abs, text) in [
        (containerd::CONFIG_PATH, text.as_str()),
        (containerd::SERVICE_DROPIN_PATH, containerd::SERVICE_DROPIN),
    ] {
        let path = root.join(abs.trim_start_matches('/'));
        kiln_core::fsutil::write_atomic(&path, text.as_bytes(), 0o644)
            .with_context(|| format!("writing {abs} in the root"))?;
    }
    Ok(())
}

/// The `*.tar` image archives in `dir`, sorted (none if it is missing).
fn archives(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut archives: Vec<PathBuf> = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    archives.retain(|p| p.extension().is_some_and(|x| x == "tar"));
    archives.sort();
    Ok(archives)
}

/// Runs containerd on the root's store, imports `archives`, pins the sandbox image, checks
/// every image is complete and unpacked, and stops containerd.
fn fill_store(root: &Path, archives: &[PathBuf], sandbox: Option<&str>) -> anyhow::Result<()> {
    // A short private directory: a socket path must fit in 108 bytes.
    let run = tempfile::Builder::new()
        .prefix("kiln-containerd-")
        .tempdir()
        .context("making containerd's state directory")?;
    let daemon = Daemon::start(&root.join(STORE), run.path())?;
    let filled = (|| {
        for archive in archives {
            ctr::import(&daemon.socket, archive)?;
        }
        let stored = ctr::check(&daemon.socket)?;
        let unusable: Vec<&str> = stored
            .iter()
            .filter(|s| !s.usable())
            .map(|s| s.name.as_str())
            .collect();
        anyhow::ensure!(
            unusable.is_empty(),
            "containerd did not unpack {} (does the build host's filesystem support overlayfs?)",
            unusable.join(", ")
        );
        if let Some(name) = sandbox.filter(|n| stored.iter().any(|s| s.name == *n)) {
            ctr::pin(&daemon.socket, name)?;
        }
        if let Some(first) = stored.first() {
            collect_garbage(&daemon.socket, &first.name)?;
        }
        Ok(())
    })();
    let stopped = daemon.stop();
    filled.map_err(|e| e.context(format!("containerd's log: {}", run.path().display())))?;
    stopped
}

/// Has containerd collect its garbage now (what the imports left unreferenced: an archive's
/// index, other platforms' manifests), not at some later moment that differs from build to build:
/// a throwaway name of `image` removed with `--sync`.
fn collect_garbage(socket: &Path, image: &str) -> anyhow::Result<()> {
    ctr::tag(socket, image, GC_TAG)?;
    ctr::ctr(socket, &["images", "rm", "--sync", GC_TAG])
        .map_err(|e| e.context("containerd's garbage collection (ctr images rm --sync)"))?;
    Ok(())
}

/// The store's bbolt databases compact with every timestamp `epoch`, and no instance UUID (the
/// node's containerd makes its own): two builds give the same bytes.
fn reproducible(store: &Path, epoch: u64) -> anyhow::Result<()> {
    for db in DATABASES {
        super::bolt::normalise(&store.join(db), epoch)?;
    }
    let uuid = store.join(INSTANCE_UUID);
    match std::fs::remove_file(&uuid) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", uuid.display()))
        }
        _ => Ok(()),
    }
}

/// The build's own containerd: the node's store as its root, a private state directory and
/// socket, the CRI plugin and the /opt plugin (which writes to the host's /opt) off.
struct Daemon {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Daemon {
    fn start(store: &Path, run: &Path) -> anyhow::Result<Daemon> {
        let config = run.join("config.toml");
        let socket = run.join("containerd.sock");
        let text = format!(
            "version = 2\nroot = {}\nstate = {}\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.internal.v1.opt\"]\n\
             [grpc]\naddress = {}\n",
            toml_string(store)?,
            toml_string(&run.join("state"))?,
            toml_string(&socket)?
        );
        std::fs::write(&config, text).context("writing the build's containerd config")?;
        let log = run.join("containerd.log");
        let out = std::fs::File::create(&log).context("creating containerd's log")?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting containerd (package containerd)")?;
        let daemon = Daemon { child, socket, log };
        daemon.wait_answering()?;
        Ok(daemon)
    }

    /// Polls `ctr version` until containerd answers on its socket.
    fn wait_answering(&self) -> anyhow::Result<()> {
        let policy = Policy::every(Duration::from_millis(100), Instant::now() + START_TIMEOUT);
        let polled = policy.poll(
            |_| {
                ctr::ctr(&self.socket, &["version"])
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
            |_, _| {},
        );
        polled.map_err(|retry::Error::GaveUp { last, .. }| {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
            anyhow::anyhow!("the build's containerd did not answer: {last}; its log ends: {tail}")
        })
    }

    /// SIGTERM (containerd closes its database), then waits; killed after 30 s.
    fn stop(mut self) -> anyhow::Result<()> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                tracing::debug!(%status, "the build's containerd stopped");
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill()?;
        self.child.wait()?;
        anyhow::bail!("the build's containerd did not stop within 30 s (killed)")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `path` as a TOML string.
fn toml_string(path: &Path) -> anyhow::Result<String> {
    let text = path
        .to_str()
        .with_context(|| format!("{}: not a UTF-8 path", path.display()))?;
    Ok(toml::Value::String(text.to_owned()).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_and_cni_plugins_without_images() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        assert_eq!(prefill(r, true, 0).unwrap(), Prefilled::default());
        assert!(!r.join("etc/containerd/config.toml").exists());
        std::fs::create_dir_all(r.join("usr/share/kiln")).unwrap();
        std::fs::create_dir_all(r.join("usr/lib/cni")).unwrap();
        std::fs::write(r.join("usr/lib/cni/bridge"), "plugin").unwrap();
        std::fs::write(
            r.join(MANIFEST),
            r#"{"sandbox_image": "registry.k8s.io/pause:3.10"}"#,
        )
        .unwrap();
        let done = prefill(r, true, 0).unwrap();
        assert_eq!(
            done.sandbox_image.as_deref(),
            Some("registry.k8s.io/pause:3.10")
        );
        let config = std::fs::read_to_string(r.join("etc/containerd/config.toml")).unwrap();
        assert_eq!(
            config,
            containerd::render(&containerd::Settings::for_node(
                "registry.k8s.io/pause:3.10"
            ))
        );
        assert!(r
            .join("etc/systemd/system/containerd.service.d/10-kiln.conf")
            .is_file());
        assert_eq!(
            std::fs::read_to_string(r.join("opt/cni/bin/bridge")).unwrap(),
            "plugin"
        );
    }

    /// A root with the baked pause image at `root`.
    fn root_with_pause(root: &Path, archive: &Path) {
        std::fs::create_dir_all(root.join(IMAGES)).unwrap();
        std::fs::write(
            root.join(MANIFEST),
            r#"{"sandbox_image": "registry.k8s.io/pause:3.10"}"#,
        )
        .unwrap();
        std::fs::copy(archive, root.join(IMAGES).join("pause.tar")).unwrap();
    }

    /// The real containerd (Debian's) fills the store; two fills give the same databases, and
    /// another containerd on the same store (as the node's would) finds the image complete,
    /// unpacked and pinned.
    #[test]
    #[cfg_attr(not(feature = "slow-tests"), ignore = "runs containerd (slow-tests)")]
    fn real_containerd_fills_the_store_the_node_finds() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, dir) = (tmp.path().join("root"), tmp.path().join("work"));
        std::fs::create_dir_all(&dir).unwrap();
        let archive = kiln_testsupport::oci_archive(&dir, "registry.k8s.io/pause:3.10");
        let again = tmp.path().join("again");
        for r in [&root, &again] {
            root_with_pause(r, &archive);
            assert_eq!(prefill(r, true, 1_700_000_000).unwrap().imported, 1);
        }
        for db in DATABASES {
            let [a, b] = [&root, &again].map(|r| std::fs::read(r.join(STORE).join(db)).unwrap());
            assert!(a == b, "two fills gave different {db}");
        }
        assert!(!root.join(STORE).join(INSTANCE_UUID).exists());
        let node = dir.join("node");
        let config = format!(
            "version = 2\nroot = {}\nstate = {}\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\naddress = {}\n",
            toml_string(&root.join(STORE)).unwrap(),
            toml_string(&node.join("state")).unwrap(),
            toml_string(&node.join("containerd.sock")).unwrap()
        );
        let daemon = kiln_testsupport::start_containerd(&node, &config);
        let stored = ctr::check(&daemon.socket).unwrap();
        assert_eq!(stored.len(), 1, "{stored:?}");
        assert!(stored[0].usable() && stored[0].name == "registry.k8s.io/pause:3.10");
        let listed = kiln_testsupport::ctr(&daemon.socket, &["images", "ls"]);
        assert!(listed.contains(ctr::PINNED_LABEL), "{listed}");
    }

    #[test]
    fn paths_are_toml_strings() {
        let text = format!("a = {}", toml_string(Path::new("/a \"b'")).unwrap());
        let parsed: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(parsed["a"].as_str(), Some("/a \"b'"));
    }
}
