//! Pre-pulled images (`kiln pull`, the image part of `kiln build`) against real components: a
//! real registry (Debian's `docker-registry` on 127.0.0.1) loaded by the real `skopeo` with small
//! images made here (a single-arch image and an amd64 + arm64 index), reached through `--mirror`
//! and a local proxy that counts requests and injects faults; the archives are imported into a
//! real containerd. Only 127.0.0.1 is contacted.

mod support;

use std::path::Path;

use support::oci::*;
use support::*;

/// The images every test pushes: `registry.k8s.io/pause:3.10` (single-arch amd64) and
/// `docker.io/library/multi:1` (an index over amd64, arm/v7 and arm64).
struct Pushed {
    pause_manifest: String,
    pause_layer: String,
    multi_index: String,
    multi_amd64: String,
    multi_arm64: String,
    multi_arm: String,
    amd64_layer: String,
    arm64_layer: String,
}

fn push_images(dir: &Path, registry: &Registry) -> Pushed {
    let single = Layout::new(&dir.join("single"));
    let (pause, pause_layer) = single.image("amd64", "pause\n");
    single.tag(&pause, "3.10");
    registry.push(&single, "3.10", "pause");

    let multi = Layout::new(&dir.join("multi"));
    let (amd64, amd64_layer) = multi.image("amd64", "amd64\n");
    let (arm64, arm64_layer) = multi.image("arm64", "arm64\n");
    let (arm, _) = multi.image("arm", "arm\n");
    let index = multi.index(&[("amd64", &amd64), ("arm/v7", &arm), ("arm64", &arm64)]);
    multi.tag(&index, "1");
    registry.push(&multi, "1", "library/multi");
    Pushed {
        pause_manifest: pause.digest,
        pause_layer: pause_layer.digest,
        multi_index: index.digest,
        multi_amd64: amd64.digest,
        multi_arm64: arm64.digest,
        multi_arm: arm.digest,
        amd64_layer: amd64_layer.digest,
        arm64_layer: arm64_layer.digest,
    }
}

/// `kiln pull` through `proxy` for both mirrored registries.
fn pull(proxy: &str, cache: &Path, out: &Path, platform: &str, images: &[&str]) -> Run {
    let registry_k8s = format!("registry.k8s.io=http://{proxy}");
    let docker = format!("docker.io=http://{proxy}");
    let mut args = vec![
        "pull",
        "--platform",
        platform,
        "--mirror",
        &registry_k8s,
        "--mirror",
        &docker,
        "--source-date-epoch",
        "1700000000",
        "--cache",
        cache.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(images);
    kiln(&args)
}

const IMAGES: &[&str] = &["registry.k8s.io/pause:3.10", "multi:1"];

fn index_json(archive: &Path) -> serde_json::Value {
    let mut tar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some("index.json") {
            return serde_json::from_reader(&mut entry).unwrap();
        }
    }
    panic!("{} has no index.json", archive.display());
}

fn archive_blobs(archive: &Path) -> Vec<String> {
    let mut tar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    tar.entries()
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path().unwrap().display().to_string();
            path.strip_prefix("blobs/sha256/")
                .filter(|h| !h.is_empty())
                .map(|h| format!("sha256:{h}"))
        })
        .collect()
}

