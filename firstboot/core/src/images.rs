//! kubeadm's control-plane images per kubeadm release, from the one table kiln keeps of them:
//! `firstboot/core/data/kubeadm-images.toml`.
//!
//! The names, order and repository rules follow kubeadm's `cmd/kubeadm/app/images/images.go`
//! (`GetControlPlaneImages`, `GetDNSImage`, `GetEtcdImage`, `GetPauseImage`).

use std::fmt::Write as _;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::version::KubeVersion;
use crate::Error;

/// Where the table lives in the source tree, for error messages.
pub const TABLE_PATH: &str = "firstboot/core/data/kubeadm-images.toml";

const TABLE_TOML: &str = include_str!("../data/kubeadm-images.toml");

/// The parsed table: the default repository and the patch ranges, sorted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    default_repository: String,
    release: Vec<Release>,
}

/// One row: kubeadm releases `from..=to` print these coredns, pause and etcd tags.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Release {
    from: String,
    to: String,
    coredns: String,
    pause: String,
    etcd: String,
    /// Where the values were checked (kept in the data for reviewers; not used).
    #[allow(dead_code)]
    source: String,
}

impl Release {
    fn from(&self) -> KubeVersion {
        parse_row_version(&self.from)
    }

    fn to(&self) -> KubeVersion {
        parse_row_version(&self.to)
    }

    fn contains(&self, v: &KubeVersion) -> bool {
        (key(&self.from())..=key(&self.to())).contains(&key(v))
    }
}

fn parse_row_version(s: &str) -> KubeVersion {
    s.parse()
        .unwrap_or_else(|e| panic!("{TABLE_PATH}: bad version {s:?}: {e}"))
}

/// (major, minor, patch): the order of release versions.
fn key(v: &KubeVersion) -> (u32, u32, u32) {
    (v.major, v.minor, v.patch)
}

/// The table, parsed once. It is compiled in and checked by the unit tests, so a parse error is
/// a build defect, not user input.
fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| toml::from_str(TABLE_TOML).unwrap_or_else(|e| panic!("{TABLE_PATH}: {e}")))
}

/// The repository kubeadm uses without `--image-repository`: `registry.k8s.io`.
pub fn default_repository() -> &'static str {
    &table().default_repository
}

/// The row for `version`, or an error listing the versions the table knows.
fn release(version: &KubeVersion) -> Result<&'static Release, Error> {
    let found = version
        .pre
        .is_none()
        .then(|| table().release.iter().find(|r| r.contains(version)))
        .flatten();
    found.ok_or_else(|| {
        Error::invalid(format!(
            "kiln's image table knows kubeadm {}; {version} is not among them: pass one of \
             those to --kubernetes-version, or add {version} to {TABLE_PATH} (values from \
             kubeadm's cmd/kubeadm/app/constants/constants.go at that tag)",
            known_versions()
        ))
    })
}

/// The versions the table covers, one range per minor: `v1.29.0–v1.29.10, v1.30.0–v1.30.6`.
pub fn known_versions() -> String {
    let mut ranges: Vec<(KubeVersion, KubeVersion)> = Vec::new();
    for row in &table().release {
        match ranges.last_mut() {
            Some((_, last)) if last.minor == row.from().minor => *last = row.to(),
            _ => ranges.push((row.from(), row.to())),
        }
    }
    let mut out = String::new();
    for (i, (from, to)) in ranges.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if from == to {
            let _ = write!(out, "{from}");
        } else {
            let _ = write!(out, "{from}–{to}");
        }
    }
    out
}

/// The repository to use: `repository` (checked) or the default.
fn repository(repository: Option<&str>) -> Result<&str, Error> {
    let Some(repo) = repository else {
        return Ok(default_repository());
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
    let row = release(version)?;
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
    let dns_repo = if repo == default_repository() {
        format!("{repo}/coredns")
    } else {
        repo.to_owned()
    };
    images.push(format!("{dns_repo}/coredns:{}", row.coredns));
    images.push(format!("{repo}/pause:{}", row.pause));
    images.push(format!("{repo}/etcd:{}", row.etcd));
    Ok(images)
}

/// The pause (sandbox) image kubeadm expects for `version` (kubeadm's `GetPauseImage`).
/// containerd must be configured with the same image, or an offline `kubeadm init` hangs.
pub fn pause_image(version: &KubeVersion, repository: Option<&str>) -> Result<String, Error> {
    let row = release(version)?;
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
    fn table_parses_and_rows_are_sorted_without_overlap() {
        let rows = &table().release;
        assert!(!rows.is_empty());
        for row in rows {
            assert!(
                key(&row.from()) <= key(&row.to()),
                "{} > {}",
                row.from,
                row.to
            );
            assert_eq!(
                row.from().minor,
                row.to().minor,
                "row {} spans minors",
                row.from
            );
            assert!(row.from().pre.is_none() && row.to().pre.is_none());
        }
        for pair in rows.windows(2) {
            assert!(
                key(&pair[0].to()) < key(&pair[1].from()),
                "{}..{} overlaps or is out of order with {}",
                pair[0].from,
                pair[0].to,
                pair[1].from
            );
        }
    }

    #[test]
    fn every_minor_is_covered_contiguously_from_patch_zero() {
        let rows = &table().release;
        for pair in rows.windows(2) {
            let (a, b) = (pair[0].to(), pair[1].from());
            if a.minor == b.minor {
                assert_eq!(b.patch, a.patch + 1, "gap between {a} and {b}");
            } else {
                assert_eq!(b.minor, a.minor + 1, "missing minor between {a} and {b}");
                assert_eq!(b.patch, 0, "minor {} does not start at .0", b.minor);
            }
        }
        assert_eq!(rows[0].from().patch, 0);
    }

    #[test]
    fn values_have_kubeadms_shapes() {
        for row in &table().release {
            assert!(row.coredns.starts_with('v'), "coredns {}", row.coredns);
            assert!(!row.pause.starts_with('v'), "pause {}", row.pause);
            let (etcd, rev) = row.etcd.split_once('-').expect("etcd tag like 3.5.15-0");
            assert!(etcd.split('.').count() == 3 && rev.parse::<u32>().is_ok());
        }
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
    fn unknown_versions_are_refused_with_the_known_ranges() {
        for bad in ["v1.28.15", "v1.29.11", "v1.99.0", "v1.31.0-rc.1"] {
            let err = control_plane_images(&v(bad), None).unwrap_err().to_string();
            assert!(
                err.starts_with("kiln's image table knows kubeadm v1.29.0–v1.29.10, "),
                "{err}"
            );
            assert!(err.contains(TABLE_PATH) && err.contains(bad), "{err}");
        }
        assert!(pause_image(&v("v1.99.0"), None).is_err());
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
