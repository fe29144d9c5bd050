//! `kiln build` against a stand-in Kubernetes release served on 127.0.0.1 (see
//! tests/support/release.rs): cold and warm builds, the cache, and every failure mode of a
//! download (checksum mismatch, pinned digest, server dying mid-download, 404) leaving no output
//! and no poisoned cache.

mod support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use std::process::Command;
use support::release::{self, Fault, Server};

use support::oci::{ctr, start_containerd, Registry};
use support::{cargo_bin, kiln, sh, Run};

struct Fixture {
    server: Server,
    firstboot: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let kubeadm = cargo_bin("kiln-standins", "kubeadm");
        Fixture {
            server: Server::start(release::files(&kubeadm)),
            firstboot: cargo_bin("kiln-firstboot", "kiln-firstboot"),
        }
    })
}

/// A fresh server (own faults and request counter) for tests that break things.
fn own_server() -> Server {
    static FILES: OnceLock<std::collections::BTreeMap<String, Vec<u8>>> = OnceLock::new();
    Server::start(
        FILES
            .get_or_init(|| release::files(&cargo_bin("kiln-standins", "kubeadm")))
            .clone(),
    )
}

fn build(server: &Server, recipe: &Path, out: &Path, cache: &Path, extra: &[&str]) -> Run {
    build_umask("022", server, recipe, out, cache, extra)
}

/// `kiln build` under `umask`.
fn build_umask(
    umask: &str,
    server: &Server,
    recipe: &Path,
    out: &Path,
    cache: &Path,
    extra: &[&str],
) -> Run {
    let mut args: Vec<String> = vec![
        "build".into(),
        recipe.display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--cache".into(),
        cache.display().to_string(),
        "--firstboot".into(),
        fixture().firstboot.display().to_string(),
    ];
    args.extend(release::mirror_args(&server.base));
    args.extend(extra.iter().map(|s| s.to_string()));
    Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .args(&args)
        .output()
        .expect("running kiln")
        .into()
}

fn write_recipe(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("recipe.toml");
    std::fs::write(&path, release::recipe(extra)).unwrap();
    path
}

const NO_IMAGES: &str = "[images]\nkubeadm = \"none\"\n";
/// No images and only the /opt tar: for tests about downloads, not packing.
const FAST: &str = "[images]\nkubeadm = \"none\"\n[outputs]\nsysext = \"none\"\n";

fn assert_failed_cleanly(run: &Run, out: &Path, needle: &str) {
    assert!(!run.ok, "the build should have failed:\n{}", run.stderr);
    assert!(
        run.stderr.contains(needle),
        "expected {needle:?} in:\n{}",
        run.stderr
    );
    assert_eq!(run.stderr.matches("error:").count(), 1, "{}", run.stderr);
    assert!(!out.exists(), "a failed build left {}", out.display());
    let parent = out.parent().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".kiln-build-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "build directories left behind: {leftovers:?}"
    );
}

