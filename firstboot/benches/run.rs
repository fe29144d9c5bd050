//! Benchmark: `kiln-firstboot run` on a prepared root, from start to the kubeadm invocation: a
//! worker with a kiln node config (NoCloud seed directory), a control plane answering /readyz at
//! once, and the **stand-in kubeadm** (records its call; not the real kubeadm). Prints the median
//! total and per-step times from status.json; run with `cargo bench -p kiln-firstboot --bench run`.
//!
//! Then the sysext/PXE path (issue #13): the same root with containerd and kubeadm's images as
//! small stand-in archives, the real containerd (Debian's, its own root, state and socket) with
//! an empty store, as on a sysext node: the run imports the archives in the background while
//! fetch, configure and preflight go on. Prints its step timings, the time the same imports take
//! on their own (into a second, empty store) and kiln-firstboot's peak RSS.

#[path = "../../tests/firstboot/mod.rs"]
mod firstboot;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use firstboot::*;

const ROUNDS: usize = 5;

fn prepare(root: &Path, port: u16) {
    seed_root(root);
    fake_node(root);
    fs::write(root.join("proc/sys/net/ipv4/ip_forward"), "1\n").unwrap();
    fs::create_dir_all(root.join("sys/module/br_netfilter")).unwrap();
    let seed = root.join("var/lib/cloud/seed/nocloud");
    fs::create_dir_all(&seed).unwrap();
    let toml = format!(
        "    role = \"join\"\n    control_plane_endpoint = \"127.0.0.1:{port}\"\n    token = \"abcdef.0123456789abcdef\"\n    ca_cert_hashes = [\"sha256:{}\"]\n",
        "0d".repeat(32)
    );
    let user_data = format!("#cloud-config\nwrite_files:\n- path: /etc/kiln/node.toml\n  permissions: '0600'\n  content: |\n{toml}");
    fs::write(seed.join("user-data"), user_data).unwrap();
    fs::write(
        seed.join("meta-data"),
        "instance-id: i-bench\nlocal-hostname: worker-1\n",
    )
    .unwrap();
    fs::create_dir_all(root.join("usr/share/kiln")).unwrap();
    fs::write(
        root.join("usr/share/kiln/manifest.json"),
        r#"{"kubernetes_version":"v1.31.2"}"#,
    )
    .unwrap();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let kubeadm = standin_kubeadm();
    let port = serve_readyz_late(Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    let tmp = tempfile::tempdir().unwrap();
    let mut totals = Vec::new();
    let mut steps: Vec<(String, Vec<f64>)> = Vec::new();
    for round in 0..ROUNDS {
        let root = tmp.path().join(format!("node-{round}"));
        prepare(&root, port);
        let record = tmp.path().join(format!("record-{round}"));
        let (_, seconds, status) = run(&root, &kubeadm, &record, &[]);
        totals.push(seconds * 1e3);
        for step in status["steps"].as_array().unwrap() {
            let name = step["name"].as_str().unwrap().to_owned();
            let ms = step["seconds"].as_f64().unwrap() * 1e3;
            match steps.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(ms),
                None => steps.push((name, vec![ms])),
            }
        }
    }
    println!(
        "kiln-firstboot run on a prepared root (worker join, stand-in kubeadm), median of {ROUNDS}"
    );
    println!("{:<28} {:>10}", "phase", "ms");
    for (name, v) in steps {
        println!("{:<28} {:>10.1}", format!("step {name}"), median(v));
    }
    println!("{:<28} {:>10.1}", "whole run (process)", median(totals));
    sysext(&kubeadm, port, tmp.path());
}

/// `kiln-firstboot run` on `root` with the stand-in kubeadm recording into `record` and `extra`
/// arguments: its output, seconds, status.json.
fn run(
    root: &Path,
    kubeadm: &Path,
    record: &Path,
    extra: &[&str],
) -> (Out, f64, serde_json::Value) {
    let r = root.to_str().unwrap();
    let mut args = vec![
        "run",
        "--root",
        r,
        "--sys-root",
        r,
        "--datasource",
        "nocloud",
    ];
    args.extend(["--kubeadm", kubeadm.to_str().unwrap()]);
    args.extend(extra);
    let start = Instant::now();
    let out = firstboot_with_env(&args, &[("KILN_STANDIN_RECORD", record.to_str().unwrap())]);
    let seconds = start.elapsed().as_secs_f64();
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    let status =
        serde_json::from_slice(&fs::read(root.join("var/lib/kiln/status.json")).unwrap()).unwrap();
    (out, seconds, status)
}

