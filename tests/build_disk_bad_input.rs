//! Bad disk output requests to `kiln build` (fast tier): an unknown format, a format whose tool
//! the host lacks, both the old `qcow2` key and `formats`, a disk image for arm64 on a machine
//! without qemu-user for arm64 in binfmt_misc (hidden under an empty tmpfs), dm-verity without
//! `veritysetup` on the host, a kernel command line that sets what kiln sets. Each is one
//! `error:` line and exit status 1 before any download or long work, and nothing is written
//! beside `--out` (no build directory, no cache).

mod support;

use std::path::Path;

use support::*;

const RECIPE: &str = r#"
kubernetes_version = "v1.31.4"
architectures = ["amd64"]
[images]
kubeadm = "none"
[outputs]
sysext = "none"
opt = false
[rootfs]
suite = "bookworm"
mirror = "http://127.0.0.1:9/debian"
packages = ["systemd-sysv", "linux-image-amd64", "initramfs-tools", "systemd-boot-efi"]
[disk]
size = "3G"
"#;

/// Whether programs can be hidden from kiln: a user and mount namespace where /dev/null is
/// bind-mounted over them (kiln looks in PATH and the sbin and bin directories).
fn can_hide() -> bool {
    std::process::Command::new("unshare")
        .args(["-rm", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

/// The shell script that hides `programs` (absolute paths: directories, under an empty tmpfs)
/// and runs its arguments.
fn hiding(programs: &[&str]) -> String {
    let mut script = String::from("set -e\n");
    for dir in programs.iter().filter(|p| p.starts_with('/')) {
        script.push_str(&format!("mount -t tmpfs tmpfs {dir}\n"));
    }
    for prog in programs.iter().filter(|p| !p.starts_with('/')) {
        script.push_str(&format!(
            "for d in $(echo \"$PATH\" | tr : ' ') /usr/sbin /sbin /usr/bin /bin; do \
             if [ -f \"$d/{prog}\" ]; then mount --bind /dev/null \"$d/{prog}\"; fi; done\n"
        ));
    }
    script.push_str("exec \"$@\"\n");
    script
}

/// Builds `recipe` with `hide` hidden from kiln; expects one error line naming every needle,
/// exit status 1, and nothing beside --out.
fn refused(dir: &Path, name: &str, recipe: &str, hide: &[&str], needles: &[&str]) {
    let recipe_path = dir.join(format!("{name}.toml"));
    std::fs::write(&recipe_path, recipe).unwrap();
    let parent = dir.join(name);
    std::fs::create_dir(&parent).unwrap();
    let out = parent.join("out");
    let mut cmd = if hide.is_empty() {
        std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
    } else {
        let mut c = std::process::Command::new("unshare");
        c.args(["-rm", "sh", "-c", &hiding(hide), "sh"])
            .arg(env!("CARGO_BIN_EXE_kiln"));
        c
    };
    cmd.arg("build")
        .arg(&recipe_path)
        .arg("--out")
        .arg(&out)
        .arg("--cache")
        .arg(parent.join("cache"))
        .arg("--report")
        .arg(parent.join("report.json"))
        .arg("--firstboot")
        .arg(format!("amd64={}", env!("CARGO_BIN_EXE_kiln")))
        .arg("--mirror")
        .arg("https://dl.k8s.io/release=http://127.0.0.1:9/k8s")
        .stdin(std::process::Stdio::null());
    let run: Run = cmd.output().unwrap().into();
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .collect();
    assert_eq!(errors.len(), 1, "{name}: {}", run.stderr);
    assert_eq!(run.code, Some(1), "{name}: {}", run.stderr);
    for needle in needles {
        assert!(
            errors[0].contains(needle),
            "{name}: no {needle:?} in {}",
            errors[0]
        );
    }
    let left: Vec<_> = std::fs::read_dir(&parent)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{name}: left behind {left:?}");
}

#[test]
fn bad_disk_formats_and_architectures_are_refused_before_any_download() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    refused(
        dir,
        "unknown-format",
        &format!("{RECIPE}formats = [\"raw\", \"vdi\"]\n"),
        &[],
        &[
            "disk.formats: \"vdi\" is not a disk format",
            "vhd, vhdx, vmdk, gce",
        ],
    );
    refused(
        dir,
        "both-keys",
        &format!("{RECIPE}qcow2 = true\nformats = [\"raw\"]\n"),
        &[],
        &["use only disk.formats"],
    );
    if can_hide() {
        refused(
            dir,
            "missing-tools",
            &format!("{RECIPE}formats = [\"raw\", \"vhd\", \"gce\"]\n"),
            &["qemu-img", "tar"],
            &[
                "disk.formats: missing on this host",
                "qemu-img (package qemu-utils, for vhd)",
                "tar (package tar, for gce)",
            ],
        );
        refused(
            dir,
            "verity-without-veritysetup",
            &format!("{RECIPE}verity = true\n"),
            &["veritysetup"],
            &[
                "disk.verity: veritysetup (package cryptsetup-bin) is missing",
                "disk.verity = false",
            ],
        );
    } else {
        eprintln!("missing-tools cases skipped: no user and mount namespaces (unshare -rm)");
    }
    if can_hide() {
        refused(
            dir,
            "arm64-without-qemu-user",
            &RECIPE.replace("[\"amd64\"]", "[\"amd64\", \"arm64\"]"),
            &["/proc/sys/fs/binfmt_misc"],
            &[
                "disk image for arm64",
                "binfmt_misc",
                "qemu-user-static",
                "--arch amd64",
            ],
        );
    }
    refused(
        dir,
        "own-usrhash",
        &format!("{RECIPE}verity = true\ncmdline = [\"usrhash=00\"]\n"),
        &[],
        &["disk.cmdline: \"usrhash=00\" is set by kiln"],
    );
}
