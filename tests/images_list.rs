//! `kiln images list`: kubeadm's `config images list` output from kiln's table, without kubeadm,
//! or from a kubeadm binary (`--kubeadm`; here the stand-in kubeadm, not the real one); and
//! `kiln versions`.

mod support;

use support::*;

/// The shared data kiln's table was copied from: every GA release from v1.29.0 on.
const SHARED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/kubeadm-images.tsv"
);

#[test]
fn every_ga_release_in_the_shared_data_lists_its_images() {
    let text = std::fs::read_to_string(SHARED)
        .unwrap_or_else(|_| include_str!("../firstboot/core/data/kubeadm-images.tsv").to_owned());
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let (version, coredns, etcd, pause) = (f[0], f[1], f[2], f[3]);
        if version.contains('-') {
            continue;
        }
        let run = kiln_ok(&["images", "list", "--kubernetes-version", version]);
        let want = format!(
            "registry.k8s.io/kube-apiserver:{version}\nregistry.k8s.io/kube-controller-manager:{version}\n\
             registry.k8s.io/kube-scheduler:{version}\nregistry.k8s.io/kube-proxy:{version}\n\
             registry.k8s.io/coredns/coredns:{coredns}\nregistry.k8s.io/pause:{pause}\n\
             registry.k8s.io/etcd:{etcd}\n"
        );
        assert_eq!(run.stdout, want, "{version}");
        checked += 1;
    }
    assert!(checked >= 97, "only {checked} releases");
}

