//! Helpers for kiln-firstboot integration tests: scratch roots with a small, fixed user
//! database, running `kiln-firstboot`, and snapshots of a tree for comparisons.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

#[allow(unused_imports)] // each test binary uses some of them
pub use kiln_testsupport::{oci_archive, sha256_hex, tar, Containerd};

/// The user database every scratch root starts with.
const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nsudo:x:27:\nusers:x:100:\nnogroup:x:65534:\n";
const SHADOW: &str = "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n";
const GSHADOW: &str = "root:*::\nsudo:*::\nusers:*::\nnogroup:*::\n";

/// Makes `dir` a root with /etc/passwd, group, shadow, gshadow (and what Ignition needs).
pub fn seed_root(dir: &Path) {
    let etc = dir.join("etc");
    std::fs::create_dir_all(etc.join("selinux")).unwrap();
    for (name, text, mode) in [
        ("passwd", PASSWD, 0o644),
        ("group", GROUP, 0o644),
        ("shadow", SHADOW, 0o640),
        ("gshadow", GSHADOW, 0o640),
    ] {
        std::fs::write(etc.join(name), text).unwrap();
        std::fs::set_permissions(etc.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::write(etc.join("selinux/config"), "SELINUX=disabled\n").unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Output of a finished process.
pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `kiln-firstboot ARGS`.
pub fn firstboot(args: &[&str]) -> Out {
    firstboot_with_env(args, &[])
}

/// Runs `kiln-firstboot ARGS` with extra environment variables.
pub fn firstboot_with_env(args: &[&str], env: &[(&str, &str)]) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_kiln-firstboot"))
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("running kiln-firstboot");
    Out {
        ok: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// One entry of a tree snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    File {
        mode: u32,
        uid: u32,
        gid: u32,
        contents: Vec<u8>,
        links: u64,
    },
    Symlink {
        target: String,
        uid: u32,
        gid: u32,
    },
}

/// Every entry below `dir` (relative path → entry), skipping `exclude`d relative paths.
pub fn snapshot(dir: &Path, exclude: &[&str]) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    walk(dir, dir, exclude, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, exclude: &[&str], out: &mut BTreeMap<String, Entry>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        if exclude
            .iter()
            .any(|e| rel == *e || rel.starts_with(&format!("{e}/")))
        {
            continue;
        }
        let m = std::fs::symlink_metadata(&path).unwrap();
        let mode = m.mode() & 0o7777;
        let e = if m.file_type().is_symlink() {
            Entry::Symlink {
                target: std::fs::read_link(&path).unwrap().display().to_string(),
                uid: m.uid(),
                gid: m.gid(),
            }
        } else if m.is_dir() {
            walk(root, &path, exclude, out);
            Entry::Dir {
                mode,
                uid: m.uid(),
                gid: m.gid(),
            }
        } else {
            Entry::File {
                mode,
                uid: m.uid(),
                gid: m.gid(),
                contents: std::fs::read(&path).unwrap(),
                links: m.nlink(),
            }
        };
        out.insert(rel, e);
    }
}

/// Sorts the lines of a file in a snapshot (for files whose line order carries no meaning,
/// such as systemd presets, which the real Ignition writes in Go map order).
pub fn sort_lines(snap: &mut BTreeMap<String, Entry>, rel: &str) {
    if let Some(Entry::File { contents, .. }) = snap.get_mut(rel) {
        let text = String::from_utf8_lossy(contents).into_owned();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort();
        *contents = lines
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .into_bytes();
    }
}

/// Panics with a readable list of differences between two snapshots.
pub fn assert_same(
    a_name: &str,
    a: &BTreeMap<String, Entry>,
    b_name: &str,
    b: &BTreeMap<String, Entry>,
) {
    let mut diffs = Vec::new();
    for (k, va) in a {
        match b.get(k) {
            None => diffs.push(format!("{k}: only in {a_name}: {}", short(va))),
            Some(vb) if vb != va => diffs.push(format!(
                "{k}: {a_name} {} vs {b_name} {}",
                short(va),
                short(vb)
            )),
            _ => {}
        }
    }
    for (k, vb) in b {
        if !a.contains_key(k) {
            diffs.push(format!("{k}: only in {b_name}: {}", short(vb)));
        }
    }
    assert!(diffs.is_empty(), "trees differ:\n{}", diffs.join("\n"));
}

fn short(e: &Entry) -> String {
    match e {
        Entry::File {
            mode,
            uid,
            gid,
            contents,
            links,
        } => {
            format!(
                "file {mode:o} {uid}:{gid} links={links} {:?}",
                String::from_utf8_lossy(&contents[..contents.len().min(80)])
            )
        }
        other => format!("{other:?}"),
    }
}

/// Serves `routes` (path → body) over HTTP/1.0 on 127.0.0.1 from a background thread for the
/// rest of the test process; unknown paths get 404. Returns the base URL.
pub fn serve(routes: Vec<(&'static str, Vec<u8>)>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let mut out = &stream;
            match routes.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => {
                    let _ = write!(
                        out,
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = out.write_all(body);
                }
                None => {
                    let _ = write!(out, "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                }
            }
        }
    });
    base
}

/// The stand-in kubeadm (tests/standins; not the real kubeadm), built on first use: Cargo sets
/// `CARGO_BIN_EXE_*` only for a package's own binaries, so it is built with the `cargo` running
/// the tests into the same target directory.
pub fn standin_kubeadm() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "kiln-standins",
                    "--bin",
                    "kubeadm",
                    "--message-format=json",
                ])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .stderr(Stdio::inherit())
                .output()
                .expect("running cargo build for the stand-in kubeadm");
            assert!(out.status.success(), "building the stand-in kubeadm failed");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains("\"executable\":") && l.contains("kiln-standins"))
                .find_map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).ok()?;
                    v["executable"].as_str().map(std::path::PathBuf::from)
                })
                .expect("cargo reported no stand-in kubeadm executable")
        })
        .clone()
}