/// kubeadm's images for a release, as stand-ins (one small layer each).
const IMAGES: &[&str] = &[
    "registry.k8s.io/kube-apiserver:v1.31.2",
    "registry.k8s.io/kube-controller-manager:v1.31.2",
    "registry.k8s.io/kube-scheduler:v1.31.2",
    "registry.k8s.io/kube-proxy:v1.31.2",
    "registry.k8s.io/coredns/coredns:v1.11.3",
    "registry.k8s.io/pause:3.10",
    "registry.k8s.io/etcd:3.5.15-0",
];

/// containerd and the stand-in archives in `root`, with their SHA256SUMS and a manifest listing
/// their digests.
fn add_images(root: &Path, work: &Path) {
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::write(root.join("usr/bin/containerd"), "").unwrap();
    let images = root.join("usr/share/kiln/images");
    fs::create_dir_all(&images).unwrap();
    let (mut sums, mut digests) = (String::new(), serde_json::Map::new());
    for (i, name) in IMAGES.iter().enumerate() {
        let dir = work.join(format!("image-{i}"));
        fs::create_dir_all(&dir).unwrap();
        let archive = oci_archive(&dir, name);
        let file = kiln_core::images::archive_name(name);
        fs::copy(&archive, images.join(&file)).unwrap();
        let sum = sha256_hex(&fs::read(&archive).unwrap());
        sums.push_str(&format!("{sum}  {file}\n"));
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join("oci/index.json")).unwrap()).unwrap();
        digests.insert(name.to_string(), index["manifests"][0]["digest"].clone());
    }
    fs::write(images.join("SHA256SUMS"), sums).unwrap();
    let manifest = serde_json::json!({"kubernetes_version": "v1.31.2",
        "sandbox_image": "registry.k8s.io/pause:3.10", "image_digests": digests});
    fs::write(
        root.join("usr/share/kiln/manifest.json"),
        manifest.to_string(),
    )
    .unwrap();
}

/// The sysext path: an empty store, the imports overlapping the first steps.
fn sysext(kubeadm: &Path, port: u16, work: &Path) {
    let root = work.join("sysext-node");
    prepare(&root, port);
    add_images(&root, work);
    let daemon = start_containerd(&work.join("containerd"));
    let socket = daemon.socket.to_str().unwrap();
    let extra = ["--containerd-address", socket];
    let (out, seconds, status) = run(&root, kubeadm, &work.join("record-sysext"), &extra);
    let imported = out.stderr.matches("imported pre-pulled images").count();
    println!("sysext path, real containerd, empty store: {imported} archives imported");
    for step in status["steps"].as_array().unwrap() {
        let name = step["name"].as_str().unwrap();
        println!(
            "{:<28} {:>10.1}",
            format!("step {name}"),
            step["seconds"].as_f64().unwrap() * 1e3
        );
    }
    println!("{:<28} {:>10.1}", "whole run (process)", seconds * 1e3);
    let alone = work.join("alone");
    let config = kiln_testsupport::image_store_config(&alone);
    let second = kiln_testsupport::start_containerd(&alone, &config);
    let start = Instant::now();
    let dir = root.join("usr/share/kiln/images");
    let early = kiln_firstboot::node::store::Early::start(
        dir,
        second.socket.clone(),
        Duration::from_secs(60),
    )
    .finish()
    .unwrap()
    .imported;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    println!(
        "{:<28} {:>10.1}",
        format!("the {} imports alone", early.len()),
        ms
    );
    let rss = status["peak_rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0;
    println!("kiln-firstboot peak RSS: {rss:.1} MiB");
}
