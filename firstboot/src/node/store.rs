//! containerd's image store against the baked manifest: a disk image's store is filled by
//! `kiln build`, so the node re-checks rather than trusts it (one `ctr images check`: each image
//! the manifest lists (`image_digests`) present under its name, pointing at that digest, all content
//! there, unpacked) and imports from the baked archives only what is lacking; a sysext or /opt
//! node starts empty and imports everything the same way. kubeadm never starts with an image
//! missing: after an import the store is checked again.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use kiln_core::containerd::ctr::{self, Stored};

use super::images;

/// An image the baked manifest lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baked {
    /// Its name in the store (`registry.k8s.io/pause:3.10`).
    pub name: String,
    /// The digest its name must point at (`sha256:<hex>`).
    pub digest: String,
}

/// The images `manifest.json` beside the image directory `dir` lists with the digests containerd
/// names them after (`image_digests`); `None` when there is no manifest or it predates that
/// field (then every archive is imported, as before).
pub fn baked(dir: &Path) -> anyhow::Result<Option<Vec<Baked>>> {
    let Some(path) = dir.parent().map(|p| p.join("manifest.json")) else {
        return Ok(None);
    };
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    parse_manifest(&text).with_context(|| format!("{}: image_digests", path.display()))
}

/// The `image_digests` of a manifest as [`Baked`] images, in name order.
fn parse_manifest(text: &[u8]) -> anyhow::Result<Option<Vec<Baked>>> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        #[serde(default)]
        image_digests: std::collections::BTreeMap<String, String>,
    }
    let manifest: Manifest = serde_json::from_slice(text)?;
    if manifest.image_digests.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        manifest
            .image_digests
            .into_iter()
            .map(|(name, digest)| Baked { name, digest })
            .collect(),
    ))
}

/// The baked images the store lacks: absent, pointing at another digest, incomplete or not
/// unpacked.
pub fn lacking<'a>(baked: &'a [Baked], stored: &[Stored]) -> Vec<&'a Baked> {
    baked
        .iter()
        .filter(|b| {
            !stored
                .iter()
                .any(|s| s.name == b.name && s.digest == b.digest && s.usable())
        })
        .collect()
}

/// What [`ensure`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ensured {
    /// Baked images found in the store as the manifest lists them.
    pub verified: usize,
    /// Archives imported because the store lacked their image.
    pub imported: Vec<PathBuf>,
}

/// Makes the store at `address` hold every `baked` image: checks it, imports what it lacks from
/// the archives in `dir` (verified against `SHA256SUMS` first), checks again; then makes sure
/// the sandbox image `sandbox` is there and pinned (see [`sandbox`]). `early`: what [`Early`]
/// did in this run (its check stands in for a new one when containerd has not restarted since).
pub fn ensure(
    dir: &Path,
    address: &Path,
    baked: &[Baked],
    sandbox_image: Option<&str>,
    early: Checked,
) -> anyhow::Result<Ensured> {
    let stored = match early.stored {
        Some(stored) => stored,
        None => ctr::check(address)?,
    };
    let missing = lacking(baked, &stored);
    let mut ensured = Ensured {
        verified: baked.len() - missing.len(),
        imported: early.imported,
    };
    if missing.is_empty() {
        tracing::info!(images = baked.len(), "image store verified");
    } else {
        let imported = import_lacking(dir, address, &missing)?;
        ensured.imported.extend(imported);
    }
    let stored = match missing.is_empty() {
        true => stored,
        false => ctr::check(address)?,
    };
    let still: Vec<&str> = lacking(baked, &stored)
        .iter()
        .map(|b| b.name.as_str())
        .collect();
    anyhow::ensure!(
        still.is_empty(),
        "containerd still lacks {} after importing their archives (see containerd's log); \
         kubeadm is not started with images missing",
        still.join(", ")
    );
    if let Some(name) = sandbox_image {
        sandbox(address, name, &stored, !ensured.imported.is_empty())?;
    }
    Ok(ensured)
}

/// What [`Early`] found and did.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// The archives it imported.
    pub imported: Vec<PathBuf>,
    /// The store as `ctr images check` reported it afterwards (`None`: not checked, or no
    /// longer current because containerd restarted).
    pub stored: Option<Vec<Stored>>,
}

