//! `kubeadm config images list` of the stand-in kubeadm (not the real kubeadm): the image names,
//! order and repository rules of kubeadm's `images.GetControlPlaneImages`, with the CoreDNS,
//! etcd and pause tags of `firstboot/core/data/kubeadm-images.tsv`, plus one made-up future
//! release ([`FUTURE_VERSION`]) that is in no table.
//!
//! Simplifications: the real kubeadm prints its own CoreDNS and pause constants and the etcd of
//! the requested minor; the stand-in takes the table row of the requested version when it has
//! one, else its own row. Stricter than the real kubeadm: without `--kubernetes-version` it fails
//! (kubeadm warns it cannot fetch `stable-1.txt` and falls back to its own version), and it
//! refuses a version newer than itself (kubeadm's preflight only warns).

use crate::version::parse;

/// The table, `# comments` then `k8s_version coredns etcd pause`, TAB-separated.
pub const TABLE_TSV: &str = include_str!("../../firstboot/core/data/kubeadm-images.tsv");
/// kubeadm's default image repository.
pub const DEFAULT_REPOSITORY: &str = "registry.k8s.io";
/// A made-up kubeadm release that is in no table.
pub const FUTURE_VERSION: &str = "v1.99.0";
/// The CoreDNS tag the stand-in prints as [`FUTURE_VERSION`].
pub const FUTURE_COREDNS: &str = "v1.99.1";
/// The etcd tag the stand-in prints as [`FUTURE_VERSION`].
pub const FUTURE_ETCD: &str = "3.99.0-0";
/// The pause tag the stand-in prints as [`FUTURE_VERSION`].
pub const FUTURE_PAUSE: &str = "3.99";
/// `apiVersion` of kubeadm's structured output.
pub const OUTPUT_API: &str = "output.kubeadm.k8s.io/v1alpha3";

/// The tags that differ from the Kubernetes version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tags {
    /// CoreDNS, e.g. `v1.11.3`.
    pub coredns: String,
    /// etcd, e.g. `3.5.15-0`.
    pub etcd: String,
    /// pause, e.g. `3.10`.
    pub pause: String,
}

/// The table row of exactly `version` (`v1.36.3`), or the made-up one of [`FUTURE_VERSION`].
pub fn tags(version: &str) -> Option<Tags> {
    if version == FUTURE_VERSION {
        return Some(Tags {
            coredns: FUTURE_COREDNS.into(),
            etcd: FUTURE_ETCD.into(),
            pause: FUTURE_PAUSE.into(),
        });
    }
    TABLE_TSV
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|cols| cols.len() == 4 && cols[0] == version)
        .map(|cols| Tags {
            coredns: cols[1].into(),
            etcd: cols[2].into(),
            pause: cols[3].into(),
        })
}

/// What kubeadm `own` lists for `--kubernetes-version requested` (`None`: not given) and
/// `--image-repository repository`.
pub fn list(
    own: &str,
    requested: Option<&str>,
    repository: Option<&str>,
) -> Result<Vec<String>, String> {
    let Some(requested) = requested else {
        return Err(offline());
    };
    let requested = normalize(requested)?;
    check_skew(own, &requested)?;
    let tags = tags(&requested).or_else(|| tags(own)).ok_or_else(|| {
        format!("the stand-in kubeadm {own} has no row in kubeadm-images.tsv and is not {FUTURE_VERSION}")
    })?;
    let repo = repository.unwrap_or(DEFAULT_REPOSITORY);
    let coredns = match repo {
        DEFAULT_REPOSITORY => format!("{repo}/coredns/coredns:{}", tags.coredns),
        _ => format!("{repo}/coredns:{}", tags.coredns),
    };
    let mut out: Vec<String> = [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
    ]
    .iter()
    .map(|name| format!("{repo}/{name}:{requested}"))
    .collect();
    out.push(coredns);
    out.push(format!("{repo}/pause:{}", tags.pause));
    out.push(format!("{repo}/etcd:{}", tags.etcd));
    Ok(out)
}

/// kubeadm's error when it has no version and cannot reach dl.k8s.io.
fn offline() -> String {
    "unable to get URL \"https://dl.k8s.io/release/stable-1.txt\": the stand-in kubeadm has no \
     network (the real kubeadm would warn and fall back to its own version); pass \
     --kubernetes-version"
        .into()
}

