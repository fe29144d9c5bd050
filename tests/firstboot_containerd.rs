//! The containerd configuration kiln writes, checked with the real containerd (Debian's
//! `containerd` + `runc`) started by the test with its own root, state and socket: the config is
//! accepted (`containerd config dump` shows kiln's settings), the CRI plugin comes up, the
//! preflight CRI check finds the socket, and baked image archives are verified and imported (the
//! sandbox image pinned).

#[path = "firstboot/mod.rs"]
mod firstboot;

use std::process::Command;
use std::time::Duration;

use firstboot::*;
use kiln_firstboot::node::containerd::wait_ready;
use kiln_firstboot::node::images::import_all;
use kiln_firstboot::node::preflight::{checks, Host, Outcome};
use kiln_testsupport::ctr;

#[test]
fn real_containerd_accepts_the_config_and_serves_cri() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let daemon = start_containerd(dir);

    let dump = Command::new("containerd")
        .arg("--config")
        .arg(dir.join("config.toml"))
        .args(["config", "dump"])
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dumped: toml::Value = toml::from_str(&String::from_utf8_lossy(&dump.stdout)).unwrap();
    let cri = &dumped["plugins"]["io.containerd.grpc.v1.cri"];
    assert_eq!(
        cri["sandbox_image"].as_str(),
        Some("registry.k8s.io/pause:3.10")
    );
    assert_eq!(
        cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"].as_bool(),
        Some(true)
    );
    assert_eq!(cri["cni"]["bin_dir"].as_str(), Some("/opt/cni/bin"));
    // The snapshotters a node never uses are not loaded (the CRI still came up: start_containerd).
    let disabled: Vec<&str> = dumped["disabled_plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(
        disabled.contains(&"io.containerd.snapshotter.v1.devmapper"),
        "{disabled:?}"
    );

    let host = Host {
        root: "/".into(),
        cri_socket: Some(format!("unix://{}", daemon.socket.display())),
    };
    assert_eq!(checks::cri(&host).outcome, Outcome::Pass);

    // Pre-pulled images: verified against SHA256SUMS, imported where kubelet looks.
    let images = dir.join("images");
    std::fs::create_dir(&images).unwrap();
    let archive = oci_archive(dir, "registry.k8s.io/pause:3.10");
    std::fs::copy(&archive, images.join("pause.tar")).unwrap();
    let sum = sha256_hex(&std::fs::read(&archive).unwrap());
    std::fs::write(images.join("SHA256SUMS"), format!("{sum}  pause.tar\n")).unwrap();
    let sandbox = Some("registry.k8s.io/pause:3.10");
    assert_eq!(
        import_all(&images, &daemon.socket, sandbox).unwrap().len(),
        1
    );
    assert!(k8s_images(&daemon.socket).contains("registry.k8s.io/pause:3.10"));
    // The sandbox image is pinned so kubelet's image garbage collection keeps it.
    let listed = Command::new("ctr")
        .arg("--address")
        .arg(&daemon.socket)
        .args([
            "-n",
            "k8s.io",
            "images",
            "ls",
            "name==registry.k8s.io/pause:3.10",
        ])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("io.cri-containerd.pinned=pinned"),
        "{listed}"
    );
    // A sandbox image that was not baked is left alone (no error).
    assert_eq!(
        import_all(&images, &daemon.socket, Some("registry.k8s.io/pause:9.9"))
            .unwrap()
            .len(),
        1
    );

    // A changed archive is refused before anything is imported.
    std::fs::write(
        images.join("SHA256SUMS"),
        format!("{}  pause.tar\n", "0".repeat(64)),
    )
    .unwrap();
    let err = import_all(&images, &daemon.socket, sandbox)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not match SHA256SUMS"), "{err}");
}

#[test]
fn waiting_for_an_absent_containerd_times_out_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let err = wait_ready(&tmp.path().join("none.sock"), Duration::from_millis(500))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not ready after"), "{err}");
}

