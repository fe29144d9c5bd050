//! Benchmark: `kiln build` of a stand-in release (tests/support/release.rs: the stand-in
//! kubeadm, stand-in kubelet/kubectl/crictl scripts, Debian's real containerd, runc and CNI
//! plugins repackaged as their release tarballs; not a real Kubernetes release) served on
//! 127.0.0.1, with kubeadm's 7 images as small stand-ins in a real local registry.
//!
//! Prints cold build (empty cache), warm build (everything cached), the sysext packing time
//! (a warm squashfs build minus a warm build without sysext) and, as the floor, plain
//! `mksquashfs` of the same tree with its default options, measured in the same run. Run with
//! `cargo bench -p kiln --bench build`.

#[path = "../../tests/support/mod.rs"]
#[allow(missing_docs)]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::oci::Registry;
use support::release::{self, Server};

const RUNS: usize = 3;

struct Bench {
    server: Server,
    registry_mirror: String,
    firstboot: PathBuf,
    dir: PathBuf,
}

impl Bench {
    fn build(&self, recipe: &Path, out: &str, cache: &Path) -> Duration {
        let out = self.dir.join(out);
        let _ = std::fs::remove_dir_all(&out);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.arg("build")
            .arg(recipe)
            .arg("--out")
            .arg(&out)
            .arg("--cache")
            .arg(cache)
            .arg("--firstboot")
            .arg(&self.firstboot)
            .args(["--mirror", &self.registry_mirror])
            .args(release::mirror_args(&self.server.base));
        let start = Instant::now();
        let result = cmd.output().expect("running kiln build");
        let took = start.elapsed();
        assert!(
            result.status.success(),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
        took
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn recipe(dir: &Path, name: &str, outputs: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, release::recipe(&format!("[outputs]\n{outputs}"))).unwrap();
    path
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list of tests
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let kubeadm = support::cargo_bin("kiln-standins", "kubeadm");
    let registry = Registry::start(&dir.join("registry"));
    release::push_kubeadm_images(&registry, release::KUBE, &dir.join("layouts"));
    let bench = Bench {
        server: Server::start(release::files(&kubeadm)),
        registry_mirror: format!("registry.k8s.io=http://{}", registry.addr),
        firstboot: support::cargo_bin("kiln-firstboot", "kiln-firstboot"),
        dir: dir.clone(),
    };
    let squashfs = recipe(
        &dir,
        "squashfs.toml",
        "sysext = \"squashfs\"\nopt = false\n",
    );
    let no_sysext = recipe(&dir, "none.toml", "sysext = \"none\"\nopt = true\n");

    let cold: Vec<Duration> = (0..RUNS)
        .map(|n| bench.build(&squashfs, "cold", &dir.join(format!("cache-cold-{n}"))))
        .collect();
    let warm_cache = dir.join("cache-cold-0");
    let warm: Vec<Duration> = (0..RUNS)
        .map(|_| bench.build(&squashfs, "warm", &warm_cache))
        .collect();
    let warm_none: Vec<Duration> = (0..RUNS)
        .map(|_| bench.build(&no_sysext, "warm-none", &warm_cache))
        .collect();

    let image = dir
        .join("warm")
        .join(format!("kubernetes-{}-x86-64.raw", release::KUBE));
    let tree = dir.join("tree");
    support::sh(&format!(
        "unsquashfs -no-progress -d {} {} >/dev/null",
        tree.display(),
        image.display()
    ));
    let floor: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let out = dir.join("plain.squashfs");
            let _ = std::fs::remove_file(&out);
            let start = Instant::now();
            support::sh(&format!(
                "mksquashfs {} {} -no-progress >/dev/null",
                tree.display(),
                out.display()
            ));
            start.elapsed()
        })
        .collect();

    let (cold, warm, warm_none, floor) =
        (median(cold), median(warm), median(warm_none), median(floor));
    let packing = warm.saturating_sub(warm_none);
    let size = std::fs::metadata(&image).unwrap().len();
    let tree_size = support::sh(&format!("du -sb {} | cut -f1", tree.display()));
    println!(
        "kiln build, stand-in release (tree {} bytes, sysext {size} bytes), median of {RUNS}:",
        tree_size.trim()
    );
    println!("{:<52} {:>9}", "what", "seconds");
    let row = |what: &str, d: Duration| println!("{what:<52} {:>9.2}", d.as_secs_f64());
    row("cold build (empty cache: downloads, pulls, pack)", cold);
    row("warm build (all cached, no requests)", warm);
    row("warm build without sysext (/opt tar only)", warm_none);
    row("sysext packing (warm - warm without sysext)", packing);
    row("plain mksquashfs of the same tree (floor)", floor);
    println!(
        "packing / floor: {:.2}x   warm / cold: {:.2}x",
        packing.as_secs_f64() / floor.as_secs_f64(),
        warm.as_secs_f64() / cold.as_secs_f64()
    );
}
