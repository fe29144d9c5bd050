//! The /opt layout: path mapping, unit rewriting, the tree and its tar (checked with GNU tar).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use super::*;
use crate::bake::arch::Arch;
use crate::bake::outputs::sysext::{write_extension_release, Level};
use kiln_core::digest::sha256_file;

const EPOCH: u64 = 1_700_000_000;

fn moved() -> BTreeMap<String, String> {
    [
        ("/usr/bin/kubelet", "/opt/bin/kubelet"),
        ("/usr/bin/kubeadm", "/opt/bin/kubeadm"),
        ("/usr/bin/containerd", "/opt/bin/containerd"),
        ("/usr/share/kiln/images", "/opt/kiln/images"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect()
}

#[test]
fn paths_map_to_the_opt_layout() {
    for (from, to) in [
        ("usr/bin/kubelet", Some("opt/bin/kubelet")),
        ("usr/bin", Some("opt/bin")),
        ("usr/libexec/cni/bridge", Some("opt/cni/bin/bridge")),
        (
            "usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
            Some("etc/systemd/system/kubelet.service.d/10-kubeadm.conf"),
        ),
        (
            "usr/share/kiln/images/SHA256SUMS",
            Some("opt/kiln/images/SHA256SUMS"),
        ),
        (
            "usr/lib/extension-release.d/extension-release.kubernetes",
            None,
        ),
        ("usr/lib/extension-release.d", None),
        ("usr", None),
        ("usr/lib", None),
        ("usr/lib/systemd", None),
    ] {
        assert_eq!(
            opt_path(Path::new(from)).unwrap(),
            to.map(PathBuf::from),
            "{from}"
        );
    }
    let err = opt_path(Path::new("usr/lib/libfoo.so")).unwrap_err();
    assert!(
        err.to_string().starts_with("usr/lib/libfoo.so: no place"),
        "{err}"
    );
}

#[test]
fn unit_rewrite_touches_only_shipped_paths_in_path_settings() {
    let unit = "\
[Unit]
Description=kubelet: /usr/bin/kubelet
ConditionPathExists=!/usr/share/kiln/images
ConditionPathExists=/usr/bin/kubelet

[Service]
Environment=\"KUBELET=/usr/bin/kubelet\"
ExecStartPre=-/usr/bin/mkdir -p /etc/kubernetes/manifests
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS --config=/var/lib/kubelet/config.yaml
ExecStartPost=  @/usr/bin/containerd containerd --kubeadm=/usr/bin/kubeadm
ExecStop=/usr/bin/kubeletx
";
    let want = "\
[Unit]
Description=kubelet: /usr/bin/kubelet
ConditionPathExists=!/opt/kiln/images
ConditionPathExists=/opt/bin/kubelet

[Service]
Environment=\"KUBELET=/usr/bin/kubelet\"
ExecStartPre=-/usr/bin/mkdir -p /etc/kubernetes/manifests
ExecStart=
ExecStart=/opt/bin/kubelet $KUBELET_KUBECONFIG_ARGS --config=/var/lib/kubelet/config.yaml
ExecStartPost=  @/opt/bin/containerd containerd --kubeadm=/opt/bin/kubeadm
ExecStop=/usr/bin/kubeletx
";
    assert_eq!(rewrite_unit(unit, &moved()), want);
    assert_eq!(
        rewrite_unit("ExecStart=/usr/bin/kubelet", &moved()),
        "ExecStart=/opt/bin/kubelet"
    );
}

fn sysext_tree(root: &Path, reverse: bool) {
    crate::bake::outputs::sysext::tests::sample_tree(root, reverse);
    write_extension_release(
        root,
        "kubernetes",
        "_any",
        Level::SysextLevel("1.0"),
        Arch::Amd64,
    )
    .unwrap();
}

#[test]
fn opt_tree_has_the_layout_rewritten_units_and_epoch_times() {
    let scratch = tempfile::tempdir().unwrap();
    let tree = scratch.path().join("tree");
    sysext_tree(&tree, false);
    let out = scratch.path().join("kubernetes-v1.31.4-x86-64-opt");
    write_tree(&tree, &out, EPOCH).unwrap();
    // A second build replaces the first.
    write_tree(&tree, &out, EPOCH).unwrap();
    let names: Vec<_> = std::fs::read_dir(scratch.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    let listing: Vec<String> = walk_sorted(&out)
        .unwrap()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(
        listing,
        [
            "etc",
            "etc/systemd",
            "etc/systemd/system",
            "etc/systemd/system/kubelet.service",
            "opt",
            "opt/bin",
            "opt/bin/kubeadm",
            "opt/bin/kubelet",
            "opt/bin/kubelet-link",
            "opt/cni",
            "opt/cni/bin",
            "opt/cni/bin/bridge",
            "opt/kiln",
            "opt/kiln/images",
            "opt/kiln/images/SHA256SUMS",
            "opt/kiln/images/pause.tar",
        ]
    );
    assert_eq!(
        std::fs::read_to_string(out.join("etc/systemd/system/kubelet.service")).unwrap(),
        "[Service]\nExecStart=/opt/bin/kubelet\n"
    );
    assert_eq!(
        std::fs::metadata(out.join("opt/bin/kubelet"))
            .unwrap()
            .mode()
            & 0o7777,
        0o755
    );
    for rel in [
        "",
        "opt",
        "opt/bin/kubelet",
        "opt/bin/kubelet-link",
        "etc/systemd/system",
    ] {
        let m = std::fs::symlink_metadata(out.join(rel)).unwrap();
        assert_eq!(m.mtime() as u64, EPOCH, "{rel:?}");
    }
}

#[test]
fn opt_tar_is_reproducible_sorted_and_root_owned() {
    let scratch = tempfile::tempdir().unwrap();
    let mut sums = Vec::new();
    for (i, reverse) in [false, true].into_iter().enumerate() {
        let tree = scratch.path().join(format!("tree{i}"));
        sysext_tree(&tree, reverse);
        let dir = scratch.path().join(format!("opt{i}"));
        write_tree(&tree, &dir, EPOCH).unwrap();
        let tar = scratch.path().join(format!("opt{i}.tar"));
        write_tar(&dir, &tar, EPOCH).unwrap();
        sums.push(sha256_file(&tar).unwrap());
    }
    assert_eq!(sums[0], sums[1]);

    let tar = scratch.path().join("opt0.tar");
    let out = Command::new("tar")
        .args(["--numeric-owner", "--full-time", "--utc", "-tvf"])
        .arg(&tar)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 16, "{listing}");
    assert!(
        lines[0].starts_with("drwxr-xr-x 0/0") && lines[0].ends_with(" etc/"),
        "{listing}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" 0/0 ") && l.contains("2023-11-14 22:13:20")),
        "{listing}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("lrwxrwxrwx 0/0 ")
                && l.ends_with(" opt/bin/kubelet-link -> kubelet")),
        "{listing}"
    );

    // GNU tar extracts it to exactly the tree.
    let x = scratch.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read(x.join("opt/kiln/images/pause.tar")).unwrap(),
        vec![7u8; 70_000]
    );
    assert_eq!(
        std::fs::metadata(x.join("opt/cni/bin/bridge"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o755
    );
}

#[test]
fn unknown_content_fails_without_output() {
    let scratch = tempfile::tempdir().unwrap();
    let tree = scratch.path().join("tree");
    std::fs::create_dir_all(tree.join("usr/lib/firmware")).unwrap();
    let out = scratch.path().join("opt");
    let err = format!("{:#}", write_tree(&tree, &out, EPOCH).unwrap_err());
    assert!(err.contains("usr/lib/firmware: no place"), "{err}");
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 1);
}
