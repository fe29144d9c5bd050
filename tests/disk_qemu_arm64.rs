//! End to end for arm64 on this amd64 machine: `kiln build --arch arm64` of images/debian-12.toml
//! (offline: the arm64 part of the local Debian mirror .ci/setup makes, the Debian root built by
//! mmdebstrap under qemu-user through binfmt_misc; a stand-in Kubernetes release for arm64 with
//! the stand-in kubeadm — not the real kubeadm — cross-built here, like kiln-firstboot, for
//! aarch64-unknown-linux-gnu with Debian's gcc-aarch64-linux-gnu). The disk has arm64's partition
//! types (/usr with its dm-verity hash partition) and systemd-boot at EFI/BOOT/BOOTAA64.EFI, the
//! PXE artifacts are arm64's, and QEMU
//! (`qemu-system-aarch64 -M virt -cpu max`, TCG, AAVMF) boots the disk to kiln-firstboot's
//! result: provisioned from a NoCloud seed, the stand-in kubeadm run with a join. The guest's
//! only network is user networking with `restrict=on` and one forward to a server on 127.0.0.1.
//! Slow (one arm64 root under emulation, one emulated boot), so once in the suite.

mod disk;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use disk::{Boot, GuestBins, Vm};

const TARGET: &str = "aarch64-unknown-linux-gnu";
/// An emulated arm64 guest on TCG boots several times slower than the amd64 one.
const BOOT_TIMEOUT: Duration = Duration::from_secs(1500);
const USR_ARM64: &str = "B0E01050-EE5F-4390-949A-9101B17104E9";
const USR_VERITY_ARM64: &str = "6E11A4E7-FBCA-4DED-B9E9-E1A512BB664E";
const ROOT_ARM64: &str = "B921B045-1DF0-41C3-AF44-4C6F280D3FAE";

/// kiln-firstboot and the stand-in kubeadm for aarch64, built by cargo with Debian's cross
/// linker into target directories of their own (the one running this test is locked). The
/// stand-in kubeadm is static, as the real kubeadm is: kiln runs it here under qemu-user to ask
/// for its images, where no arm64 C library is installed.
fn aarch64_bins() -> GuestBins {
    let started = Instant::now();
    let bins = GuestBins {
        firstboot: cross_build("kiln-firstboot", "kiln-firstboot", false),
        kubeadm: cross_build("kiln-standins", "kubeadm", true),
    };
    eprintln!(
        "aarch64 kiln-firstboot and stand-in kubeadm: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    bins
}

/// Builds `bin` of `package` for [`TARGET`], statically linked if `static_crt`; its path.
fn cross_build(package: &str, bin: &str, static_crt: bool) -> PathBuf {
    let name = if static_crt {
        "aarch64-static"
    } else {
        "aarch64"
    };
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--locked", "-p", package, "--bin", bin])
        .args(["--target", TARGET, "--target-dir"])
        .arg(&target_dir)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env(
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER",
            "aarch64-linux-gnu-gcc",
        )
        .env("CC_aarch64_unknown_linux_gnu", "aarch64-linux-gnu-gcc")
        .env("AR_aarch64_unknown_linux_gnu", "aarch64-linux-gnu-ar")
        .env("CARGO_PROFILE_DEV_DEBUG", "0")
        .env("CARGO_PROFILE_DEV_STRIP", "symbols");
    if static_crt {
        cmd.env(
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
            "-C target-feature=+crt-static",
        );
    }
    let status = cmd.status().expect("running cargo");
    assert!(
        status.success(),
        "cross-building {bin} for {TARGET} failed (run .ci/setup: gcc-aarch64-linux-gnu; rustup target add {TARGET})"
    );
    target_dir.join(TARGET).join("debug").join(bin)
}

fn node_toml_cloud_config() -> String {
    "#cloud-config\nwrite_files:\n- path: /etc/kiln/node.toml\n  permissions: '0600'\n  content: |\n    role = \"join\"\n    control_plane_endpoint = \"10.0.2.100:6443\"\n    token = \"abcdef.0123456789abcdef\"\n    ca_cert_hashes = [\"sha256:0d8b5ae2c8e15c4f1f4cb2df04c4b0b2c1b1a4f6f0b6b0f0d1c9b1e0c3a5d7e9\"]\n    node_name = \"arm-1\"\n".into()
}

/// The partitions of `raw` as sfdisk reads them: (type GUID, start sector).
fn partitions(raw: &Path) -> Vec<(String, u64)> {
    disk::partition_table(raw)["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let kind = p["type"].as_str().unwrap().to_uppercase();
            (kind, p["start"].as_u64().unwrap())
        })
        .collect()
}

