//! What the kiln test suites share, once: a free port on 127.0.0.1, hex SHA-256, Debian's real
//! containerd started for a test (and `ctr` against it), and the faults the tests' fake HTTP
//! servers inject.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 that nothing listens on (yet), for a server a test starts later. It is
/// below Linux's ephemeral range (32768–60999), so no outgoing connection of a test running in
/// parallel can take it in the meantime (as a port from `bind(0)` could), and distinct for every
/// call in this process; the start depends on the pid, so parallel test binaries spread out.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    for _ in 0..SPAN {
        let n = CALLS.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (start + n) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!(
        "no free port on 127.0.0.1 between {FIRST} and {}",
        FIRST + SPAN
    );
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}

/// What a fake server does wrong on purpose (each server decides which requests it hits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: answer normally.
    None,
    /// Answer 500.
    ServerError,
    /// Wait this long before answering.
    Slow(Duration),
    /// Announce the full length, send half the body, close (a server dying mid-body).
    Truncate,
    /// Serve the body with its last byte flipped.
    Corrupt,
    /// Answer 404.
    Missing,
}

impl Fault {
    /// `response` (head and body, the body starting at `body_at`) as this fault sends it:
    /// cut in the middle of the body for [`Fault::Truncate`], its last byte flipped for
    /// [`Fault::Corrupt`], unchanged otherwise.
    pub fn mangle(self, mut response: Vec<u8>, body_at: usize) -> Vec<u8> {
        match self {
            Fault::Truncate => {
                let half = body_at + (response.len().saturating_sub(body_at)) / 2;
                response.truncate(half);
            }
            Fault::Corrupt if response.len() > body_at => {
                *response.last_mut().unwrap() ^= 0xff;
            }
            _ => {}
        }
        response
    }
}

/// Debian's containerd started for a test with its own root, state and socket below a test
/// directory; killed when dropped.
pub struct Containerd {
    child: Child,
    /// Its socket.
    pub socket: PathBuf,
    /// Its log file.
    pub log: PathBuf,
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The containerd config for an image store only (CRI off) below `dir`.
pub fn image_store_config(dir: &Path) -> String {
    format!(
        "version = 2\nroot = \"{}\"\nstate = \"{}\"\n\
         disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{}\"\n",
        dir.join("root").display(),
        dir.join("state").display(),
        dir.join("containerd.sock").display()
    )
}

/// Starts containerd with `config` (whose socket must be `DIR/containerd.sock`) and returns
/// once `ctr version` answers on the socket (60 s at most).
pub fn start_containerd(dir: &Path, config: &str) -> Containerd {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let log = dir.join("containerd.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new("containerd")
        .arg("--config")
        .arg(dir.join("config.toml"))
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("containerd (apt-get install containerd runc)");
    let daemon = Containerd {
        child,
        socket: dir.join("containerd.sock"),
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !answers(&daemon.socket) {
        assert!(
            Instant::now() < deadline,
            "containerd did not come up:\n{}",
            std::fs::read_to_string(&daemon.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    daemon
}

fn answers(socket: &Path) -> bool {
    Command::new("ctr")
        .arg("--address")
        .arg(socket)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `ctr --address SOCKET -n k8s.io ARGS`; returns stdout, panics with stderr on failure.
pub fn ctr(socket: &Path, args: &[&str]) -> String {
    ctr_in(socket, "k8s.io", args)
}

/// `ctr --address SOCKET -n NAMESPACE ARGS`; returns stdout, panics with stderr on failure.
pub fn ctr_in(socket: &Path, namespace: &str, args: &[&str]) -> String {
    let out = Command::new("ctr")
        .arg("--address")
        .arg(socket)
        .args(["-n", namespace])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ctr {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A minimal OCI image archive (one layer with one file) named `reference`.
pub fn oci_archive(dir: &Path, reference: &str) -> std::path::PathBuf {
    let layout = dir.join("oci");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let content = dir.join("layer-content");
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(content.join("hello.txt"), "baked\n").unwrap();
    let layer_tar = dir.join("layer.tar");
    tar(&layer_tar, &content, &["hello.txt"]);
    let blob = |bytes: Vec<u8>| {
        let digest = sha256_hex(&bytes);
        std::fs::write(blobs.join(&digest), &bytes).unwrap();
        (format!("sha256:{digest}"), bytes.len())
    };
    let (layer, layer_size) = blob(std::fs::read(&layer_tar).unwrap());
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer]}});
    let (config_digest, config_size) = blob(serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}]});
    let (manifest_digest, manifest_size) = blob(serde_json::to_vec(&manifest).unwrap());
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest, "size": manifest_size,
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"io.containerd.image.name": reference, "org.opencontainers.image.ref.name": "3.10"}}]});
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = dir.join("image.tar");
    tar(&archive, &layout, &["oci-layout", "index.json", "blobs"]);
    archive
}

/// `tar -cf OUT -C DIR ENTRIES`; panics if tar fails.
pub fn tar(out: &Path, dir: &Path, entries: &[&str]) {
    let ok = Command::new("tar")
        .arg("-cf")
        .arg(out)
        .arg("-C")
        .arg(dir)
        .args(entries)
        .status()
        .unwrap();
    assert!(ok.success(), "tar failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_mangle_the_body_only() {
        let response = b"HTTP/1.1 200 OK\r\n\r\nabcd".to_vec();
        let at = response.len() - 4;
        assert_eq!(
            Fault::Truncate.mangle(response.clone(), at),
            b"HTTP/1.1 200 OK\r\n\r\nab"
        );
        assert_eq!(
            Fault::Corrupt.mangle(response.clone(), at).last(),
            Some(&(b'd' ^ 0xff))
        );
        assert_eq!(Fault::None.mangle(response.clone(), at), response);
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
