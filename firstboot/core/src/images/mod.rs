//! kubeadm's control-plane images per kubeadm release. The kubeadm being baked is the
//! authority ([`kubeadm::ask`]); kiln's table of releases ([`table`]) answers when no kubeadm
//! binary can be run (another architecture, `kiln images list` without `--kubeadm`) and gives
//! kiln-firstboot its sandbox image when the baked manifest names none.
//!
//! The names, order and repository rules follow kubeadm's `cmd/kubeadm/app/images/images.go`
//! (`GetControlPlaneImages`, `GetDNSImage`, `GetEtcdImage`, `GetPauseImage`).

pub mod kubeadm;
pub mod table;

use crate::version::KubeVersion;
use crate::Error;

pub use kubeadm::image_named;
pub use table::TABLE_PATH;

/// The repository kubeadm uses without `--image-repository`.
pub const DEFAULT_REPOSITORY: &str = "registry.k8s.io";

/// The file name of the baked archive of image `reference` (kiln build writes it, kiln-firstboot
/// finds it by the image's name): every character other than `[A-Za-z0-9._-]` replaced by `_`,
/// plus `.tar` (`registry.k8s.io/pause:3.10` -> `registry.k8s.io_pause_3.10.tar`).
pub fn archive_name(reference: &str) -> String {
    let safe: String = reference
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.tar")
}

/// The repository to use: `repository` (checked: a registry and path, no scheme) or the
/// default.
pub fn repository(repository: Option<&str>) -> Result<&str, Error> {
    let Some(repo) = repository else {
        return Ok(DEFAULT_REPOSITORY);
    };
    let bad = repo.is_empty()
        || repo.ends_with('/')
        || repo.contains("://")
        || repo.chars().any(char::is_whitespace);
    if bad {
        return Err(Error::invalid(format!(
            "image repository {repo:?} is not usable: give a registry and path without scheme \
             or trailing slash, e.g. registry.example.com/k8s"
        )));
    }
    Ok(repo)
}

/// The images `kubeadm config images list --kubernetes-version VERSION [--image-repository R]`
/// prints, in kubeadm's order: kube-apiserver, kube-controller-manager, kube-scheduler,
/// kube-proxy, coredns, pause, etcd.
///
/// As in kubeadm's `GetDNSImage`, CoreDNS lives under `coredns/coredns` only in the default
/// repository; with another repository it is `R/coredns`. pause and etcd follow the repository.
pub fn control_plane_images(
    version: &KubeVersion,
    repository: Option<&str>,
) -> Result<Vec<String>, Error> {
    let row = table::release(version)?;
    let repo = self::repository(repository)?;
    let tag = version.to_string();
    let mut images: Vec<String> = [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
    ]
    .iter()
    .map(|name| format!("{repo}/{name}:{tag}"))
    .collect();
    let dns_repo = if repo == DEFAULT_REPOSITORY {
        format!("{repo}/coredns")
    } else {
        repo.to_owned()
    };
    images.push(format!("{dns_repo}/coredns:{}", row.coredns));
    images.push(format!("{repo}/pause:{}", row.pause));
    images.push(format!("{repo}/etcd:{}", row.etcd));
    Ok(images)
}

/// The images a worker needs before kubeadm joins: kube-proxy and pause, in `images`' order.
pub fn node_images(images: &[String]) -> Vec<String> {
    images
        .iter()
        .filter(|i| {
            let one = std::slice::from_ref(*i);
            image_named(one, "kube-proxy").is_some() || image_named(one, "pause").is_some()
        })
        .cloned()
        .collect()
}

/// The pause (sandbox) image kubeadm expects for `version` (kubeadm's `GetPauseImage`).
/// containerd must be configured with the same image, or an offline `kubeadm init` hangs.
pub fn pause_image(version: &KubeVersion, repository: Option<&str>) -> Result<String, Error> {
    let row = table::release(version)?;
    Ok(format!(
        "{}/pause:{}",
        self::repository(repository)?,
        row.pause
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KubeVersion {
        s.parse().unwrap()
    }

    #[test]
    fn known_values_checked_in_kubeadm_output() {
        // minikube's table of `kubeadm config images list` output (see the data file).
        assert_eq!(
            control_plane_images(&v("v1.29.2"), None).unwrap(),
            [
                "registry.k8s.io/kube-apiserver:v1.29.2",
                "registry.k8s.io/kube-controller-manager:v1.29.2",
                "registry.k8s.io/kube-scheduler:v1.29.2",
                "registry.k8s.io/kube-proxy:v1.29.2",
                "registry.k8s.io/coredns/coredns:v1.11.1",
                "registry.k8s.io/pause:3.9",
                "registry.k8s.io/etcd:3.5.10-0",
            ]
        );
        let tail = |s: &str| control_plane_images(&v(s), None).unwrap()[4..].to_vec();
        assert_eq!(
            tail("1.29.3"),
            [
                "registry.k8s.io/coredns/coredns:v1.11.1",
                "registry.k8s.io/pause:3.9",
                "registry.k8s.io/etcd:3.5.12-0"
            ]
        );
        assert_eq!(
            tail("1.30.5"),
            [
                "registry.k8s.io/coredns/coredns:v1.11.3",
                "registry.k8s.io/pause:3.9",
                "registry.k8s.io/etcd:3.5.15-0"
            ]
        );
        assert_eq!(tail("1.31.0")[0], "registry.k8s.io/coredns/coredns:v1.11.1");
        assert_eq!(tail("1.31.1")[0], "registry.k8s.io/coredns/coredns:v1.11.3");
        assert_eq!(tail("1.32.0")[2], "registry.k8s.io/etcd:3.5.16-0");
        assert_eq!(tail("1.33.5")[2], "registry.k8s.io/etcd:3.5.21-0");
        assert_eq!(tail("1.33.6")[2], "registry.k8s.io/etcd:3.5.24-0");
    }

    #[test]
    fn other_repository_drops_the_coredns_path_component() {
        let images = control_plane_images(&v("v1.31.2"), Some("mirror.example/k8s")).unwrap();
        assert_eq!(
            images,
            [
                "mirror.example/k8s/kube-apiserver:v1.31.2",
                "mirror.example/k8s/kube-controller-manager:v1.31.2",
                "mirror.example/k8s/kube-scheduler:v1.31.2",
                "mirror.example/k8s/kube-proxy:v1.31.2",
                "mirror.example/k8s/coredns:v1.11.3",
                "mirror.example/k8s/pause:3.10",
                "mirror.example/k8s/etcd:3.5.15-0",
            ]
        );
        // Naming the default repository explicitly is the default (kubeadm compares strings).
        assert_eq!(
            control_plane_images(&v("v1.31.2"), Some("registry.k8s.io")).unwrap(),
            control_plane_images(&v("v1.31.2"), None).unwrap()
        );
    }

    #[test]
    fn pause_image_follows_the_table() {
        assert_eq!(
            pause_image(&v("v1.30.4"), None).unwrap(),
            "registry.k8s.io/pause:3.9"
        );
        assert_eq!(
            pause_image(&v("v1.31.2"), Some("r.example:5000/k8s")).unwrap(),
            "r.example:5000/k8s/pause:3.10"
        );
    }

    #[test]
    fn bad_repositories_are_refused() {
        for bad in ["", "registry.example/", "https://registry.example", "a b"] {
            let err = pause_image(&v("v1.31.2"), Some(bad))
                .unwrap_err()
                .to_string();
            assert!(err.contains("image repository"), "{err}");
        }
    }
}