/// The disk's GPT types (with /usr's dm-verity hash partition) and ESP are arm64's; the PXE
/// kernel is an arm64 Linux image, its command line has the /usr root hash manifest.json
/// records for arm64, which is returned.
fn check_arm64_disk(out: &Path) -> (PathBuf, String) {
    let raw = out.join("disk-arm64.raw");
    let parts = partitions(&raw);
    let types: Vec<&str> = parts.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
            USR_ARM64,
            USR_VERITY_ARM64,
            ROOT_ARM64
        ],
        "partition types"
    );
    let esp = format!("{}@@{}", raw.display(), parts[0].1 * 512);
    let o = Command::new("mdir")
        .args(["-b", "-i", &esp, "::/EFI/BOOT"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(listing.contains("BOOTAA64.EFI"), "ESP EFI/BOOT: {listing}");
    let kernel = std::fs::read(out.join("pxe-arm64/vmlinuz")).unwrap();
    // arm64 Linux image header: "ARM\x64" at offset 56.
    assert_eq!(
        &kernel[56..60],
        b"ARM\x64",
        "pxe-arm64/vmlinuz is not an arm64 kernel"
    );
    let cmdline = std::fs::read_to_string(out.join("pxe-arm64/cmdline")).unwrap();
    assert!(cmdline.contains("console=ttyAMA0,115200"), "{cmdline}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let usrhash = manifest["usr_root_hashes"]["arm64"]
        .as_str()
        .unwrap_or_else(|| panic!("no arm64 usr_root_hashes in manifest.json: {manifest}"))
        .to_owned();
    assert!(
        cmdline
            .split_whitespace()
            .any(|a| a == format!("usrhash={usrhash}")),
        "{cmdline}"
    );
    (raw, usrhash)
}

#[test]
fn arm64_disk_image_builds_here_and_boots_under_qemu_system_aarch64() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let recipe = std::fs::read_to_string(disk::RECIPE).unwrap();
    let sources = disk::Sources::start_for(dir, &recipe, "arm64", Some(aarch64_bins()));
    let out = dir.join("out");
    let started = Instant::now();
    let (ok, _, stderr) = sources.build("debian-12", &recipe, &dir.join("cache"), &out);
    assert!(ok, "kiln build --arch arm64 failed:\n{stderr}");
    eprintln!(
        "kiln build --arch arm64: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "SHA256SUMS",
            "disk-arm64.qcow2",
            "disk-arm64.raw",
            "manifest.json",
            "pxe-arm64"
        ]
    );
    for name in ["vmlinuz", "initrd", "cmdline", "boot.ipxe"] {
        assert!(
            out.join("pxe-arm64").join(name).is_file(),
            "pxe-arm64/{name}"
        );
    }
    let (raw, usrhash) = check_arm64_disk(&out);

    let (mut readyz, api_port) = disk::readyz_server(dir);
    let seed = disk::seed_iso(dir, &node_toml_cloud_config());
    let node = dir.join("arm64.qcow2");
    disk::overlay(&raw, &node, "4G");
    let seed_drive = vec![
        "-drive".into(),
        format!("file={},format=raw,if=virtio,readonly=on", seed.display()),
    ];
    let mut vm = Vm::start(
        dir,
        "arm64",
        &node,
        Boot::UefiArm64,
        &[(6443, api_port)],
        &seed_drive,
    );
    let secs = vm.wait_for("KILN-TEST end", BOOT_TIMEOUT);
    eprintln!("arm64 first boot to kiln-firstboot's result: {secs:.0} s");
    let report = vm.report();
    let all = report.join("\n");
    let has = |p: &str| report.iter().any(|l| l.starts_with(p));
    assert!(
        has("firstboot ") && all.contains("Result=success"),
        "kiln-firstboot did not succeed: {all}"
    );
    assert!(has("done yes"), "{all}");
    assert!(has("containerd active"), "{all}");
    assert!(
        report
            .iter()
            .any(|l| l.starts_with("images ") && l.contains("registry.k8s.io/pause:")),
        "the baked arm64 images were not imported: {all}"
    );
    assert!(has("sentinel success"), "{all}");
    assert!(has("kubeadm-calls 1") && has("record: - join"), "{all}");
    assert!(
        report
            .iter()
            .any(|l| l.starts_with("usr erofs") && l.contains(" ro")),
        "/usr is not the read-only image: {all}"
    );
    disk::assert_usr_verity(&report, &usrhash, "arm64 first boot");
    // Killed, not powered down: nothing boots this disk again (a power-down request through
    // QMP is not answered on `virt` here, and waiting for it would cost 90 s).
    drop(vm);
    let _ = readyz.kill();
    let _ = readyz.wait();
}