#[test]
fn a_minor_means_its_newest_known_patch() {
    let run = kiln_ok(&["images", "list", "--kubernetes-version", "1.36"]);
    assert!(
        run.stdout
            .starts_with("registry.k8s.io/kube-apiserver:v1.36.3\n"),
        "{}",
        run.stdout
    );
    let run = kiln_ok(&["images", "list", "--kubernetes-version", "v1.37.0-rc.0"]);
    assert!(
        run.stdout.ends_with("registry.k8s.io/etcd:3.7.0-0\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_kubeadm_binary_answers_for_releases_the_table_does_not_know() {
    let dir = tempfile::tempdir().unwrap();
    let kubeadm = release::standin_kubeadm_release(dir.path(), "v1.99.0");
    let path = kubeadm.to_str().unwrap();
    let run = kiln_ok(&["images", "list", "--kubeadm", path, "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["kubernetesVersion"], "v1.99.0");
    assert_eq!(doc["source"], "kubeadm");
    assert_eq!(doc["images"][4], "registry.k8s.io/coredns/coredns:v1.99.1");
    assert_eq!(doc["images"][6], "registry.k8s.io/etcd:3.99.0-0");
    // The same answer as the table for a release it knows.
    let kubeadm = release::standin_kubeadm_release(dir.path(), "v1.35.2");
    let path = kubeadm.to_str().unwrap();
    let asked = kiln_ok(&[
        "images",
        "list",
        "--kubeadm",
        path,
        "--kubernetes-version",
        "v1.35.2",
    ]);
    let table = kiln_ok(&["images", "list", "--kubernetes-version", "v1.35.2"]);
    assert_eq!(asked.stdout, table.stdout);
    // kubeadm's own skew rule: it deploys its own minor or the one before.
    fails_with(
        &[
            "images",
            "list",
            "--kubeadm",
            path,
            "--kubernetes-version",
            "v1.33.0",
        ],
        &[
            "config images list --kubernetes-version v1.33.0: failed",
            "1.34.0",
        ],
    );
}

#[test]
fn a_kubeadm_that_fails_or_prints_garbage_is_named() {
    let dir = tempfile::tempdir().unwrap();
    for (script, needle) in [
        ("echo '{not json'", "printed something that is not kubeadm's image list"),
        ("echo 'panic: boom' >&2; exit 2", "failed (exit status: 2): \"panic: boom\""),
        ("echo '{\"kind\":\"Images\",\"apiVersion\":\"output.kubeadm.k8s.io/v1alpha3\",\"images\":[\"x y\"]}'", "not an image reference"),
    ] {
        let path = dir.path().join("kubeadm");
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        fails_with(
            &["images", "list", "--kubeadm", path.to_str().unwrap(), "--kubernetes-version", "v1.36.3"],
            &[path.to_str().unwrap(), needle],
        );
    }
}

#[test]
fn versions_lists_each_minor_and_prints_checksums_for_recipes() {
    let run = kiln_ok(&["versions"]);
    let line = run.stdout.lines().find(|l| l.starts_with("1.36 ")).unwrap();
    assert!(line.contains("v1.36.3") && line.contains("yes"), "{line}");
    let run = kiln_ok(&["versions", "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc[0]["minor"], "1.29");
    let run = kiln_ok(&["versions", "--checksums", "1.36"]);
    let tables: toml::Value = toml::from_str(&run.stdout).unwrap();
    assert_eq!(
        tables["checksums"]["arm64"]["kubectl"].as_str(),
        Some("3d86f24401c41ae5a46ac50eef8865fe891d3647d324a0836f6c63757a126e62")
    );
    fails_with(
        &["versions", "--checksums", "v1.99.0"],
        &["no independent checksums"],
    );
}

#[test]
fn prints_kubeadms_list_for_a_version() {
    let run = kiln_ok(&["images", "list", "--kubernetes-version", "v1.30.4"]);
    assert_eq!(
        run.stdout,
        "registry.k8s.io/kube-apiserver:v1.30.4\n\
         registry.k8s.io/kube-controller-manager:v1.30.4\n\
         registry.k8s.io/kube-scheduler:v1.30.4\n\
         registry.k8s.io/kube-proxy:v1.30.4\n\
         registry.k8s.io/coredns/coredns:v1.11.1\n\
         registry.k8s.io/pause:3.9\n\
         registry.k8s.io/etcd:3.5.12-0\n"
    );
}

#[test]
fn version_without_v_and_patch_specific_tags() {
    // 1.30.5 is the first 1.30 patch with CoreDNS v1.11.3 and etcd 3.5.15-0.
    let run = kiln_ok(&["images", "list", "--kubernetes-version", "1.30.5"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "registry.k8s.io/kube-apiserver:v1.30.5");
    assert_eq!(
        lines[4..],
        [
            "registry.k8s.io/coredns/coredns:v1.11.3",
            "registry.k8s.io/pause:3.9",
            "registry.k8s.io/etcd:3.5.15-0",
        ]
    );
}

#[test]
fn image_repository_replaces_the_registry_and_flattens_coredns() {
    let run = kiln_ok(&[
        "images",
        "list",
        "--kubernetes-version",
        "v1.31.2",
        "--image-repository",
        "mirror.example/k8s",
    ]);
    assert_eq!(
        run.stdout,
        "mirror.example/k8s/kube-apiserver:v1.31.2\n\
         mirror.example/k8s/kube-controller-manager:v1.31.2\n\
         mirror.example/k8s/kube-scheduler:v1.31.2\n\
         mirror.example/k8s/kube-proxy:v1.31.2\n\
         mirror.example/k8s/coredns:v1.11.3\n\
         mirror.example/k8s/pause:3.10\n\
         mirror.example/k8s/etcd:3.5.15-0\n"
    );
}

#[test]
fn json_output() {
    let run = kiln_ok(&[
        "images",
        "list",
        "--kubernetes-version",
        "1.33.6",
        "--output",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["kubernetesVersion"], "v1.33.6");
    let images: Vec<&str> = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert_eq!(images.len(), 7);
    assert_eq!(images[0], "registry.k8s.io/kube-apiserver:v1.33.6");
    assert_eq!(images[6], "registry.k8s.io/etcd:3.5.24-0");
}

/// Expects failure with exactly one `error:` line containing every needle, and nothing on stdout.
fn fails_with(args: &[&str], needles: &[&str]) {
    let run = kiln(args);
    assert!(!run.ok, "kiln {args:?} succeeded");
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .collect();
    assert_eq!(errors.len(), 1, "kiln {args:?}:\n{}", run.stderr);
    for needle in needles {
        assert!(
            errors[0].contains(needle),
            "{:?} lacks {needle:?}",
            errors[0]
        );
    }
    assert!(
        run.stdout.is_empty(),
        "kiln {args:?} printed {}",
        run.stdout
    );
}

#[test]
fn bad_versions_fail_with_one_error_line() {
    fails_with(
        &["images", "list", "--kubernetes-version", "v1.99.0"],
        &[
            "kubeadm v1.99.0 is newer than kiln's image table",
            "firstboot/core/data/kubeadm-images.tsv",
            "--kubeadm PATH",
        ],
    );
    fails_with(
        &["images", "list", "--kubernetes-version", "v1.36.2-rc.0"],
        &["v1.36.2-rc.0 is not a Kubernetes release kiln's image table knows"],
    );
    fails_with(
        &["images", "list", "--kubernetes-version", "latest"],
        &[
            "--kubernetes-version",
            "\"latest\" is not a Kubernetes version",
        ],
    );
    fails_with(
        &[
            "images",
            "list",
            "--kubernetes-version",
            "v1.31.2",
            "--image-repository",
            "https://mirror.example",
        ],
        &["image repository \"https://mirror.example\""],
    );
}
