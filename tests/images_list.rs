//! `kiln images list`: kubeadm's `config images list` output from kiln's table, without kubeadm.

mod support;

use support::*;

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
            "kiln's image table knows kubeadm v1.29.0",
            "v1.99.0",
            "firstboot/core/data/kubeadm-images.toml",
        ],
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
