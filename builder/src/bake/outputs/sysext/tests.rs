//! sysext packing against the real mksquashfs/unsquashfs and mkfs.erofs/fsck.erofs/dump.erofs.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use super::*;
use kiln_core::digest::sha256_file;

const EPOCH: u64 = 1_700_000_000;

/// A small content tree; `reverse` creates the entries in the opposite order and every file gets
/// a different host mtime, so only the packer's own ordering and the epoch can make images equal.
pub(crate) fn sample_tree(root: &Path, reverse: bool) {
    let mut files: Vec<(&str, &[u8], u32)> = vec![
        ("usr/bin/kubelet", b"#!/bin/sh\necho kubelet\n", 0o755),
        ("usr/bin/kubeadm", b"#!/bin/sh\necho kubeadm\n", 0o755),
        ("usr/libexec/cni/bridge", b"bridge plugin", 0o755),
        (
            "usr/lib/systemd/system/kubelet.service",
            b"[Service]\nExecStart=/usr/bin/kubelet\n",
            0o644,
        ),
        ("usr/share/kiln/images/pause.tar", &[7u8; 70_000], 0o644),
        (
            "usr/share/kiln/images/SHA256SUMS",
            b"abc  pause.tar\n",
            0o644,
        ),
    ];
    if reverse {
        files.reverse();
    }
    for (i, (rel, data, mode)) in files.iter().enumerate() {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).unwrap();
        let t = TimeSpec::new(1_600_000_000 + i as i64 * 1000 + reverse as i64, 0);
        utimensat(
            nix::fcntl::AT_FDCWD,
            &path,
            &t,
            &t,
            UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("kubelet", root.join("usr/bin/kubelet-link")).unwrap();
}

fn sysext_tree(root: &Path, reverse: bool) {
    sample_tree(root, reverse);
    write_extension_release(
        root,
        "kubernetes",
        "_any",
        Level::SysextLevel("1.0"),
        Arch::Amd64,
    )
    .unwrap();
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Checks an extracted tree: contents, modes and mtimes = EPOCH everywhere, symlink kept.
fn check_extracted(dir: &Path) {
    assert_eq!(
        std::fs::read(dir.join("usr/bin/kubelet")).unwrap(),
        b"#!/bin/sh\necho kubelet\n"
    );
    let release = std::fs::read_to_string(
        dir.join("usr/lib/extension-release.d/extension-release.kubernetes"),
    )
    .unwrap();
    assert!(release.contains("ID=_any\n"), "{release}");
    let meta = std::fs::metadata(dir.join("usr/bin/kubelet")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o755);
    assert_eq!(
        std::fs::metadata(dir.join("usr/lib/systemd/system/kubelet.service"))
            .unwrap()
            .mode()
            & 0o7777,
        0o644
    );
    assert_eq!(
        std::fs::read_link(dir.join("usr/bin/kubelet-link")).unwrap(),
        Path::new("kubelet")
    );
    for rel in [
        "usr/bin/kubelet",
        "usr/share/kiln/images/pause.tar",
        "usr",
        "usr/bin",
    ] {
        let m = std::fs::symlink_metadata(dir.join(rel)).unwrap();
        assert_eq!(m.mtime() as u64, EPOCH, "{rel}");
        assert_eq!((m.uid(), m.gid()), (0, 0), "{rel}");
    }
}

#[test]
fn extension_release_text() {
    assert_eq!(
        extension_release("_any", Level::SysextLevel("1.0"), Arch::Arm64),
        "ID=_any\nSYSEXT_LEVEL=1.0\nARCHITECTURE=arm64\nSYSEXT_SCOPE=system\n\
         EXTENSION_RELOAD_MANAGER=1\n"
    );
    assert!(
        extension_release("debian", Level::VersionId("12"), Arch::Amd64)
            .starts_with("ID=debian\nVERSION_ID=12\nARCHITECTURE=x86-64\n")
    );
    let dir = tempfile::tempdir().unwrap();
    let err = write_extension_release(
        dir.path(),
        "k",
        "Debian",
        Level::VersionId("12"),
        Arch::Amd64,
    )
    .unwrap_err();
    assert!(err.to_string().contains("\"Debian\""), "{err}");
}

#[test]
fn derived_uuid_is_stable_and_versioned() {
    let a = derived_uuid("kubernetes-v1.31.4-x86-64.raw");
    assert_eq!(a, derived_uuid("kubernetes-v1.31.4-x86-64.raw"));
    assert_ne!(a, derived_uuid("kubernetes-v1.31.5-x86-64.raw"));
    assert_eq!(a.len(), 36);
    assert_eq!(&a[14..15], "8");
    assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
}

#[test]
fn squashfs_has_root_owners_epoch_times_and_is_reproducible() {
    let scratch = tempfile::tempdir().unwrap();
    let (a, b) = (scratch.path().join("a"), scratch.path().join("b"));
    sysext_tree(&a, false);
    sysext_tree(&b, true);
    let (img_a, img_b) = (scratch.path().join("a.raw"), scratch.path().join("b.raw"));
    pack(&a, &img_a, SysextFormat::Squashfs, EPOCH, "x").unwrap();
    pack(&b, &img_b, SysextFormat::Squashfs, EPOCH, "x").unwrap();
    assert_eq!(sha256_file(&img_a).unwrap(), sha256_file(&img_b).unwrap());
    let leftovers: Vec<_> = std::fs::read_dir(scratch.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let listing = output(
        Command::new("unsquashfs")
            .args(["-lln", "-UTC"])
            .arg(&img_a),
    );
    let kubelet = listing
        .lines()
        .find(|l| l.ends_with("/usr/bin/kubelet"))
        .expect(&listing);
    assert!(
        kubelet.starts_with("-rwxr-xr-x 0/0") && kubelet.contains("2023-11-14 22:13"),
        "{kubelet}"
    );
    assert!(
        listing.lines().skip(3).all(|l| l.contains(" 0/0 ")),
        "{listing}"
    );
    let stat = output(Command::new("unsquashfs").arg("-s").arg(&img_a));
    assert!(stat.contains("Compression zstd"), "{stat}");
    let time = output(Command::new("unsquashfs").arg("-mkfs-time").arg(&img_a));
    assert_eq!(time.trim(), EPOCH.to_string());

    let x = scratch.path().join("x");
    output(
        Command::new("unsquashfs")
            .args(["-no-progress", "-d"])
            .arg(&x)
            .arg(&img_a),
    );
    check_extracted(&x);
}

#[test]
fn erofs_has_root_owners_epoch_times_derived_uuid_and_is_reproducible() {
    let scratch = tempfile::tempdir().unwrap();
    let (a, b) = (scratch.path().join("a"), scratch.path().join("b"));
    sysext_tree(&a, false);
    sysext_tree(&b, true);
    let (img_a, img_b) = (scratch.path().join("a.raw"), scratch.path().join("b.raw"));
    pack(&a, &img_a, SysextFormat::Erofs, EPOCH, "seed").unwrap();
    pack(&b, &img_b, SysextFormat::Erofs, EPOCH, "seed").unwrap();
    assert_eq!(sha256_file(&img_a).unwrap(), sha256_file(&img_b).unwrap());

    let sb = output(Command::new("dump.erofs").arg("-s").arg(&img_a));
    assert!(sb.contains(&derived_uuid("seed")), "{sb}");
    let x = scratch.path().join("x");
    output(
        Command::new("fsck.erofs")
            .arg(format!("--extract={}", x.display()))
            .arg(&img_a),
    );
    check_extracted(&x);
}

#[test]
fn failing_tool_leaves_no_partial_output() {
    let scratch = tempfile::tempdir().unwrap();
    let not_a_dir = scratch.path().join("tree");
    std::fs::write(&not_a_dir, "x").unwrap();
    let out = scratch.path().join("img.raw");
    let err = pack(&not_a_dir, &out, SysextFormat::Erofs, EPOCH, "x").unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("mkfs.erofs failed") && err.contains("not a directory"),
        "{err}"
    );
    assert!(err.lines().count() <= 12, "{err}");
    let names: Vec<_> = std::fs::read_dir(scratch.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("tree")]);
}

/// Runs systemd-sysext (systemd 252 on the test machines) against a scratch root in a private mount
/// namespace: a tmpfs on /run (sysext stages its overlay there) and the root bind-mounted shared
/// so the merge made in sysext's own namespace shows. Returns (success, stdout + stderr, the
/// merged kubelet or "").
fn sysext_merge(root: &Path) -> (bool, String, String) {
    let r = root.display();
    let script = format!(
        "set -e; mount --bind {r} {r}; mount --make-shared {r}; mount -t tmpfs tmpfs /run; \
         systemd-sysext --root={r} merge; cat {r}/usr/bin/kubelet > {r}/../merged-kubelet"
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux) runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let merged = std::fs::read_to_string(root.join("../merged-kubelet")).unwrap_or_default();
    (out.status.success(), text, merged)
}

/// systemd-sysext itself accepts the image: merged over a scratch root's /usr (os-release
/// ID=debian, so `ID=_any` is what lets it in). The versioned file name is refused: the
/// extension-release name must equal the image name, so nodes install it as `NAME.raw` (which
/// systemd-sysupdate's `CurrentSymlink=` does; systemd 252's `--root` mode does not follow
/// symlinks in etc/extensions, so the test copies the file).
#[test]
fn systemd_sysext_merges_the_image_under_its_plain_name() {
    for format in [SysextFormat::Squashfs, SysextFormat::Erofs] {
        let scratch = tempfile::tempdir().unwrap();
        let tree = scratch.path().join("tree");
        sysext_tree(&tree, false);
        let root = scratch.path().join("root");
        for d in ["usr/lib", "usr/bin", "etc/extensions"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(
            root.join("usr/lib/os-release"),
            "ID=debian\nVERSION_ID=12\n",
        )
        .unwrap();
        let versioned = root.join("etc/extensions/kubernetes-v1.31.4-x86-64.raw");
        pack(&tree, &versioned, format, EPOCH, "x").unwrap();
        let (ok, text, _) = sysext_merge(&root);
        assert!(
            !ok && text.contains("kubernetes-v1.31.4-x86-64"),
            "{format:?}: a versioned image name must not merge: {text}"
        );

        std::fs::rename(&versioned, root.join("etc/extensions/kubernetes.raw")).unwrap();
        let (ok, text, merged) = sysext_merge(&root);
        assert!(
            ok && text.contains("Merged extensions"),
            "{format:?}: {text}"
        );
        assert_eq!(merged, "#!/bin/sh\necho kubelet\n", "{format:?}: {text}");
    }
}