/// Files below the cache's blob store (name = digest) and its temporary directory.
fn cache_state(cache: &Path) -> (Vec<String>, usize) {
    let mut blobs: Vec<String> = std::fs::read_dir(cache.join("sha256"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    blobs.sort();
    let tmp = std::fs::read_dir(cache.join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0);
    (blobs, tmp)
}

#[test]
fn pulls_platforms_from_indexes_and_containerd_imports_the_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let registry = Registry::start(&dir.join("registry"));
    let pushed = push_images(dir, &registry);
    let proxy = Proxy::start(&registry.addr);
    let cache = dir.join("cache");

    let out = dir.join("amd64");
    let run = pull(&proxy.addr, &cache, &out, "linux/amd64", IMAGES);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!(
            "registry.k8s.io_pause_3.10.tar  registry.k8s.io/pause:3.10  {}\n\
             docker.io_library_multi_1.tar  docker.io/library/multi:1  {}\n",
            pushed.pause_manifest, pushed.multi_index
        )
    );
    let pause_tar = out.join("registry.k8s.io_pause_3.10.tar");
    let multi_tar = out.join("docker.io_library_multi_1.tar");
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    for tar in [&pause_tar, &multi_tar] {
        let name = tar.file_name().unwrap().to_str().unwrap();
        let hex = sha256_hex(&std::fs::read(tar).unwrap());
        assert!(sums.contains(&format!("{hex}  {name}\n")), "{sums}");
    }
    let index = index_json(&pause_tar);
    assert_eq!(
        index["manifests"][0]["annotations"]["io.containerd.image.name"],
        "registry.k8s.io/pause:3.10"
    );
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "registry.k8s.io/pause:3.10"
    );
    // amd64 takes the amd64 manifest of the index and its layers; the other manifests come
    // along (containerd may read them on import), their layers do not.
    let blobs = archive_blobs(&multi_tar);
    for digest in [
        &pushed.multi_index,
        &pushed.multi_amd64,
        &pushed.multi_arm64,
        &pushed.multi_arm,
        &pushed.amd64_layer,
    ] {
        assert!(blobs.contains(digest), "{digest} missing");
    }
    assert!(!blobs.contains(&pushed.arm64_layer));

    // arm64 gives the other manifest.
    let out_arm = dir.join("arm64");
    let run = pull(&proxy.addr, &cache, &out_arm, "linux/arm64", &["multi:1"]);
    assert!(run.ok, "{}", run.stderr);
    let blobs = archive_blobs(&out_arm.join("docker.io_library_multi_1.tar"));
    assert!(blobs.contains(&pushed.multi_index));
    assert!(blobs.contains(&pushed.arm64_layer));
    assert!(!blobs.contains(&pushed.amd64_layer));

    // A single-arch amd64 image is refused for arm64, naming both platforms.
    let run = pull(
        &proxy.addr,
        &cache,
        &dir.join("none"),
        "linux/arm64",
        &["registry.k8s.io/pause:3.10"],
    );
    assert!(!run.ok);
    assert!(
        run.stderr.contains("linux/amd64, not linux/arm64"),
        "{}",
        run.stderr
    );

    // The real containerd imports the archives as they are, under the full names, with the
    // digests the registry serves (the index for a multi-arch image), and unpacks them.
    let daemon = start_containerd(&dir.join("containerd"));
    for tar in [&pause_tar, &multi_tar] {
        ctr(&daemon.socket, &["images", "import", tar.to_str().unwrap()]);
    }
    let listed = ctr(&daemon.socket, &["images", "ls"]);
    let target = |name: &str| -> String {
        listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or_else(|| panic!("{name} not imported:\n{listed}"))
            .to_owned()
    };
    assert_eq!(target("registry.k8s.io/pause:3.10"), pushed.pause_manifest);
    assert_eq!(
        target(&format!("registry.k8s.io/pause@{}", pushed.pause_manifest)),
        pushed.pause_manifest
    );
    assert_eq!(target("docker.io/library/multi:1"), pushed.multi_index);
    // The arm64 archive imports too, also when every platform of the index is walked (as
    // containerd's default matcher on arm64 walks linux/arm/v7).
    let arm = out_arm.join("docker.io_library_multi_1.tar");
    let arm = arm.to_str().unwrap();
    let all = ["images", "import", "--all-platforms", "--no-unpack", arm];
    ctr_in(&daemon.socket, "arm64-all", &all);
    let arm64 = ["images", "import", "--platform", "linux/arm64", arm];
    ctr_in(&daemon.socket, "arm64", &arm64);
    let check = ctr(
        &daemon.socket,
        &["images", "check", "name==docker.io/library/multi:1"],
    );
    assert!(check.contains("complete"), "{check}");
}

#[test]
fn a_warm_cache_makes_no_request_and_archives_are_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut registry = Registry::start(&dir.join("registry"));
    push_images(dir, &registry);
    let proxy = Proxy::start(&registry.addr);
    let cache = dir.join("cache");

    let first = dir.join("first");
    let run = pull(&proxy.addr, &cache, &first, "linux/amd64", IMAGES);
    assert!(run.ok, "{}", run.stderr);
    let cold = proxy.requests().len();
    // Two tags, the index's three manifests, a config and a layer per image.
    assert_eq!(cold, 9, "{:?}", proxy.requests());

    // Warm: nothing asked, even with the registry gone.
    registry.stop();
    let second = dir.join("second");
    let run = pull(&proxy.addr, &cache, &second, "linux/amd64", IMAGES);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(proxy.requests().len(), cold, "{:?}", proxy.requests());
    for name in [
        "registry.k8s.io_pause_3.10.tar",
        "docker.io_library_multi_1.tar",
        "SHA256SUMS",
    ] {
        assert_eq!(
            std::fs::read(first.join(name)).unwrap(),
            std::fs::read(second.join(name)).unwrap(),
            "{name} differs"
        );
    }

    // --refresh asks for tags again (and fails here: the registry is down).
    let run = kiln(&[
        "pull",
        "--refresh",
        "--mirror",
        &format!("registry.k8s.io=http://{}", proxy.addr),
        "--cache",
        cache.to_str().unwrap(),
        "--out",
        dir.join("third").to_str().unwrap(),
        "registry.k8s.io/pause:3.10",
    ]);
    assert!(!run.ok);
    assert!(proxy.requests().len() > cold);
    assert!(!dir.join("third").exists());
}