/// Files in the cache's blob store.
fn cached_blobs(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache.join("sha256"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Extracts the squashfs sysext `image` with the real unsquashfs into a new directory.
fn unsquash(image: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("x");
    let out = Command::new("unsquashfs")
        .args(["-no-progress", "-d"])
        .arg(&target)
        .arg(image)
        .output()
        .expect("unsquashfs (squashfs-tools, installed by .ci/setup)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn sysext_name() -> String {
    format!("kubernetes-{}-x86-64.raw", release::KUBE)
}

#[test]
fn cold_then_warm_build_downloads_nothing_the_second_time() {
    let server = own_server();
    let dir = tempfile::tempdir().unwrap();
    let recipe = write_recipe(dir.path(), NO_IMAGES);
    let cache = dir.path().join("cache");
    let before = server.request_count();
    let run = build(&server, &recipe, &dir.path().join("out1"), &cache, &[]);
    assert!(run.ok, "{}", run.stderr);
    assert!(server.request_count() > before);
    let out = dir.path().join("out1");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let opt_tar = format!("kubernetes-{}-x86-64-opt.tar", release::KUBE);
    assert_eq!(
        names,
        ["SHA256SUMS", &opt_tar, &sysext_name(), "manifest.json"]
    );
    let x = unsquash(&out.join(sysext_name()));
    let tree = x.path().join("x");
    for file in [
        "usr/bin/kubeadm",
        "usr/bin/kubelet",
        "usr/bin/kubectl",
        "usr/bin/crictl",
        "usr/bin/containerd",
        "usr/bin/containerd-shim-runc-v2",
        "usr/bin/ctr",
        "usr/bin/runc",
        "usr/bin/kiln-firstboot",
        "usr/libexec/cni/bridge",
        "usr/libexec/cni/portmap",
        "usr/lib/systemd/system/kubelet.service",
        "usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
        "usr/lib/systemd/system/containerd.service",
        "usr/lib/systemd/system/kiln-firstboot.service",
        "usr/lib/systemd/system/kiln-join-service.service",
        "usr/lib/systemd/system/multi-user.target.d/10-kiln.conf",
        "usr/lib/extension-release.d/extension-release.kubernetes",
        "usr/share/kiln/manifest.json",
    ] {
        assert!(tree.join(file).is_file(), "{file} missing from the sysext");
    }
    assert_eq!(
        std::fs::read(tree.join("usr/bin/runc")).unwrap(),
        std::fs::read("/usr/sbin/runc").unwrap()
    );
    let release_text = std::fs::read_to_string(
        tree.join("usr/lib/extension-release.d/extension-release.kubernetes"),
    )
    .unwrap();
    assert!(
        release_text.contains("ARCHITECTURE=x86-64"),
        "{release_text}"
    );
    let sums = sh(&format!(
        "cd {} && sha256sum --check --strict SHA256SUMS",
        out.display()
    ));
    assert!(sums.contains(&format!("{}: OK", sysext_name())), "{sums}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let kubeadm = manifest["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "kubeadm")
        .unwrap();
    assert_eq!(
        kubeadm["url"],
        format!(
            "https://dl.k8s.io/release/{}/bin/linux/amd64/kubeadm",
            release::KUBE
        ),
        "the manifest records the official URL, not the mirror"
    );
    let listing = sh(&format!("tar -tvf {}", out.join(&opt_tar).display()));
    for entry in [
        "opt/bin/kubeadm",
        "opt/cni/bin/bridge",
        "etc/systemd/system/kubelet.service",
    ] {
        assert!(
            listing.contains(entry),
            "{entry} not in the opt tar:\n{listing}"
        );
    }

    let before = server.request_count();
    let run = build(&server, &recipe, &dir.path().join("out2"), &cache, &[]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(
        server.request_count(),
        before,
        "the warm build made requests"
    );
    assert!(run.stderr.contains("0 downloaded"), "{}", run.stderr);
    assert_eq!(
        std::fs::read(out.join("SHA256SUMS")).unwrap(),
        std::fs::read(dir.path().join("out2/SHA256SUMS")).unwrap(),
        "a warm build gave different bytes"
    );
}

#[test]
fn erofs_sysext_passes_fsck_erofs() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let recipe = write_recipe(
        dir.path(),
        &format!("{NO_IMAGES}[outputs]\nsysext = \"erofs\"\nopt = false\n"),
    );
    let out = dir.path().join("out");
    let run = build(&f.server, &recipe, &out, &dir.path().join("cache"), &[]);
    assert!(run.ok, "{}", run.stderr);
    let extracted = dir.path().join("x");
    let check = Command::new("fsck.erofs")
        .arg(format!("--extract={}", extracted.display()))
        .arg(out.join(sysext_name()))
        .output()
        .expect("fsck.erofs (erofs-utils, installed by .ci/setup)");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(
        std::fs::read(extracted.join("usr/bin/kiln-firstboot")).unwrap(),
        std::fs::read(&f.firstboot).unwrap()
    );
}

#[test]
fn checksum_mismatch_is_a_hard_error_and_the_cache_stays_clean() {
    let server = own_server();
    let dir = tempfile::tempdir().unwrap();
    let recipe = write_recipe(dir.path(), FAST);
    let cache = dir.path().join("cache");
    let path = format!("/k8s/{}/bin/linux/amd64/kubelet", release::KUBE);
    server.fault(&path, Fault::Corrupt);
    let out = dir.path().join("out");
    let run = build(&server, &recipe, &out, &cache, &[]);
    assert_failed_cleanly(&run, &out, "does not match its checksum");
    assert!(run.stderr.contains("kubelet"), "{}", run.stderr);
    for blob in cached_blobs(&cache) {
        let bytes = std::fs::read(cache.join("sha256").join(&blob)).unwrap();
        assert_eq!(
            support::sha256_hex(&bytes),
            blob,
            "unverified blob in the cache"
        );
    }
    server.heal();
    let run = build(&server, &recipe, &out, &cache, &[]);
    assert!(run.ok, "{}", run.stderr);
}

#[test]
fn the_next_build_removes_a_killed_builds_directory_only() {
    let server = own_server();
    let dir = tempfile::tempdir().unwrap();
    let recipe = write_recipe(dir.path(), FAST);
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let stale = dir.path().join(".kiln-build-killed");
    std::fs::create_dir_all(stale.join("amd64/usr/bin")).unwrap();
    std::fs::write(stale.join("amd64/usr/bin/kubelet"), "partial").unwrap();
    let live = dir.path().join(".kiln-build-running");
    std::fs::create_dir(&live).unwrap();
    for d in [&stale, &live] {
        std::fs::File::open(d)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
    }
    // A running build holds a lock on its directory.
    let _lock = nix::fcntl::Flock::lock(
        std::fs::File::open(&live).unwrap(),
        nix::fcntl::FlockArg::LockExclusiveNonblock,
    )
    .unwrap();
    let out = dir.path().join("out");
    let run = build(&server, &recipe, &out, &dir.path().join("cache"), &[]);
    assert!(run.ok, "{}", run.stderr);
    assert!(
        !stale.exists(),
        "the killed build's directory is still there"
    );
    assert!(live.is_dir(), "a running build's directory was removed");
}

#[test]
fn a_wrong_checksum_file_is_not_remembered() {
    let server = own_server();
    let dir = tempfile::tempdir().unwrap();
    let recipe = write_recipe(dir.path(), FAST);
    let cache = dir.path().join("cache");
    let sums = format!("/k8s/{}/bin/linux/amd64/kubelet.sha256", release::KUBE);
    server.fault(&sums, Fault::Corrupt);
    let out = dir.path().join("out");
    let run = build(&server, &recipe, &out, &cache, &[]);
    assert_failed_cleanly(&run, &out, "kubelet");
    server.heal();
    let run = build(&server, &recipe, &out, &cache, &[]);
    assert!(
        run.ok,
        "the cache kept the wrong checksum file:\n{}",
        run.stderr
    );
}

#[test]
fn a_pinned_checksum_wins_over_the_published_one() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let pin = format!(
        "{NO_IMAGES}[checksums.amd64]\nkubectl = \"{}\"\n",
        "0".repeat(64)
    );
    let recipe = write_recipe(dir.path(), &pin);
    let out = dir.path().join("out");
    let run = build(&f.server, &recipe, &out, &dir.path().join("cache"), &[]);
    assert_failed_cleanly(&run, &out, "does not match its checksum");
    assert!(run.stderr.contains("kubectl"), "{}", run.stderr);
}

#[test]
fn a_server_dying_mid_download_fails_the_build_without_poisoning_the_cache() {
    let server = own_server();
    let dir = tempfile::tempdir().unwrap();
    let recipe = write_recipe(dir.path(), FAST);
    let cache = dir.path().join("cache");
    let path = format!(
        "/containerd/v{0}/containerd-{0}-linux-amd64.tar.gz",
        release::CONTAINERD
    );
    server.fault(&path, Fault::Truncate);
    let out = dir.path().join("out");
    let run = build(&server, &recipe, &out, &cache, &[]);
    assert_failed_cleanly(&run, &out, "gave up after 3 attempts");
    assert!(std::fs::read_dir(cache.join("tmp"))
        .unwrap()
        .next()
        .is_none());
    server.heal();
    let run = build(&server, &recipe, &out, &cache, &[]);
    assert!(run.ok, "{}", run.stderr);
}

#[test]
fn a_missing_release_file_names_the_url() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let recipe = write_recipe(dir.path(), FAST).display().to_string();
    let text = std::fs::read_to_string(&recipe)
        .unwrap()
        .replace("crictl = \"1.31.1\"", "crictl = \"9.9.9\"");
    std::fs::write(&recipe, text).unwrap();
    let out = dir.path().join("out");
    let run = build(
        &f.server,
        Path::new(&recipe),
        &out,
        &dir.path().join("cache"),
        &[],
    );
    assert_failed_cleanly(&run, &out, "404");
    assert!(
        run.stderr.contains("crictl-v9.9.9-linux-amd64.tar.gz"),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_input_is_refused_before_any_download() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let recipe = write_recipe(dir.path(), FAST);
    let out = dir.path().join("out");
    let before = f.server.request_count();
    let run = build(
        &f.server,
        &recipe,
        &out,
        &dir.path().join("cache"),
        &["--arch", "arm64"],
    );
    assert_failed_cleanly(&run, &out, "--arch arm64");
    let run = kiln(&[
        "build",
        recipe.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--firstboot",
        "/etc/os-release",
    ]);
    assert_failed_cleanly(&run, &out, "not a Linux amd64 executable");
    let bad_image = write_recipe(
        dir.path(),
        "[images]\nkubeadm = \"none\"\nextra = [\"registry.k8s.io/Pause:3.10\"]\n",
    );
    let run = build(&f.server, &bad_image, &out, &dir.path().join("cache"), &[]);
    assert_failed_cleanly(&run, &out, "images.extra[0]: image reference");
    let recipe = write_recipe(dir.path(), FAST);
    std::fs::create_dir(&out).unwrap();
    let run = build(&f.server, &recipe, &out, &dir.path().join("cache"), &[]);
    assert!(
        !run.ok && run.stderr.contains("already exists"),
        "{}",
        run.stderr
    );
    assert_eq!(f.server.request_count(), before);
}

#[test]
fn kubeadm_images_are_baked_reproducibly_and_import_into_containerd() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(&dir.path().join("registry"));
    let (images, pause_index) =
        release::push_kubeadm_images(&registry, release::KUBE, &dir.path().join("layouts"));
    let recipe = write_recipe(dir.path(), "[outputs]\nopt = false\n");
    let mirror = format!("registry.k8s.io=http://{}", registry.addr);
    let mut sums = Vec::new();
    for n in 1..=2 {
        let out = dir.path().join(format!("out{n}"));
        let cache = dir.path().join(format!("cache{n}"));
        // The second build runs under umask 077: the build machine's umask must not matter.
        let umask = if n == 1 { "022" } else { "077" };
        let run = build_umask(
            umask,
            &f.server,
            &recipe,
            &out,
            &cache,
            &["--mirror", &mirror],
        );
        assert!(run.ok, "{}", run.stderr);
        sums.push(std::fs::read_to_string(out.join("SHA256SUMS")).unwrap());
    }
    assert_eq!(
        sums[0], sums[1],
        "two cold builds (umask 022 and 077) gave different bytes"
    );

    let x = unsquash(&dir.path().join("out1").join(sysext_name()));
    let kiln_dir = x.path().join("x/usr/share/kiln");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(kiln_dir.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["sandbox_image"], "registry.k8s.io/pause:3.10");
    let check = sh(&format!(
        "cd {} && sha256sum --check --strict SHA256SUMS",
        kiln_dir.join("images").display()
    ));
    assert_eq!(check.lines().count(), 7, "{check}");

    let daemon = start_containerd(&dir.path().join("containerd"));
    for entry in std::fs::read_dir(kiln_dir.join("images")).unwrap() {
        let tar = entry.unwrap().path();
        if tar.extension().is_some_and(|e| e == "tar") {
            ctr(&daemon.socket, &["images", "import", tar.to_str().unwrap()]);
        }
    }
    let listed = ctr(&daemon.socket, &["images", "ls"]);
    for image in &images {
        assert!(listed.contains(image), "{image} not imported:\n{listed}");
    }
    let pause_line = listed
        .lines()
        .find(|l| l.starts_with("registry.k8s.io/pause:3.10 "))
        .unwrap();
    assert!(
        pause_line.contains(&pause_index),
        "{pause_line} (want {pause_index})"
    );
}

#[test]
fn the_shipped_flatcar_recipe_builds() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/flatcar-sysext.toml");
    let shipped_text = std::fs::read_to_string(&shipped).unwrap();
    let recipe: toml::Value = toml::from_str(&shipped_text).unwrap();
    let text = |v: &toml::Value| v.as_str().unwrap().to_owned();
    let versions = release::Versions {
        kube: text(&recipe["kubernetes_version"]),
        cni: text(&recipe["components"]["cni_plugins"]),
        crictl: text(&recipe["components"]["crictl"]),
        ..Default::default()
    };
    let server = Server::start(release::files_for(
        &cargo_bin("kiln-standins", "kubeadm"),
        &versions,
    ));
    let dir = tempfile::tempdir().unwrap();
    // The shipped recipe pins the real binaries' SHA-256s; the stand-ins served here differ.
    let path = dir.path().join("flatcar-sysext.toml");
    std::fs::write(&path, release::without_pinned_checksums(&shipped_text)).unwrap();
    let registry = Registry::start(&dir.path().join("registry"));
    release::push_kubeadm_images(&registry, &versions.kube, &dir.path().join("layouts"));
    let mirror = format!("registry.k8s.io=http://{}", registry.addr);
    let out = dir.path().join("out");
    let cache = dir.path().join("cache");
    let run = build(
        &server,
        &path,
        &out,
        &cache,
        &["--arch", "amd64", "--mirror", &mirror],
    );
    assert!(run.ok, "{}", run.stderr);
    let raw = format!("kubernetes-{}-x86-64.raw", versions.kube);
    for file in [
        raw.as_str(),
        "kubernetes.conf",
        "manifest.json",
        "SHA256SUMS",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let transfer = std::fs::read_to_string(out.join("kubernetes.conf")).unwrap();
    let minor = versions.kube.rsplit_once('.').unwrap().0;
    assert!(
        transfer.contains(&format!("MatchPattern=kubernetes-{minor}.@v-%a.raw")),
        "{transfer}"
    );
}

/// A release newer than kiln's table: the build asks the downloaded (stand-in) kubeadm, bakes
/// the images it lists — values in no table — and says so in the plan and the manifest.
#[test]
fn a_release_newer_than_the_table_bakes_what_its_kubeadm_lists() {
    let dir = tempfile::tempdir().unwrap();
    let future = "v1.99.0";
    let versions = release::Versions {
        kube: future.into(),
        ..Default::default()
    };
    let server = Server::start(release::files_for(
        &cargo_bin("kiln-standins", "kubeadm"),
        &versions,
    ));
    let kubeadm = release::standin_kubeadm_release(dir.path(), future);
    let listed = support::kiln_ok(&["images", "list", "--kubeadm", kubeadm.to_str().unwrap()]);
    let images: Vec<String> = listed.stdout.lines().map(str::to_owned).collect();
    assert!(
        images.contains(&"registry.k8s.io/etcd:3.99.0-0".to_owned()),
        "{images:?}"
    );
    let registry = Registry::start(&dir.path().join("registry"));
    release::push_images(&registry, &images, &dir.path().join("layouts"));
    let text = release::recipe("[outputs]\nopt = false\n").replace(release::KUBE, future);
    let recipe = dir.path().join("future.toml");
    std::fs::write(&recipe, text).unwrap();
    let mirror = format!("registry.k8s.io=http://{}", registry.addr);
    let (out, cache) = (dir.path().join("out"), dir.path().join("cache"));
    let plan = build(&server, &recipe, &out, &cache, &["--dry-run"]);
    assert!(plan.ok, "{}", plan.stderr);
    assert!(
        plan.stdout
            .contains("kubeadm's list from the baked kubeadm (amd64)"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("does not know this release"),
        "{}",
        plan.stdout
    );
    let run = build(&server, &recipe, &out, &cache, &["--mirror", &mirror]);
    assert!(run.ok, "{}", run.stderr);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["kubeadm_images_from"], "kubeadm");
    assert_eq!(manifest["kubeadm_images"], serde_json::json!(images));
    let x = unsquash(&out.join(format!("kubernetes-{future}-x86-64.raw")));
    let inner: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(x.path().join("x/usr/share/kiln/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(inner["sandbox_image"], "registry.k8s.io/pause:3.99");
    let archives = std::fs::read_dir(x.path().join("x/usr/share/kiln/images"))
        .unwrap()
        .count();
    assert_eq!(archives, 8, "7 image archives and SHA256SUMS");
}

/// A downloaded kubeadm that fails or prints garbage when asked for its images stops the build
/// with one error naming it and what it printed, and leaves no output.
#[test]
fn a_kubeadm_that_cannot_list_its_images_stops_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = write_recipe(dir.path(), "[outputs]\nsysext = \"none\"\n");
    let kubeadm_path = format!("/k8s/{}/bin/linux/amd64/kubeadm", release::KUBE);
    for (n, (script, needle)) in [
        (
            "echo 'not json'",
            "printed something that is not kubeadm's image list",
        ),
        (
            "echo 'panic: runtime error' >&2; exit 2",
            "panic: runtime error",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut files = release::files(&cargo_bin("kiln-standins", "kubeadm"));
        let bytes = format!("#!/bin/sh\n{script}\n").into_bytes();
        files.insert(
            format!("{kubeadm_path}.sha256"),
            support::sha256_hex(&bytes).into_bytes(),
        );
        files.insert(kubeadm_path.clone(), bytes);
        let server = Server::start(files);
        let out = dir.path().join(format!("out{n}"));
        let cache = dir.path().join(format!("cache{n}"));
        let run = build(&server, &recipe, &out, &cache, &[]);
        assert_failed_cleanly(&run, &out, needle);
        assert!(
            run.stderr.contains("asking the baked kubeadm v1.31.2 for its images: kubeadm (verified download of https://dl.k8s.io/release/v1.31.2/bin/linux/amd64/kubeadm)"),
            "{}",
            run.stderr
        );
    }
}