/// A fake node below `root`: /proc and /sys files of a healthy 2-CPU, 4 GB machine (but
/// ip_forward off and br_netfilter not loaded), the tools kubeadm needs, a containerd socket.
pub fn fake_node(root: &Path) {
    for (rel, text) in [
        ("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n"),
        ("proc/meminfo", "MemTotal:        4000000 kB\n"),
        ("proc/cpuinfo", "processor\t: 0\nprocessor\t: 1\n"),
        ("proc/sys/net/ipv4/ip_forward", "0\n"),
        ("proc/sys/kernel/hostname", "worker-1\n"),
        ("sys/module/overlay/refcnt", "0\n"),
        ("sys/fs/cgroup/cgroup.controllers", "cpu memory\n"),
        (
            "sys/class/dmi/id/product_uuid",
            "4c4c4544-0042-3510-8052-b4c04f4e4a31\n",
        ),
        ("sys/class/net/eth0/address", "52:54:00:12:34:56\n"),
        ("var/run/containerd/containerd.sock", ""),
    ] {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    for tool in [
        "ip",
        "iptables",
        "mount",
        "nsenter",
        "conntrack",
        "ebtables",
        "ethtool",
        "socat",
        "tc",
    ] {
        let p = root.join("usr/sbin").join(tool);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, "").unwrap();
    }
}

/// A fake API server: after `delay`, answers `GET /readyz` with 200 over TLS on 127.0.0.1 (a
/// certificate from kiln's PKI), in a background thread. Returns the port.
pub fn serve_readyz_late(delay: std::time::Duration) -> u16 {
    use std::io::{Read, Write};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = readyz_tls_config();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        for stream in listener.incoming().flatten() {
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let mut buf = [0u8; 1024];
            if tls.read(&mut buf).is_ok() {
                let _ = tls.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        }
    });
    port
}

fn readyz_tls_config() -> std::sync::Arc<rustls::ServerConfig> {
    use kiln_core::pki::cert::{cert_der_from_pem, Ca, CertSpec, Usage, LEAF_VALIDITY};
    use kiln_core::pki::{KeyType, PrivateKey};
    let now = time::OffsetDateTime::now_utc();
    let ca = Ca::generate(
        "kubernetes",
        PrivateKey::generate(KeyType::EcdsaP256).unwrap(),
        now,
    )
    .unwrap();
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let spec = CertSpec {
        common_name: "kube-apiserver".into(),
        ips: vec!["127.0.0.1".parse().unwrap()],
        usages: vec![Usage::Server],
        ..CertSpec::default()
    };
    let cert =
        cert_der_from_pem(&ca.issue(&spec, &key, now, LEAF_VALIDITY).unwrap(), "cert").unwrap();
    let key_der = pem::parse(key.to_pem().unwrap()).unwrap().into_contents();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.into()],
            rustls::pki_types::PrivateKeyDer::Sec1(key_der.into()),
        )
        .unwrap();
    std::sync::Arc::new(config)
}

/// Runs `kiln-firstboot ARGS` in a new network namespace (its own free ports, no network), with
/// extra environment variables.
pub fn firstboot_unshared(args: &[&str], env: &[(&str, &str)]) -> Out {
    let o = Command::new("unshare")
        .arg("--net")
        .arg(env!("CARGO_BIN_EXE_kiln-firstboot"))
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("running unshare (util-linux)");
    Out {
        ok: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Starts Debian's containerd with kiln's config and its own root, state and socket below `dir`;
/// returns once its CRI plugin is ready.
pub fn start_containerd(dir: &Path) -> Containerd {
    use kiln_firstboot::node::containerd::{render, wait_ready, Settings};
    let settings = Settings {
        root: Some(dir.join("root")),
        state: Some(dir.join("state")),
        address: Some(dir.join("containerd.sock")),
        ..Settings::for_node("registry.k8s.io/pause:3.10")
    };
    let daemon = kiln_testsupport::start_containerd(dir, &render(&settings));
    let ready = wait_ready(&daemon.socket, std::time::Duration::from_secs(60));
    assert!(
        ready.is_ok(),
        "{ready:?}\n{}",
        fs::read_to_string(&daemon.log).unwrap_or_default()
    );
    daemon
}

/// Image names in containerd's k8s.io namespace.
pub fn k8s_images(socket: &Path) -> String {
    let out = Command::new("ctr")
        .arg("--address")
        .arg(socket)
        .args(["-n", "k8s.io", "images", "ls", "-q"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
