//! Benchmark: `kiln-firstboot run` on a prepared root, from start to the kubeadm invocation: a
//! worker with a kiln node config (NoCloud seed directory), a control plane answering /readyz at
//! once, and the **stand-in kubeadm** (records its call; not the real kubeadm). Prints the median
//! total and per-step times from status.json; run with `cargo bench -p kiln-firstboot --bench run`.

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
        let r = root.to_str().unwrap();
        let record = tmp.path().join(format!("record-{round}"));
        let start = Instant::now();
        let out = firstboot_with_env(
            &[
                "run",
                "--root",
                r,
                "--sys-root",
                r,
                "--datasource",
                "nocloud",
                "--kubeadm",
                kubeadm.to_str().unwrap(),
            ],
            &[("KILN_STANDIN_RECORD", record.to_str().unwrap())],
        );
        totals.push(start.elapsed().as_secs_f64() * 1e3);
        assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
        let status: serde_json::Value =
            serde_json::from_slice(&fs::read(root.join("var/lib/kiln/status.json")).unwrap())
                .unwrap();
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
}