/// An image-store containerd below `dir` and a node root whose manifest lists the pause image
/// (with its digest) and whose image directory holds its archive and SHA256SUMS; returns the
/// daemon, the image directory, the archive and the digest.
fn baked_root(
    dir: &std::path::Path,
) -> (
    kiln_testsupport::Containerd,
    std::path::PathBuf,
    std::path::PathBuf,
    String,
) {
    let state = dir.join("containerd");
    let daemon =
        kiln_testsupport::start_containerd(&state, &kiln_testsupport::image_store_config(&state));
    let archive = oci_archive(dir, "registry.k8s.io/pause:3.10");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("oci/index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let kiln = dir.join("root/usr/share/kiln");
    let images = kiln.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let name = "registry.k8s.io_pause_3.10.tar";
    std::fs::copy(&archive, images.join(name)).unwrap();
    let sum = sha256_hex(&std::fs::read(&archive).unwrap());
    std::fs::write(images.join("SHA256SUMS"), format!("{sum}  {name}\n")).unwrap();
    let manifest = serde_json::json!({"sandbox_image": "registry.k8s.io/pause:3.10",
        "image_digests": {"registry.k8s.io/pause:3.10": digest}});
    std::fs::write(kiln.join("manifest.json"), manifest.to_string()).unwrap();
    (daemon, images, archive, digest)
}

/// The store as the build fills it (`ctr images import`, as kiln build's prefill does) is checked
/// against the manifest without an import; an image removed from it, or one whose archive is
/// gone, is imported again or refused with one clear line; a sandbox image from another
/// repository gets the baked pause image's content under its name.
#[test]
fn a_prefilled_store_is_checked_and_only_what_it_lacks_is_imported() {
    use kiln_firstboot::node::store::{baked, ensure};
    let tmp = tempfile::tempdir().unwrap();
    let (daemon, images, archive, digest) = baked_root(tmp.path());
    let listed = baked(&images).unwrap().unwrap();
    assert_eq!(listed.len(), 1);
    ctr(
        &daemon.socket,
        &["images", "import", archive.to_str().unwrap()],
    );

    let sandbox = Some("registry.k8s.io/pause:3.10");
    let counts = || {
        let done = ensure(
            &images,
            &daemon.socket,
            &listed,
            sandbox,
            Default::default(),
        )
        .unwrap();
        (done.verified, done.imported.len())
    };
    assert_eq!(counts(), (1, 0));
    ctr(
        &daemon.socket,
        &["images", "rm", "registry.k8s.io/pause:3.10"],
    );
    assert_eq!(counts(), (0, 1));
    let checked = ctr(&daemon.socket, &["images", "check"]);
    assert!(
        checked.contains("registry.k8s.io/pause:3.10") && checked.contains(&digest),
        "{checked}"
    );

    // A kubeadm config asking for another repository: the baked pause image under that name.
    let mirror = "mirror.example/k8s/pause:3.10";
    ensure(
        &images,
        &daemon.socket,
        &listed,
        Some(mirror),
        Default::default(),
    )
    .unwrap();
    let listed_names = ctr(&daemon.socket, &["images", "ls"]);
    let line = listed_names
        .lines()
        .find(|l| l.starts_with(mirror))
        .unwrap_or_else(|| panic!("{mirror} not in the store: {listed_names}"));
    assert!(
        line.contains(&digest) && line.contains("io.cri-containerd.pinned=pinned"),
        "{line}"
    );

    // Lacking, and its archive gone: one clear line, nothing started.
    ctr(
        &daemon.socket,
        &["images", "rm", "registry.k8s.io/pause:3.10"],
    );
    std::fs::remove_file(images.join("registry.k8s.io_pause_3.10.tar")).unwrap();
    let err = format!(
        "{:#}",
        ensure(
            &images,
            &daemon.socket,
            &listed,
            sandbox,
            Default::default()
        )
        .unwrap_err()
    );
    assert!(
        err.contains("registry.k8s.io/pause:3.10 is not in containerd's store")
            && err.contains("is absent")
            && err.contains("kubeadm is not started"),
        "{err}"
    );
}

/// A sysext or PXE node (empty store): the import starts in the background before the steps
/// and the runtime step's check finds it done, nothing left to import; with a full store the
/// background check is all there is.
/// How long the tests let an early check wait for containerd's socket.
const TIMEOUT: Duration = Duration::from_secs(2);

#[test]
fn an_early_import_fills_an_empty_store_before_the_runtime_step() {
    use kiln_firstboot::node::store::{baked, ensure, Early};
    let tmp = tempfile::tempdir().unwrap();
    let (daemon, images, _, _) = baked_root(tmp.path());
    let early = Early::start(images.clone(), daemon.socket.clone(), TIMEOUT)
        .finish()
        .unwrap();
    assert_eq!(early.imported.len(), 1);
    assert!(k8s_images(&daemon.socket).contains("registry.k8s.io/pause:3.10"));
    let listed = baked(&images).unwrap().unwrap();
    let sandbox = Some("registry.k8s.io/pause:3.10");
    let ensured = ensure(&images, &daemon.socket, &listed, sandbox, early).unwrap();
    assert_eq!((ensured.verified, ensured.imported.len()), (1, 1));
    let listed_images = ctr(&daemon.socket, &["images", "ls"]);
    assert!(
        listed_images.contains("io.cri-containerd.pinned=pinned"),
        "{listed_images}"
    );
    // Nothing lacking: the early check imports nothing, and its answer is ensure's.
    let early = Early::start(images.clone(), daemon.socket.clone(), TIMEOUT)
        .finish()
        .unwrap();
    assert!(early.imported.is_empty() && early.stored.is_some());
    let ensured = ensure(&images, &daemon.socket, &listed, sandbox, early).unwrap();
    assert_eq!((ensured.verified, ensured.imported.len()), (1, 0));
    // containerd gone: the early check fails, and says so in the log only.
    drop(daemon);
    assert!(Early::start(images, tmp.path().join("none.sock"), TIMEOUT)
        .finish()
        .is_none());
}