/// The store's check and imports, started before the steps that need them: in a thread, while
/// fetch, configure and preflight run, containerd's store is checked against the baked
/// manifest (a disk image: its pre-filled store, so the runtime step runs no `ctr` at all) and
/// what it lacks is imported (a sysext or PXE node, whose store cannot be filled at build time),
/// the node's own images (pause, kube-proxy) first. [`ensure`] stays the authority: it uses
/// the check and imports whatever this did not.
pub struct Early(std::thread::JoinHandle<anyhow::Result<Checked>>);

impl Early {
    /// Starts checking the store at `address` against the images `dir`'s manifest lists, and
    /// importing what it lacks; waits up to `timeout` for containerd's socket first.
    pub fn start(dir: PathBuf, address: PathBuf, timeout: std::time::Duration) -> Early {
        Early(std::thread::spawn(move || {
            let Some(baked) = baked(&dir)? else {
                return Ok(Checked::default());
            };
            // kiln-firstboot starts alongside containerd (no unit ordering between them): read
            // ctr while containerd comes up, then wait for its socket.
            let read = ctr::prefetch();
            tracing::info!(bytes = read.unwrap_or(0), "read ctr ahead");
            super::containerd::wait_socket(&address, timeout)?;
            let asked = std::time::Instant::now();
            tracing::info!("containerd's socket is up: checking its image store");
            let stored = ctr::check(&address)?;
            tracing::info!(
                seconds = asked.elapsed().as_secs_f64(),
                images = stored.len(),
                "containerd's image store checked"
            );
            let missing = node_images_first(lacking(&baked, &stored));
            if missing.is_empty() {
                return Ok(Checked {
                    imported: Vec::new(),
                    stored: Some(stored),
                });
            }
            let imported = import_lacking(&dir, &address, &missing)?;
            let stored = Some(ctr::check(&address)?);
            Ok(Checked { imported, stored })
        }))
    }

    /// Waits for it; `None` if it failed (logged: [`ensure`] does the work then).
    pub fn finish(self) -> Option<Checked> {
        match self.0.join() {
            Ok(Ok(checked)) => Some(checked),
            Ok(Err(e)) => {
                tracing::warn!("early image check: {e:#}; checking in the runtime step");
                None
            }
            Err(_) => {
                tracing::warn!("early image check panicked; checking in the runtime step");
                None
            }
        }
    }
}

/// `missing` with pause and kube-proxy (what every node needs before kubelet) first.
fn node_images_first(mut missing: Vec<&Baked>) -> Vec<&Baked> {
    let names: Vec<String> = missing.iter().map(|b| b.name.clone()).collect();
    let node = kiln_core::images::node_images(&names);
    missing.sort_by_key(|b| !node.contains(&b.name));
    missing
}

/// Verifies, then imports, the archives of `missing`; one clear error if one is absent.
fn import_lacking(dir: &Path, address: &Path, missing: &[&Baked]) -> anyhow::Result<Vec<PathBuf>> {
    let names: Vec<&str> = missing.iter().map(|b| b.name.as_str()).collect();
    tracing::info!(images = %names.join(", "), "not in containerd's store as baked: importing");
    let archives: Vec<PathBuf> = missing
        .iter()
        .map(|b| dir.join(kiln_core::images::archive_name(&b.name)))
        .collect();
    for (image, archive) in missing.iter().zip(&archives) {
        anyhow::ensure!(
            archive.is_file(),
            "image {} is not in containerd's store and its archive {} is absent: kubeadm is not \
             started with images missing (rebuild the image)",
            image.name,
            archive.display()
        );
    }
    images::verify_all(dir, &archives)?;
    for archive in &archives {
        ctr::import(address, archive)?;
        tracing::info!(archive = %archive.display(), "imported pre-pulled images");
    }
    Ok(archives)
}