/// `1.31.2` → `v1.31.2`; labels such as `stable-1.31` need the network.
fn normalize(requested: &str) -> Result<String, String> {
    if parse(requested).is_some() {
        return Ok(format!("v{}", requested.trim_start_matches('v')));
    }
    match requested.starts_with("stable")
        || requested.starts_with("latest")
        || requested.contains('/')
    {
        true => Err(offline()),
        false => Err(format!("couldn't parse Kubernetes version {requested:?}")),
    }
}

/// kubeadm deploys its own minor or the one before (`MinimumControlPlaneVersion`); the stand-in
/// also refuses newer minors.
fn check_skew(own: &str, requested: &str) -> Result<(), String> {
    let (Some((om, on, _)), Some((rm, rn, _))) = (parse(own), parse(requested)) else {
        return Err(format!("stand-in kubeadm version {own:?} is not vX.Y.Z"));
    };
    if (rm, rn) > (om, on) {
        return Err(format!(
            "the specified version is newer than kubeadm: Kubernetes version: {requested}. Kubeadm version: {om}.{on}.x \
             (the real kubeadm only warns in preflight; the stand-in refuses)"
        ));
    }
    if rm < om || rn + 1 < on {
        return Err(format!(
            "this version of kubeadm only supports deploying clusters with the control plane version >= {om}.{}.0. Current version: {requested}",
            on.saturating_sub(1)
        ));
    }
    Ok(())
}

/// kubeadm's JSON printer: `{"kind": "Images", "apiVersion": ..., "images": [...]}`, indented
/// by four spaces, with a final newline.
pub fn json(images: &[String]) -> String {
    let items: Vec<String> = images
        .iter()
        .map(|i| {
            format!(
                "        \"{}\"",
                i.replace('\\', "\\\\").replace('"', "\\\"")
            )
        })
        .collect();
    format!(
        "{{\n    \"kind\": \"Images\",\n    \"apiVersion\": \"{OUTPUT_API}\",\n    \"images\": [\n{}\n    ]\n}}\n",
        items.join(",\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_and_the_future_release() {
        let t = tags("v1.30.5").unwrap();
        assert_eq!(
            (t.coredns.as_str(), t.etcd.as_str(), t.pause.as_str()),
            ("v1.11.3", "3.5.15-0", "3.9")
        );
        assert!(tags("v1.37.0-rc.0").is_some());
        assert_eq!(tags(FUTURE_VERSION).unwrap().etcd, FUTURE_ETCD);
        assert_eq!(tags("v1.98.0"), None);
    }

    #[test]
    fn lists_like_kubeadm_and_checks_skew() {
        let l = list("v1.31.2", Some("1.30.5"), Some("mirror.example/k8s")).unwrap();
        assert_eq!(l[0], "mirror.example/k8s/kube-apiserver:v1.30.5");
        assert_eq!(l[4], "mirror.example/k8s/coredns:v1.11.3");
        let l = list(FUTURE_VERSION, Some("v1.98.2"), None).unwrap();
        assert_eq!(
            l[4..],
            [
                "registry.k8s.io/coredns/coredns:v1.99.1",
                "registry.k8s.io/pause:3.99",
                "registry.k8s.io/etcd:3.99.0-0"
            ]
        );
        let e = list("v1.31.2", Some("v1.29.0"), None).unwrap_err();
        assert_eq!(e, "this version of kubeadm only supports deploying clusters with the control plane version >= 1.30.0. Current version: v1.29.0");
        assert!(list("v1.31.2", Some("v1.32.0"), None)
            .unwrap_err()
            .starts_with("the specified version is newer than kubeadm"));
        assert!(list("v1.31.2", None, None)
            .unwrap_err()
            .starts_with("unable to get URL \"https://dl.k8s.io/release/stable-1.txt\""));
        assert!(list("v1.31.2", Some("stable-1.31"), None)
            .unwrap_err()
            .starts_with("unable to get URL"));
    }

    #[test]
    fn json_is_kubeadms_printer() {
        let j = json(&["a:1".into(), "b:2".into()]);
        assert_eq!(j, "{\n    \"kind\": \"Images\",\n    \"apiVersion\": \"output.kubeadm.k8s.io/v1alpha3\",\n    \"images\": [\n        \"a:1\",\n        \"b:2\"\n    ]\n}\n");
    }
}