#[test]
fn failures_are_hard_errors_that_write_nothing_and_keep_the_cache_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut registry = Registry::start(&dir.join("registry"));
    let pushed = push_images(dir, &registry);
    let proxy = Proxy::start(&registry.addr);
    let cache = dir.join("cache");
    let out = dir.join("out");

    // Unknown tag: the error names the reference and the 404.
    let run = pull(
        &proxy.addr,
        &cache,
        &out,
        "linux/amd64",
        &["registry.k8s.io/pause:9.99"],
    );
    assert!(!run.ok);
    assert!(
        run.stderr.contains("registry.k8s.io/pause:9.99") && run.stderr.contains("404"),
        "{}",
        run.stderr
    );
    assert!(!out.exists());

    // A layer altered on the way: digest mismatch naming image and blob; nothing written, and
    // the bad bytes are not in the cache.
    proxy.set_fault(&pushed.pause_layer, Fault::Corrupt);
    let run = pull(&proxy.addr, &cache, &out, "linux/amd64", IMAGES);
    assert!(!run.ok);
    for needle in [
        "registry.k8s.io/pause:3.10",
        &format!("layer {}", pushed.pause_layer),
        "SHA-256 mismatch",
    ] {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
    assert!(!out.exists());
    let (blobs, tmp_files) = cache_state(&cache);
    let layer_hex = pushed.pause_layer.trim_start_matches("sha256:");
    assert!(!blobs.iter().any(|b| b == layer_hex));
    assert_eq!(tmp_files, 0);
    for blob in &blobs {
        assert_eq!(
            &sha256_hex(&std::fs::read(cache.join("sha256").join(blob)).unwrap()),
            blob
        );
    }

    // The registry dies in the middle of a blob: an error, and the cache is not poisoned.
    proxy.set_fault(&pushed.pause_layer, Fault::Truncate);
    let run = pull(&proxy.addr, &cache, &out, "linux/amd64", IMAGES);
    assert!(!run.ok);
    assert!(run.stderr.contains(&pushed.pause_layer), "{}", run.stderr);
    assert!(!out.exists());
    let (blobs, tmp_files) = cache_state(&cache);
    assert!(!blobs.iter().any(|b| b == layer_hex));
    assert_eq!(tmp_files, 0);

    // A blob corrupted in the registry's own storage is refused the same way.
    proxy.clear_fault();
    let stored = registry.blob_file(&pushed.pause_layer);
    let good = std::fs::read(&stored).unwrap();
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0xff;
    std::fs::write(&stored, &bad).unwrap();
    let run = pull(&proxy.addr, &cache, &out, "linux/amd64", IMAGES);
    assert!(!run.ok);
    assert!(run.stderr.contains("SHA-256 mismatch"), "{}", run.stderr);
    assert!(!out.exists());

    // Repaired: the same cache pulls and the archives are complete.
    std::fs::write(&stored, &good).unwrap();
    let run = pull(&proxy.addr, &cache, &out, "linux/amd64", IMAGES);
    assert!(run.ok, "{}", run.stderr);
    assert!(
        archive_blobs(&out.join("registry.k8s.io_pause_3.10.tar")).contains(&pushed.pause_layer)
    );

    // The registry gone entirely (cold cache): a connection error naming the image.
    registry.stop();
    let run = pull(
        &proxy.addr,
        &dir.join("cold"),
        &dir.join("out2"),
        "linux/amd64",
        &["registry.k8s.io/pause:3.10"],
    );
    assert!(!run.ok);
    assert!(
        run.stderr.contains("registry.k8s.io/pause:3.10"),
        "{}",
        run.stderr
    );
    assert!(!dir.join("out2").exists());
}
