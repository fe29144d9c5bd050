//! The content tree for one architecture, laid out as a sysext (`usr/...`): downloaded binaries,
//! CNI plugins, units, kiln-firstboot, the image store, and the inner manifest. The opt layout
//! and every output are made from this tree.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};

use anyhow::Context;

use super::fetch::Fetched;
use super::plan::{Artifact, Install};
use super::units;

pub use super::content::{IMAGE_DIR, MANIFEST};

/// Installs a verified artifact into `tree`.
pub fn install_artifact(tree: &Path, artifact: &Artifact, fetched: &Fetched) -> anyhow::Result<()> {
    match &artifact.install {
        Install::Binary(dest) => copy_executable(&fetched.path, &tree.join(dest)),
        Install::Tarball {
            prefix,
            dest_dir,
            only,
        } => {
            let count = extract(&fetched.path, prefix, &tree.join(dest_dir), only)
                .with_context(|| format!("unpacking {}", artifact.url))?;
            if count == 0 || (!only.is_empty() && count < only.len()) {
                anyhow::bail!(
                    "{}: the tarball holds no {} under {prefix:?}; is this the right release?",
                    artifact.url,
                    if only.is_empty() {
                        "files".to_owned()
                    } else {
                        only.join(", ")
                    }
                );
            }
            Ok(())
        }
    }
}

/// Writes the units, kiln-firstboot and its drop-ins. `containerd` adds containerd.service.
pub fn install_node_files(tree: &Path, firstboot: &Path, containerd: bool) -> anyhow::Result<()> {
    copy_executable(firstboot, &tree.join("usr/bin/kiln-firstboot"))?;
    let system = tree.join("usr/lib/systemd/system");
    let mut files = vec![
        ("kubelet.service", units::KUBELET_SERVICE),
        ("kubelet.service.d/10-kubeadm.conf", units::KUBEADM_DROPIN),
        ("kiln-firstboot.service", units::FIRSTBOOT_SERVICE),
        ("kiln-join-service.service", units::JOIN_SERVICE),
        ("multi-user.target.d/10-kiln.conf", units::MULTI_USER_DROPIN),
    ];
    if containerd {
        files.push(("containerd.service", units::CONTAINERD_SERVICE));
    }
    for (name, text) in files {
        write_file(&system.join(name), text.as_bytes(), 0o644)?;
    }
    Ok(())
}

/// Copies the recipe's overlay directory into `tree` (files, directories, symlinks as links),
/// replacing files kiln put there.
pub fn copy_overlay(overlay: &Path, tree: &Path) -> anyhow::Result<()> {
    for entry in fs::read_dir(overlay).with_context(|| format!("{}", overlay.display()))? {
        let entry = entry.with_context(|| format!("{}", overlay.display()))?;
        let (from, to) = (entry.path(), tree.join(entry.file_name()));
        let kind = entry
            .file_type()
            .with_context(|| format!("{}", from.display()))?;
        if kind.is_dir() {
            fs::create_dir_all(&to).with_context(|| format!("creating {}", to.display()))?;
            copy_overlay(&from, &to)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&from).with_context(|| format!("{}", from.display()))?;
            let _ = fs::remove_file(&to);
            std::os::unix::fs::symlink(&target, &to)
                .with_context(|| format!("linking {}", to.display()))?;
        } else {
            fs::copy(&from, &to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        }
    }
    Ok(())
}

/// Writes `bytes` at `path` (parents created) with `mode`.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

fn copy_executable(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("setting the mode of {}", to.display()))
}

/// Extracts regular files directly under `prefix` of a gzip tarball into `dest`; returns how
/// many. Nothing outside `prefix`, no links, no nested directories, no `..`.
fn extract(tarball: &Path, prefix: &str, dest: &Path, only: &[String]) -> anyhow::Result<usize> {
    let file = fs::File::open(tarball).with_context(|| format!("{}", tarball.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut count = 0;
    for entry in archive.entries().context("reading the tarball")? {
        let mut entry = entry.context("reading the tarball")?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().context("reading a tarball path")?.into_owned();
        let Some(name) = member_name(&path, prefix) else {
            continue;
        };
        if !only.is_empty() && !only.iter().any(|o| o == &name) {
            continue;
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {} from the tarball", path.display()))?;
        if !is_program(&bytes) {
            continue; // LICENSE, README.md and such in release tarballs
        }
        write_file(&dest.join(&name), &bytes, 0o755)?;
        count += 1;
    }
    Ok(count)
}

/// Whether `bytes` is an executable: an ELF binary or a `#!` script.
fn is_program(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF") || bytes.starts_with(b"#!")
}

/// The file name of `path` if it sits directly in `prefix` (ignoring a leading `./`).
fn member_name(path: &Path, prefix: &str) -> Option<String> {
    let parts: Vec<&str> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::RootDir))
    {
        return None;
    }
    let prefix: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
    (parts.len() == prefix.len() + 1 && parts[..prefix.len()] == prefix[..])
        .then(|| parts[prefix.len()].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_directly_under_the_prefix_only() {
        assert_eq!(
            member_name(Path::new("./bridge"), ""),
            Some("bridge".into())
        );
        assert_eq!(
            member_name(Path::new("bin/ctr"), "bin/"),
            Some("ctr".into())
        );
        assert_eq!(member_name(Path::new("bin/x/ctr"), "bin/"), None);
        assert_eq!(member_name(Path::new("LICENSE"), "bin/"), None);
        assert_eq!(member_name(Path::new("../evil"), ""), None);
        assert_eq!(member_name(Path::new("/etc/passwd"), ""), None);
    }
}
