//! A real three-member etcd cluster (Debian's etcd-server) started from what `kiln pki etcd`
//! wrote: the flags come from each member's kubeadmcfg.yaml, the TLS files from its pki/
//! folder, with client and peer certificate authentication on, one member per loopback address
//! (127.0.0.11–13). etcdctl then checks health with the healthcheck-client certificate, writes
//! and reads with the apiserver-etcd-client certificate, and a certificate from another CA is
//! refused.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const MEMBERS: [(&str, &str); 3] = [
    ("etcd-1", "127.0.0.11"),
    ("etcd-2", "127.0.0.12"),
    ("etcd-3", "127.0.0.13"),
];

/// Kills the etcd members when the test ends, passed or not.
struct Cluster {
    children: Vec<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// etcd flags from a member's kubeadmcfg.yaml: its etcd.local.extraArgs (v1beta4 list).
fn flags_from_kubeadm_config(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap();
    let cluster = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| <serde_yaml_ng::Value as serde::Deserialize>::deserialize(doc).unwrap())
        .find(|doc| doc["kind"].as_str() == Some("ClusterConfiguration"))
        .expect("a ClusterConfiguration document");
    cluster["etcd"]["local"]["extraArgs"]
        .as_sequence()
        .expect("v1beta4 extraArgs list")
        .iter()
        .map(|arg| {
            format!(
                "--{}={}",
                arg["name"].as_str().unwrap(),
                arg["value"].as_str().unwrap()
            )
        })
        .collect()
}

/// Starts a member the way kubeadm's etcd static pod runs it: the config's flags plus the
/// certificate flags kubeadm adds, pointing at the member's own pki folder.
fn start_member(member_dir: &Path, data_dir: &Path, log: &Path) -> Child {
    let pki = member_dir.join("pki/etcd");
    let file = |name: &str| format!("{}", pki.join(name).display());
    let mut args = flags_from_kubeadm_config(&member_dir.join("kubeadmcfg.yaml"));
    args.extend([
        format!("--data-dir={}", data_dir.display()),
        format!("--cert-file={}", file("server.crt")),
        format!("--key-file={}", file("server.key")),
        format!("--trusted-ca-file={}", file("ca.crt")),
        "--client-cert-auth=true".into(),
        format!("--peer-cert-file={}", file("peer.crt")),
        format!("--peer-key-file={}", file("peer.key")),
        format!("--peer-trusted-ca-file={}", file("ca.crt")),
        "--peer-client-cert-auth=true".into(),
        "--snapshot-count=10000".into(),
    ]);
    let log = fs::File::create(log).unwrap();
    Command::new("etcd")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting etcd (apt-get install etcd-server)")
}

/// Runs etcdctl against `endpoints` with the client certificate `cert` (+ .key) trusting `ca`.
fn etcdctl(endpoints: &str, ca: &Path, cert: &Path, args: &[&str]) -> Run {
    Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            format!("--endpoints={endpoints}"),
            format!("--cacert={}", ca.display()),
            format!("--cert={}", cert.display()),
            format!("--key={}", cert.with_extension("key").display()),
            "--dial-timeout=3s".into(),
            "--command-timeout=5s".into(),
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running etcdctl (apt-get install etcd-client)")
        .into()
}

fn endpoint(ip: &str) -> String {
    format!("https://{ip}:2379")
}