/// The sandbox image `name` containerd's config names: pinned when just imported; when the
/// store lacks it (a kubeadm config asking for another repository), the baked pause image of the
/// same tag gets its name too, so the CRI finds it without a registry; otherwise containerd
/// pulls it.
fn sandbox(address: &Path, name: &str, stored: &[Stored], imported: bool) -> anyhow::Result<()> {
    if stored.iter().any(|s| s.name == name && s.usable()) {
        if imported {
            ctr::pin(address, name)?;
        }
        return Ok(());
    }
    let Some(from) = same_tag(name, stored) else {
        tracing::info!(sandbox_image = %name, "sandbox image not baked: containerd pulls it");
        return Ok(());
    };
    ctr::tag(address, &from, name)?;
    ctr::pin(address, name)?;
    tracing::info!(sandbox_image = %name, baked = %from, "sandbox image named after the baked one");
    Ok(())
}

/// A usable stored image with the last path element and tag of `name` (`.../pause:3.10`).
fn same_tag(name: &str, stored: &[Stored]) -> Option<String> {
    let tail = name.rsplit('/').next()?;
    stored
        .iter()
        .find(|s| s.usable() && s.name != name && s.name.rsplit('/').next() == Some(tail))
        .map(|s| s.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(name: &str, digest: &str, usable: bool) -> Stored {
        Stored {
            name: name.into(),
            digest: digest.into(),
            complete: usable,
            unpacked: usable,
        }
    }

    #[test]
    fn the_manifests_image_digests_are_the_baked_images() {
        let text = br#"{"kubernetes_version": "v1.36.3", "image_digests": {
            "registry.k8s.io/pause:3.10": "sha256:aa"}}"#;
        assert_eq!(
            parse_manifest(text).unwrap().unwrap(),
            [Baked {
                name: "registry.k8s.io/pause:3.10".into(),
                digest: "sha256:aa".into()
            }]
        );
        assert_eq!(parse_manifest(br#"{"inputs": []}"#).unwrap(), None);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(baked(&dir.path().join("images")).unwrap(), None);
        std::fs::write(dir.path().join("manifest.json"), "{").unwrap();
        let err = baked(&dir.path().join("images")).unwrap_err();
        assert!(format!("{err:#}").contains("manifest.json"), "{err:#}");
    }

    #[test]
    fn absent_other_digest_incomplete_or_packed_images_are_lacking() {
        let baked: Vec<Baked> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| Baked {
                name: format!("r/{n}:1"),
                digest: format!("sha256:{n}"),
            })
            .collect();
        let store = [
            stored("r/a:1", "sha256:a", true),
            stored("r/b:1", "sha256:other", true),
            stored("r/c:1", "sha256:c", false),
        ];
        let names: Vec<&str> = lacking(&baked, &store)
            .iter()
            .map(|b| b.name.as_str())
            .collect();
        assert_eq!(names, ["r/b:1", "r/c:1", "r/d:1"]);
    }

    #[test]
    fn the_nodes_own_images_are_imported_first() {
        let baked: Vec<Baked> = [
            "etcd:3.5",
            "kube-proxy:v1.36.3",
            "coredns/coredns:v1",
            "pause:3.10",
        ]
        .iter()
        .map(|n| Baked {
            name: format!("registry.k8s.io/{n}"),
            digest: "sha256:x".into(),
        })
        .collect();
        let order: Vec<&str> = node_images_first(baked.iter().collect())
            .iter()
            .map(|b| b.name.as_str())
            .collect();
        assert_eq!(
            order,
            [
                "registry.k8s.io/kube-proxy:v1.36.3",
                "registry.k8s.io/pause:3.10",
                "registry.k8s.io/etcd:3.5",
                "registry.k8s.io/coredns/coredns:v1"
            ]
        );
    }

    #[test]
    fn a_sandbox_image_from_another_repository_is_the_baked_one_of_the_same_tag() {
        let store = [
            stored("registry.k8s.io/pause:3.10", "sha256:p", true),
            stored("registry.k8s.io/pause:3.9", "sha256:q", true),
        ];
        assert_eq!(
            same_tag("mirror.example/k8s/pause:3.10", &store).as_deref(),
            Some("registry.k8s.io/pause:3.10")
        );
        assert_eq!(same_tag("mirror.example/pause:3.11", &store), None);
    }
}
