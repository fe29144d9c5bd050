//! Pre-pulled images baked into the node image, in containerd's `k8s.io` namespace (where
//! kubelet looks) before kubeadm runs, so a node goes Ready without pulling from a registry.
//!
//! A disk image arrives with containerd's store already filled by `kiln build`: the node checks
//! it against the digests the baked manifest lists ([`ensure`]: one `ctr images check`) and
//! imports only what is missing, incomplete or different, from the archives beside the
//! manifest. A sysext or /opt node has an empty store and imports every archive. Archives are
//! checked against the directory's `SHA256SUMS` before any import. The sandbox (pause) image is
//! labelled `io.cri-containerd.pinned=pinned`, which containerd's CRI reports to kubelet as a
//! pinned image that its image garbage collection never removes (containerd 1.7+ and the 1.6
//! releases with the backported pinned-image support; older containerd keeps the label and
//! ignores it).

use std::path::{Path, PathBuf};

use kiln_core::containerd::ctr;
use kiln_core::digest::{self, SumLine};

/// Where `kiln build` puts image archives (the sysext layout).
pub const IMAGE_DIR: &str = "/usr/share/kiln/images";
/// Where the /opt layout of `kiln build` puts them.
pub const OPT_IMAGE_DIR: &str = "/opt/kiln/images";

/// The image directory inside the node root `root`: [`IMAGE_DIR`], else [`OPT_IMAGE_DIR`] when
/// only that exists (a node installed from the /opt tree).
pub fn image_dir(root: &Path) -> PathBuf {
    let usr = root.join(IMAGE_DIR.trim_start_matches('/'));
    let opt = root.join(OPT_IMAGE_DIR.trim_start_matches('/'));
    if !usr.exists() && opt.exists() {
        opt
    } else {
        usr
    }
}

/// The sandbox (pause) image `kiln build` baked, from the `manifest.json` beside the image
/// directory (`sandbox_image`), if there is one.
pub fn baked_sandbox_image(root: &Path) -> Option<String> {
    let manifest = image_dir(root).parent()?.join("manifest.json");
    let text = std::fs::read_to_string(manifest).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["sandbox_image"].as_str().map(str::to_owned)
}

pub use kiln_core::containerd::ctr::PINNED_LABEL;

/// Verifies and imports every `*.tar` in `dir` into the containerd at `address`, then pins
/// `sandbox_image` if one of the archives carried it; returns the archives imported. A missing
/// directory means the image carries no pre-pulled images.
pub fn import_all(
    dir: &Path,
    address: &Path,
    sandbox_image: Option<&str>,
) -> anyhow::Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut archives: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tar"))
        .collect();
    archives.sort();
    verify_all(dir, &archives)?;
    for archive in &archives {
        import(archive, address)?;
    }
    if let Some(name) = sandbox_image.filter(|_| !archives.is_empty()) {
        pin(name, address)?;
    }
    Ok(archives)
}

/// Labels image `name` pinned if containerd has it (a sandbox image not baked is left alone).
fn pin(name: &str, address: &Path) -> anyhow::Result<()> {
    let listed = ctr::ctr(address, &["images", "ls", "-q"])?;
    if !listed.lines().any(|l| l.trim() == name) {
        tracing::info!(sandbox_image = %name, "sandbox image not among the pre-pulled images; not pinned");
        return Ok(());
    }
    ctr::pin(address, name)?;
    tracing::info!(sandbox_image = %name, "pinned the sandbox image");
    Ok(())
}

/// Checks each of `archives` against `dir/SHA256SUMS` before any is imported.
pub fn verify_all(dir: &Path, archives: &[PathBuf]) -> anyhow::Result<()> {
    let sums = read_sums(&dir.join("SHA256SUMS"))?;
    for archive in archives {
        verify(archive, &sums)?;
    }
    Ok(())
}

/// The parsed `SHA256SUMS` at `path`.
fn read_sums(path: &Path) -> anyhow::Result<Vec<SumLine>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}; every baked image archive must be listed with its SHA-256",
            path.display()
        )
    })?;
    Ok(digest::parse_sums(&text))
}

fn verify(archive: &Path, sums: &[SumLine]) -> anyhow::Result<()> {
    let name = archive
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let expected = digest::lookup_sum(sums, name).ok_or_else(|| {
        anyhow::anyhow!(
            "{}: not listed in SHA256SUMS; refusing to import it",
            archive.display()
        )
    })?;
    let actual = digest::sha256_file(archive)?;
    if actual != expected {
        anyhow::bail!("{}: SHA-256 {actual} does not match SHA256SUMS ({expected}); the archive is corrupt or was changed", archive.display());
    }
    Ok(())
}

fn import(archive: &Path, address: &Path) -> anyhow::Result<()> {
    ctr::import(address, archive)?;
    tracing::info!(archive = %archive.display(), "imported pre-pulled images");
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_baked_sandbox_image_comes_from_the_manifest() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(baked_sandbox_image(root.path()), None);
        let dir = root.path().join("usr/share/kiln");
        std::fs::create_dir_all(dir.join("images")).unwrap();
        std::fs::write(
            dir.join("manifest.json"),
            r#"{"sandbox_image": "registry.k8s.io/pause:3.10"}"#,
        )
        .unwrap();
        assert_eq!(
            baked_sandbox_image(root.path()).as_deref(),
            Some("registry.k8s.io/pause:3.10")
        );
    }

    use super::*;

    #[test]
    fn image_dir_prefers_the_sysext_layout_then_opt() {
        let root = tempfile::tempdir().unwrap();
        let usr = root.path().join("usr/share/kiln/images");
        let opt = root.path().join("opt/kiln/images");
        assert_eq!(image_dir(root.path()), usr);
        std::fs::create_dir_all(&opt).unwrap();
        assert_eq!(image_dir(root.path()), opt);
        std::fs::create_dir_all(&usr).unwrap();
        assert_eq!(image_dir(root.path()), usr);
    }
}