fn member_logs(dir: &Path) -> String {
    MEMBERS
        .iter()
        .map(|(name, _)| {
            let log = fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
            let tail: Vec<_> = log.lines().rev().take(15).collect();
            format!(
                "--- {name} ---\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn three_member_etcd_cluster_runs_on_kiln_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let ca_dir = root.join("pki");
    let out = root.join("etcd");
    kiln_ok(&["pki", "init", "--out", path_str(&ca_dir)]);
    let mut args = vec![
        "pki",
        "etcd",
        "--ca-dir",
        path_str(&ca_dir),
        "--out",
        path_str(&out),
    ];
    // All three members run on this host's loopback addresses.
    args.push("--allow-loopback");
    let specs: Vec<String> = MEMBERS.iter().map(|(n, ip)| format!("{n}={ip}")).collect();
    for spec in &specs {
        args.extend(["--member", spec]);
    }
    kiln_ok(&args);

    let cluster = Cluster {
        children: MEMBERS
            .iter()
            .map(|(name, _)| {
                start_member(
                    &out.join(name),
                    &root.join(format!("{name}.data")),
                    &root.join(format!("{name}.log")),
                )
            })
            .collect(),
    };

    let all: String = MEMBERS
        .iter()
        .map(|(_, ip)| endpoint(ip))
        .collect::<Vec<_>>()
        .join(",");
    let member_pki: PathBuf = out.join("etcd-1/pki");
    let ca = member_pki.join("etcd/ca.crt");
    let healthcheck = member_pki.join("etcd/healthcheck-client.crt");
    let apiserver = member_pki.join("apiserver-etcd-client.crt");

    // Health of all three, with the healthcheck-client certificate.
    let deadline = Instant::now() + Duration::from_secs(90);
    let health = loop {
        let run = etcdctl(&all, &ca, &healthcheck, &["endpoint", "health"]);
        if run.ok || Instant::now() > deadline {
            break run;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        health.ok,
        "cluster never became healthy:\n{}\n{}\n{}",
        health.stdout,
        health.stderr,
        member_logs(root)
    );
    let healthy = format!("{}{}", health.stdout, health.stderr);
    for (_, ip) in MEMBERS {
        assert!(
            healthy.contains(&format!("{} is healthy", endpoint(ip))),
            "{healthy}"
        );
    }
    let members = etcdctl(&all, &ca, &healthcheck, &["member", "list"]);
    assert!(members.ok, "{}", members.stderr);
    assert_eq!(
        members
            .stdout
            .lines()
            .filter(|l| l.contains(", started, "))
            .count(),
        3,
        "{}",
        members.stdout
    );

    // Write through one member and read through another, as the API server would.
    let put = etcdctl(
        &endpoint(MEMBERS[0].1),
        &ca,
        &apiserver,
        &["put", "/registry/kiln", "baked"],
    );
    assert!(
        put.ok && put.stdout.trim() == "OK",
        "{}{}",
        put.stdout,
        put.stderr
    );
    let get = etcdctl(
        &endpoint(MEMBERS[2].1),
        &ca,
        &apiserver,
        &["get", "/registry/kiln", "--print-value-only"],
    );
    assert!(get.ok, "{}", get.stderr);
    assert_eq!(get.stdout.trim(), "baked");

    // A client certificate from another CA is refused.
    let other_ca_dir = root.join("other-pki");
    let other_out = root.join("other-etcd");
    kiln_ok(&[
        "pki",
        "init",
        "--out",
        path_str(&other_ca_dir),
        "--key-type",
        "ecdsa-p256",
    ]);
    kiln_ok(&[
        "pki",
        "etcd",
        "--ca-dir",
        path_str(&other_ca_dir),
        "--out",
        path_str(&other_out),
        "--allow-loopback",
        "--member",
        "etcd-1=127.0.0.11",
    ]);
    let foreign = other_out.join("etcd-1/pki/apiserver-etcd-client.crt");
    let refused = etcdctl(
        &endpoint(MEMBERS[0].1),
        &ca,
        &foreign,
        &["get", "/registry/kiln"],
    );
    assert!(
        !refused.ok,
        "a foreign client certificate was accepted: {}",
        refused.stdout
    );
    assert!(!refused.stdout.contains("baked"));
    // ... and a client trusting only the other CA does not accept the members' server certificate.
    let other_ca = other_out.join("etcd-1/pki/etcd/ca.crt");
    let mistrusted = etcdctl(
        &endpoint(MEMBERS[0].1),
        &other_ca,
        &foreign,
        &["get", "/registry/kiln"],
    );
    assert!(
        !mistrusted.ok,
        "server certificate verified against a foreign CA"
    );
    drop(cluster);
}
