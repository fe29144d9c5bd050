//! A stand-in Kubernetes release for `kiln build` tests, served in the official URL layouts from
//! a local HTTP server on 127.0.0.1. kubeadm is the stand-in kubeadm (tests/standins) with a
//! version trailer naming the served release, so it answers as that kubeadm would; kubelet,
//! kubectl and crictl are stand-in scripts (the real ones cannot be downloaded here); the CNI
//! plugins, containerd and runc are Debian's real binaries repackaged as their upstream release
//! tarballs. None of this is a real Kubernetes release.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::oci::{Layout, Registry};
use super::sha256_hex;
#[allow(unused_imports)] // each test binary uses some of them
pub use kiln_testsupport::Fault;

pub const KUBE: &str = "v1.31.2";
pub const CNI: &str = "1.6.2";
pub const CRICTL: &str = "1.31.1";
pub const CONTAINERD: &str = "1.7.24";
pub const RUNC: &str = "1.2.4";

/// The served files and what happened to them.
#[derive(Clone, Default)]
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    faults: Arc<Mutex<BTreeMap<String, Fault>>>,
    /// Requests answered so far.
    pub requests: Arc<AtomicUsize>,
}

impl Server {
    /// Starts a server for `files` (path → bytes) on 127.0.0.1.
    pub fn start(files: BTreeMap<String, Vec<u8>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = Server {
            base: format!("http://{}", listener.local_addr().unwrap()),
            files: Arc::new(Mutex::new(files)),
            ..Default::default()
        };
        let s = server.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || s.answer(stream));
            }
        });
        server
    }

    /// Makes `path` misbehave.
    pub fn fault(&self, path: &str, fault: Fault) {
        self.faults.lock().unwrap().insert(path.to_owned(), fault);
    }

    /// Stops all faults.
    pub fn heal(&self) {
        self.faults.lock().unwrap().clear();
    }

    /// Requests answered so far.
    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn answer(&self, stream: std::net::TcpStream) {
        let mut reader = BufReader::new(&stream);
        let mut request = String::new();
        if reader.read_line(&mut request).is_err() {
            return;
        }
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        self.requests.fetch_add(1, Ordering::SeqCst);
        let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let fault = self.faults.lock().unwrap().get(&path).copied();
        let body = self.files.lock().unwrap().get(&path).cloned();
        let mut out = &stream;
        match (body, fault) {
            (None, _) | (_, Some(Fault::Missing)) => {
                let _ = write!(
                    out,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
            (Some(body), fault) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let at = head.len();
                let response = [head.into_bytes(), body].concat();
                let _ = out.write_all(&fault.unwrap_or(Fault::None).mangle(response, at));
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// A gzip tarball of `(path, bytes, mode)` entries.
pub fn tar_gz(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    let mut tar = tar::Builder::new(gz);
    for (path, bytes, mode) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        tar.append_data(&mut header, path, *bytes).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn script(name: &str) -> Vec<u8> {
    format!("#!/bin/sh\n# stand-in {name} for kiln's tests (not the real {name})\necho \"stand-in {name} $*\"\n").into_bytes()
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e} (installed by .ci/setup)"))
}

/// Release versions to serve (Kubernetes with its `v`, the others without).
#[derive(Debug, Clone)]
pub struct Versions {
    pub kube: String,
    pub cni: String,
    pub crictl: String,
    pub containerd: String,
    pub runc: String,
}

impl Default for Versions {
    fn default() -> Self {
        Versions {
            kube: KUBE.into(),
            cni: CNI.into(),
            crictl: CRICTL.into(),
            containerd: CONTAINERD.into(),
            runc: RUNC.into(),
        }
    }
}

/// The stand-in release files (amd64) of the default [`Versions`].
pub fn files(standin_kubeadm: &Path) -> BTreeMap<String, Vec<u8>> {
    files_for(standin_kubeadm, &Versions::default())
}

/// The stand-in release files (amd64) in the official layouts, under `/k8s`, `/containerd`,
/// `/runc`, `/cni` and `/crictl`, with their published checksum files.
pub fn files_for(standin_kubeadm: &Path, v: &Versions) -> BTreeMap<String, Vec<u8>> {
    let kube = &v.kube;
    let mut files = BTreeMap::new();
    let mut add = |path: String, bytes: Vec<u8>| {
        files.insert(path, bytes);
    };
    // The stand-in reads its version from this trailer, as a real release's kubeadm knows its own.
    let kubeadm =
        kiln_standins::with_version_trailer(std::fs::read(standin_kubeadm).unwrap(), kube);
    for (name, bytes) in [
        ("kubeadm", kubeadm),
        ("kubelet", script("kubelet")),
        ("kubectl", script("kubectl")),
    ] {
        let path = format!("/k8s/{kube}/bin/linux/amd64/{name}");
        add(format!("{path}.sha256"), sha256_hex(&bytes).into_bytes());
        add(path, bytes);
    }
    let plugins: Vec<(String, Vec<u8>)> = ["bridge", "host-local", "loopback", "portmap"]
        .iter()
        .map(|p| (format!("./{p}"), read(&format!("/usr/lib/cni/{p}"))))
        .collect();
    let entries: Vec<(&str, &[u8], u32)> = plugins
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice(), 0o755))
        .collect();
    let cni_tgz = tar_gz(&entries);
    let name = format!("cni-plugins-linux-amd64-v{}.tgz", v.cni);
    add(
        format!("/cni/v{}/{name}.sha256", v.cni),
        format!("{}  {name}\n", sha256_hex(&cni_tgz)).into_bytes(),
    );
    add(format!("/cni/v{}/{name}", v.cni), cni_tgz);

    let crictl_tgz = tar_gz(&[("crictl", &script("crictl"), 0o755)]);
    let name = format!("crictl-v{}-linux-amd64.tar.gz", v.crictl);
    add(
        format!("/crictl/v{}/{name}.sha256", v.crictl),
        sha256_hex(&crictl_tgz).into_bytes(),
    );
    add(format!("/crictl/v{}/{name}", v.crictl), crictl_tgz);

    let (c, s, t) = (
        read("/usr/bin/containerd"),
        read("/usr/bin/containerd-shim-runc-v2"),
        read("/usr/bin/ctr"),
    );
    let containerd_tgz = tar_gz(&[
        ("bin/containerd", &c, 0o755),
        ("bin/containerd-shim-runc-v2", &s, 0o755),
        ("bin/ctr", &t, 0o755),
    ]);
    let name = format!("containerd-{}-linux-amd64.tar.gz", v.containerd);
    add(
        format!("/containerd/v{}/{name}.sha256sum", v.containerd),
        format!("{}  {name}\n", sha256_hex(&containerd_tgz)).into_bytes(),
    );
    add(
        format!("/containerd/v{}/{name}", v.containerd),
        containerd_tgz,
    );

    let runc = read("/usr/sbin/runc");
    add(
        format!("/runc/v{}/runc.sha256sum", v.runc),
        format!(
            "{}  runc.amd64\n{}  runc.arm64\n",
            sha256_hex(&runc),
            "0".repeat(64)
        )
        .into_bytes(),
    );
    add(format!("/runc/v{}/runc.amd64", v.runc), runc);
    files
}

/// The stand-in release files of [`files_for`] for `arch` (`arm64`): `standin_kubeadm` built for
/// it, the same stand-in scripts for kubelet, kubectl and crictl, at the architecture's paths
/// (containerd, runc and the CNI plugins stay amd64's: the disk recipe takes Debian's).
pub fn files_for_arch(
    standin_kubeadm: &Path,
    v: &Versions,
    arch: &str,
) -> BTreeMap<String, Vec<u8>> {
    files_for(standin_kubeadm, v)
        .into_iter()
        .map(|(path, bytes)| {
            let path = path
                .replace("/linux/amd64/", &format!("/linux/{arch}/"))
                .replace("-linux-amd64", &format!("-linux-{arch}"));
            (path, bytes)
        })
        .collect()
}

/// Writes the stand-in kubeadm as a release of `version` into `dir` and returns its path.
pub fn standin_kubeadm_release(dir: &Path, version: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let standin = std::fs::read(super::cargo_bin("kiln-standins", "kubeadm")).unwrap();
    let path = dir.join(format!("kubeadm-{version}"));
    std::fs::write(&path, kiln_standins::with_version_trailer(standin, version)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// `recipe` (TOML text) without its `[checksums.ARCH]` tables: the shipped recipes pin the real
/// release binaries' SHA-256s, which the stand-ins served here do not have.
pub fn without_pinned_checksums(recipe: &str) -> String {
    let mut skipping = false;
    let mut out = String::new();
    for line in recipe.lines() {
        if line.starts_with('[') {
            skipping = line.starts_with("[checksums.");
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `--mirror` arguments pointing the official sources at `base`.
pub fn mirror_args(base: &str) -> Vec<String> {
    [
        ("https://dl.k8s.io/release", "k8s"),
        (
            "https://github.com/containerd/containerd/releases/download",
            "containerd",
        ),
        (
            "https://github.com/opencontainers/runc/releases/download",
            "runc",
        ),
        (
            "https://github.com/containernetworking/plugins/releases/download",
            "cni",
        ),
        (
            "https://github.com/kubernetes-sigs/cri-tools/releases/download",
            "crictl",
        ),
    ]
    .iter()
    .flat_map(|(from, to)| ["--mirror".to_owned(), format!("{from}={base}/{to}")])
    .collect()
}

/// A recipe for the stand-in release (amd64 only) with `extra` TOML appended.
pub fn recipe(extra: &str) -> String {
    format!(
        "name = \"kubernetes\"\nkubernetes_version = \"{KUBE}\"\narchitectures = [\"amd64\"]\nsource_date_epoch = 1700000000\n\n[components]\ncontainerd = \"{CONTAINERD}\"\nrunc = \"{RUNC}\"\ncni_plugins = \"{CNI}\"\ncrictl = \"{CRICTL}\"\n{extra}"
    )
}

/// Pushes a small stand-in image (not the real one) for every image kiln's table lists for
/// `version` into `registry` under its registry.k8s.io path, pause as a multi-arch index
/// (amd64, arm64). Returns the image names and the pause index's digest.
pub fn push_kubeadm_images(
    registry: &Registry,
    version: &str,
    layouts: &Path,
) -> (Vec<String>, String) {
    push_kubeadm_images_for(registry, version, layouts, "amd64")
}

/// [`push_kubeadm_images`] with the images other than pause for `arch`.
pub fn push_kubeadm_images_for(
    registry: &Registry,
    version: &str,
    layouts: &Path,
    arch: &str,
) -> (Vec<String>, String) {
    let listed = super::kiln_ok(&["images", "list", "--kubernetes-version", version]);
    let images: Vec<String> = listed.stdout.lines().map(str::to_owned).collect();
    let pause_index = push_images_for(registry, &images, layouts, arch);
    (images, pause_index)
}

/// Pushes a small stand-in image for each of `images` (registry.k8s.io names) into `registry`,
/// pause as a multi-arch index; returns the pause index's digest.
pub fn push_images(registry: &Registry, images: &[String], layouts: &Path) -> String {
    push_images_for(registry, images, layouts, "amd64")
}

/// [`push_images`] with the images other than pause for `arch`.
pub fn push_images_for(
    registry: &Registry,
    images: &[String],
    layouts: &Path,
    arch: &str,
) -> String {
    let mut pause_index = String::new();
    for (n, image) in images.iter().enumerate() {
        let path = image.strip_prefix("registry.k8s.io/").unwrap();
        let (repo, tag) = path.rsplit_once(':').unwrap();
        let layout = Layout::new(&layouts.join(n.to_string()));
        if repo == "pause" {
            let (amd64, _) = layout.image("amd64", "stand-in pause for amd64");
            let (arm64, _) = layout.image("arm64", "stand-in pause for arm64");
            let index = layout.index(&[("amd64", &amd64), ("arm64", &arm64)]);
            layout.tag(&index, tag);
            pause_index = index.digest.clone();
        } else {
            let (manifest, _) = layout.image(arch, &format!("stand-in {repo}"));
            layout.tag(&manifest, tag);
        }
        registry.push(&layout, tag, repo);
    }
    pause_index
}
