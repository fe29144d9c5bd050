//! Helpers for image tests: small OCI image layouts made here, a real registry (Debian's
//! `docker-registry`) on 127.0.0.1 loaded with them by the real `skopeo`, a counting and
//! fault-injecting HTTP proxy in front of it, and a real containerd to import archives into.

use super::sha256_hex;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[allow(unused_imports)] // each test binary uses some of them
pub use kiln_testsupport::{ctr, ctr_in, free_port, Containerd, Fault};

/// A blob written into an OCI layout: its descriptor fields.
#[derive(Debug, Clone)]
pub struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
}

impl Desc {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// An OCI image layout directory being built.
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_owned(),
        }
    }

    pub fn blob(&self, media_type: &str, bytes: &[u8]) -> Desc {
        let hex = sha256_hex(bytes);
        std::fs::write(self.dir.join("blobs/sha256").join(&hex), bytes).unwrap();
        Desc {
            media_type: media_type.into(),
            digest: format!("sha256:{hex}"),
            size: bytes.len(),
        }
    }

    /// A one-layer image for `arch` whose layer holds `hello.txt` with `text`; returns the
    /// manifest's descriptor and its layer's.
    pub fn image(&self, arch: &str, text: &str) -> (Desc, Desc) {
        let tar = layer_tar(text);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        let layer = self.blob(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &gz.finish().unwrap(),
        );
        let config = serde_json::json!({"architecture": arch, "os": "linux",
            "config": {"Cmd": ["/hello.txt"]},
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(&tar))]}});
        let config = self.blob(
            "application/vnd.oci.image.config.v1+json",
            &serde_json::to_vec(&config).unwrap(),
        );
        let manifest = serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config.json(), "layers": [layer.json()]});
        let manifest = self.blob(
            "application/vnd.oci.image.manifest.v1+json",
            &serde_json::to_vec(&manifest).unwrap(),
        );
        (manifest, layer)
    }

    /// A multi-arch index over `(arch[/variant], manifest)` entries.
    pub fn index(&self, entries: &[(&str, &Desc)]) -> Desc {
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .map(|(arch, m)| {
                let mut v = m.json();
                v["platform"] = match arch.split_once('/') {
                    Some((arch, variant)) => {
                        serde_json::json!({"architecture": arch, "os": "linux", "variant": variant})
                    }
                    None => serde_json::json!({"architecture": arch, "os": "linux"}),
                };
                v
            })
            .collect();
        let index = serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
        self.blob(
            "application/vnd.oci.image.index.v1+json",
            &serde_json::to_vec(&index).unwrap(),
        )
    }

    /// Names `top` (a manifest or index) `tag` in the layout's index.json.
    pub fn tag(&self, top: &Desc, tag: &str) {
        let mut entry = top.json();
        entry["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [entry]});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }
}

/// An uncompressed layer tar with `hello.txt` (fixed metadata).
fn layer_tar(text: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_path("hello.txt").unwrap();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(1);
    header.set_cksum();
    builder.append(&header, text.as_bytes()).unwrap();
    builder.into_inner().unwrap()
}

/// Debian's `docker-registry` on 127.0.0.1 with its storage in a test directory; killed on drop.
pub struct Registry {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its storage root.
    pub storage: PathBuf,
    dir: PathBuf,
}

impl Registry {
    pub fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let storage = dir.join("storage");
        let addr = format!("127.0.0.1:{}", free_port());
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {addr}\n",
            storage.display()
        );
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry (apt-get install docker-registry)");
        let registry = Registry {
            child: Some(child),
            addr,
            storage,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_status(&registry.addr, "/v2/") != Some(200) {
            assert!(
                Instant::now() < deadline,
                "registry did not come up:\n{}",
                std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        registry
    }

    /// Pushes `layout`'s image tagged `tag` as `repo:tag` with skopeo (all platforms, digests
    /// kept).
    pub fn push(&self, layout: &Layout, tag: &str, repo: &str) {
        let out = Command::new("skopeo")
            .args(["--insecure-policy", "copy", "--all", "--preserve-digests"])
            .args(["--dest-tls-verify=false", "--quiet"])
            .arg(format!("oci:{}:{tag}", layout.dir.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.addr))
            .output()
            .expect("skopeo (apt-get install skopeo)");
        assert!(
            out.status.success(),
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The file of blob `digest` in the registry's storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The status of `GET path` on `addr`, or `None` if nothing answers.
fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// An HTTP/1.1 proxy on 127.0.0.1 in front of `upstream`: one request per connection, every
/// request line recorded, responses altered by `fault`. Runs for the rest of the test process.
pub struct Proxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    requests: Arc<Mutex<Vec<String>>>,
    fault: Arc<Mutex<(String, Fault)>>,
}

impl Proxy {
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let fault = Arc::new(Mutex::new((String::new(), Fault::None)));
        let (r, f, up) = (requests.clone(), fault.clone(), upstream.to_owned());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, f, up) = (r.clone(), f.clone(), up.clone());
                std::thread::spawn(move || {
                    let _ = relay(stream, &up, &r, &f);
                });
            }
        });
        Proxy {
            addr,
            requests,
            fault,
        }
    }

    /// Request lines seen so far (`GET /v2/...`).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Applies `fault` to responses whose request path contains `pattern`.
    pub fn set_fault(&self, pattern: &str, fault: Fault) {
        *self.fault.lock().unwrap() = (pattern.to_owned(), fault);
    }

    /// Stops all faults.
    pub fn clear_fault(&self) {
        self.set_fault("", Fault::None);
    }
}

fn relay(
    mut client: TcpStream,
    upstream: &str,
    requests: &Mutex<Vec<String>>,
    fault: &Mutex<(String, Fault)>,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let request_line = head.lines().next().unwrap_or_default().to_owned();
    requests.lock().unwrap().push(request_line.clone());
    let mut forwarded: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    forwarded.push("Connection: close");
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(format!("{}\r\n\r\n", forwarded.join("\r\n")).as_bytes())?;
    let mut response = Vec::new();
    up.read_to_end(&mut response)?;
    let body_at = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(response.len());
    let (pattern, fault) = fault.lock().unwrap().clone();
    let path = request_line.split(' ').nth(1).unwrap_or_default();
    let hit = !pattern.is_empty() && path.contains(&pattern);
    let fault = if hit { fault } else { Fault::None };
    client.write_all(&fault.mangle(response, body_at))?;
    client.shutdown(std::net::Shutdown::Both)
}

/// Debian's containerd with an image store only (CRI off) below `dir`; killed on drop.
pub fn start_containerd(dir: &Path) -> Containerd {
    kiln_testsupport::start_containerd(dir, &kiln_testsupport::image_store_config(dir))
}
