//! End to end: `kiln build` makes a bootable image from images/debian-12.toml (offline: Debian
//! packages from the local mirror .ci/setup makes, a stand-in Kubernetes release with the
//! stand-in kubeadm — not the real kubeadm — on 127.0.0.1, kubeadm's images as small stand-ins
//! in a local registry, and a test overlay); QEMU (TCG, OVMF) boots it and the serial console shows kiln-firstboot provisioning
//! the node from (1) a NoCloud seed ISO, once only across two boots, (2) Ignition in fw_cfg,
//! (3) `kiln.userdata=URL` on a PXE-style kernel command line. The guest's only network is user
//! networking with `restrict=on` and forwards to the test's servers on 127.0.0.1.
//!
//! The recipe asks for every disk format: each is checked with `qemu-img check`/`info` (and
//! compared with the raw disk), the GCE tar with `tar -tvf`; the Ignition boot runs from the
//! stream-optimized VMDK and the PXE boot from the fixed VHD; `--report` is checked.
//!
//! dm-verity (on in the shipped recipe): every boot has /usr on `/dev/mapper/usr`, a verity
//! volume with the root hash of the report on the kernel command line; a copy of the disk with
//! one byte of the /usr partition changed does not come up (the kernel reports the corrupted
//! block, the initrd stops). The build signs /usr's root hash with a test RSA key
//! (`--signing-key`): the `usr-verity-sig` partition holds systemd's JSON with that root hash and
//! a PKCS#7 signature openssl verifies with the test certificate, with systemd's partition type
//! (systemd-dissect 252 cannot list this host's disk: it needs device-mapper for /usr's
//! metadata). A second cold build (its own cache, the same key, raw and qcow2 only) gives
//! the same disk.raw and disk.qcow2 bytes (`cmp`).

mod disk;
mod support;

use std::path::Path;

use base64::Engine as _;
use std::process::Command;
use std::time::Duration;

use disk::{Boot, Vm};

const TOKEN: &str = "abcdef.0123456789abcdef";
const CA_HASH: &str = "sha256:0d8b5ae2c8e15c4f1f4cb2df04c4b0b2c1b1a4f6f0b6b0f0d1c9b1e0c3a5d7e9";
const BOOT_TIMEOUT: Duration = Duration::from_secs(420);

fn node_toml() -> String {
    format!(
        "role = \"join\"\ncontrol_plane_endpoint = \"10.0.2.100:6443\"\ntoken = \"{TOKEN}\"\nca_cert_hashes = [\"{CA_HASH}\"]\nnode_name = \"worker-1\"\n"
    )
}

fn cloud_config() -> String {
    let indented: String = node_toml().lines().map(|l| format!("    {l}\n")).collect();
    format!("#cloud-config\nwrite_files:\n- path: /etc/kiln/node.toml\n  permissions: '0600'\n  content: |\n{indented}")
}

fn ignition() -> String {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(node_toml());
    serde_json::json!({"ignition": {"version": "3.3.0"}, "storage": {"files": [
        {"path": "/etc/kiln/node.toml", "mode": 384, "contents": {"source": format!("data:;base64,{data}")}}]}})
    .to_string()
}

/// The Kubernetes release the shipped disk recipe bakes.
fn recipe_version() -> String {
    let recipe: toml::Value =
        toml::from_str(&std::fs::read_to_string(disk::RECIPE).unwrap()).unwrap();
    recipe["kubernetes_version"].as_str().unwrap().to_owned()
}

/// The report lines of a provisioned first boot: the images the baked manifest lists (name@digest)
/// were in containerd's store, complete and unpacked, without an import at boot or a containerd
/// restart; /usr verified with the root hash `usrhash`.
fn assert_provisioned(vm: &Vm, how: &str, usrhash: &str) {
    let report = vm.report();
    let has = |p: &str| report.iter().any(|l| l.starts_with(p));
    let all = report.join("\n");
    disk::assert_usr_verity(&report, usrhash, how);
    assert!(has("veritysetup-usr active"), "{how}: {all}");
    assert!(has("boots 1"), "{how}: {all}");
    assert!(
        has("done yes"),
        "{how}: sentinel /var/lib/kiln/done missing: {all}"
    );
    assert!(has("sentinel success"), "{how}: {all}");
    assert!(has("containerd active"), "{how}: {all}");
    let images = report
        .iter()
        .find(|l| l.starts_with("images "))
        .cloned()
        .unwrap_or_default();
    let kube_proxy = format!("registry.k8s.io/kube-proxy:{} ", recipe_version());
    for image in [
        "registry.k8s.io/pause:3.10",
        &kube_proxy,
        "registry.k8s.io/etcd:",
        "registry.k8s.io/coredns/coredns:",
    ] {
        assert!(
            images.contains(image),
            "{how}: baked image {image} not imported: {all}"
        );
    }
    let digests = report
        .iter()
        .find(|l| l.starts_with("image-digests "))
        .cloned()
        .unwrap_or_default();
    let baked: Vec<&str> = report
        .iter()
        .find_map(|l| l.strip_prefix("baked "))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert!(
        baked.len() >= 5,
        "{how}: the manifest lists no images: {all}"
    );
    for image in baked {
        assert!(
            digests.contains(&format!("{image} ")),
            "{how}: {image} not in containerd's store (complete, unpacked): {all}"
        );
    }
    assert!(
        has("imported-at-boot 0"),
        "{how}: images imported at boot: {all}"
    );
    assert!(
        has("containerd-starts 1"),
        "{how}: containerd restarted: {all}"
    );
    assert!(
        has("sandbox-image registry.k8s.io/pause:3.10"),
        "{how}: {all}"
    );
    assert!(has("kubeadm-calls 1"), "{how}: {all}");
    assert!(
        has("record: - join"),
        "{how}: stand-in kubeadm not invoked with join: {all}"
    );
    assert!(
        has("record:   kind: JoinConfiguration"),
        "{how}: no rendered JoinConfiguration: {all}"
    );
    assert!(
        all.contains("apiServerEndpoint: 10.0.2.100:6443"),
        "{how}: {all}"
    );
    assert!(
        all.contains("value: /opt/libexec/kubernetes/kubelet-plugins/volume/exec/"),
        "{how}: kiln-firstboot did not notice the read-only /usr: {all}"
    );
    assert!(
        report
            .iter()
            .any(|l| l.starts_with("usr erofs") && l.contains(" ro")),
        "{how}: /usr is not the read-only image: {all}"
    );
    let id = report
        .iter()
        .find_map(|l| l.strip_prefix("machine-id "))
        .unwrap_or("");
    assert_eq!(id.len(), 32, "{how}: machine-id not generated: {all}");
}

#[test]
fn disk_image_boots_and_provisions_once_from_nocloud_ignition_and_pxe() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let recipe = std::fs::read_to_string(disk::RECIPE).unwrap();
    let sources = disk::Sources::start(dir, &recipe);
    let out = dir.join("out");
    let all = recipe.replace(
        "formats = [\"raw\", \"qcow2\"]",
        "formats = [\"raw\", \"qcow2\", \"vhd\", \"vhdx\", \"vmdk\", \"gce\"]",
    );
    assert_ne!(all, recipe, "the recipe's disk.formats line changed");
    let report = dir.join("report.json");
    let keys = disk::signing_args(dir);
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let (ok, _, stderr) = sources.build_with(
        "debian-12",
        &all,
        &dir.join("cache"),
        &out,
        &[&["--report", report.to_str().unwrap()], keys.as_slice()].concat(),
    );
    assert!(ok, "kiln build failed:\n{stderr}");
    let raw = out.join("disk.raw");
    assert!(out.join("disk.qcow2").is_file() && out.join("pxe/boot.ipxe").is_file());
    check_formats(&out);
    let usrhash = check_report(&out, &report);
    check_usr_signature(dir, &raw, &usrhash);
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
            "disk-gce.tar.gz",
            "disk.qcow2",
            "disk.raw",
            "disk.vhd",
            "disk.vhdx",
            "disk.vmdk",
            "manifest.json",
            "pxe"
        ],
        "unexpected entries in the output"
    );
    let (mut readyz, api_port) = disk::readyz_server(dir);

    // (1) NoCloud seed ISO; the disk is 6G, larger than the image: the root grows.
    let iso = disk::seed_iso(dir, &cloud_config());
    let node = dir.join("nocloud.qcow2");
    disk::overlay(&raw, &node, "6G");
    let cdrom = vec![
        "-drive".into(),
        format!("file={},media=cdrom,readonly=on", iso.display()),
    ];
    let mut vm = Vm::start(
        dir,
        "nocloud-1",
        &node,
        Boot::Uefi,
        &[(6443, api_port)],
        &cdrom,
    );
    vm.wait_for("running kubeadm", BOOT_TIMEOUT);
    vm.wait_for("KILN-TEST end", BOOT_TIMEOUT);
    assert_provisioned(&vm, "NoCloud first boot", &usrhash);
    let grown: u64 = vm
        .report()
        .iter()
        .find_map(|l| l.strip_prefix("root-mib ")?.parse().ok())
        .unwrap_or(0);
    assert!(
        grown > 4000,
        "root did not grow to the 6G disk: {grown} MiB"
    );
    vm.shutdown();

    // Second boot of the same disk: nothing provisions again.
    let mut vm = Vm::start(
        dir,
        "nocloud-2",
        &node,
        Boot::Uefi,
        &[(6443, api_port)],
        &cdrom,
    );
    vm.wait_for("KILN-TEST end", BOOT_TIMEOUT);
    let report = vm.report().join("\n");
    assert!(report.contains("boots 2"), "{report}");
    assert!(
        report.contains("kubeadm-calls 1"),
        "provisioned twice: {report}"
    );
    assert!(
        report.contains("ConditionResult=no"),
        "kiln-firstboot ran again: {report}"
    );
    assert!(
        !vm.console().contains("running kubeadm"),
        "kubeadm ran on the second boot"
    );
    vm.shutdown();

    // (2) Ignition through QEMU fw_cfg, from the stream-optimized VMDK.
    let ign = dir.join("config.ign");
    std::fs::write(&ign, ignition()).unwrap();
    let node = dir.join("ignition.qcow2");
    disk::overlay_of(&out.join("disk.vmdk"), "vmdk", &node, "3G");
    let fwcfg = vec![
        "-fw_cfg".into(),
        format!("name=opt/com.coreos/config,file={}", ign.display()),
    ];
    let mut vm = Vm::start(
        dir,
        "ignition",
        &node,
        Boot::Uefi,
        &[(6443, api_port)],
        &fwcfg,
    );
    vm.wait_for("KILN-TEST end", BOOT_TIMEOUT);
    assert_provisioned(&vm, "Ignition (fw_cfg)", &usrhash);
    vm.shutdown();

    // (3) PXE: kernel, initrd and command line from the PXE artifacts, user-data over HTTP; the
    // disk is the fixed VHD.
    let http_port = disk::http_server(cloud_config());
    let node = dir.join("pxe.qcow2");
    disk::overlay_of(&out.join("disk.vhd"), "vpc", &node, "3G");
    let cmdline = std::fs::read_to_string(out.join("pxe/cmdline")).unwrap();
    let boot = Boot::Kernel {
        kernel: &out.join("pxe/vmlinuz"),
        initrd: &out.join("pxe/initrd"),
        append: format!(
            "{} kiln.userdata=http://10.0.2.100:8080/user-data",
            cmdline.trim()
        ),
    };
    let mut vm = Vm::start(
        dir,
        "pxe",
        &node,
        boot,
        &[(6443, api_port), (8080, http_port)],
        &[],
    );
    vm.wait_for("KILN-TEST end", BOOT_TIMEOUT);
    assert_provisioned(&vm, "PXE kiln.userdata=URL", &usrhash);
    vm.shutdown();
    let _ = readyz.kill();
    let _ = readyz.wait();

    rebuild_is_identical(&sources, &recipe, dir, &out, &keys);
    tampered_usr_does_not_come_up(dir, &raw);
}

/// The byte offset and size of the partition named `name` in the GPT disk `raw` (`sfdisk
/// --json`).
fn partition_extent(raw: &Path, name: &str) -> (u64, u64) {
    let table = disk::partition_table(raw);
    let sector = table["sectorsize"].as_u64().unwrap_or(512);
    let part = table["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no partition {name}: {table}"));
    (
        part["start"].as_u64().unwrap() * sector,
        part["size"].as_u64().unwrap() * sector,
    )
}

fn partition_offset(raw: &Path, name: &str) -> u64 {
    partition_extent(raw, name).0
}

/// The `usr-verity-sig` partition: systemd's JSON naming `usrhash` and the test certificate,
/// whose PKCS#7 openssl verifies over the root hash (and not over another), with the type
/// systemd-id128 names `usr-x86-64-verity-sig`.
fn check_usr_signature(dir: &Path, raw: &Path, usrhash: &str) {
    use std::io::{Read as _, Seek as _};
    let (offset, size) = partition_extent(raw, "usr-verity-sig");
    let mut part = vec![0u8; size as usize];
    let mut file = std::fs::File::open(raw).unwrap();
    file.seek(std::io::SeekFrom::Start(offset)).unwrap();
    file.read_exact(&mut part).unwrap();
    let json = part.split(|&b| b == 0).next().unwrap();
    let sig: serde_json::Value = serde_json::from_slice(json).unwrap();
    assert_eq!(sig["rootHash"], usrhash);
    let fingerprint = support::cert_sha256(&dir.join("signer.crt"));
    assert_eq!(sig["certificateFingerprint"], fingerprint.as_str());
    let der = base64::engine::general_purpose::STANDARD
        .decode(sig["signature"].as_str().unwrap())
        .unwrap();
    std::fs::write(dir.join("usr-sig.der"), der).unwrap();
    let verifies = |content: &str| {
        std::fs::write(dir.join("usr-roothash"), content).unwrap();
        let (sig, roothash) = (dir.join("usr-sig.der"), dir.join("usr-roothash"));
        support::pkcs7_verifies(&sig, &roothash, &dir.join("signer.crt"))
    };
    assert!(verifies(usrhash), "the /usr signature does not verify");
    assert!(
        !verifies(&"0".repeat(64)),
        "the /usr signature verifies anything"
    );
    let table = disk::partition_table(raw);
    let kind = table["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "usr-verity-sig")
        .map(|p| p["type"].as_str().unwrap().replace('-', "").to_lowercase());
    let id128 = Command::new("systemd-id128")
        .args(["show", "usr-x86-64-verity-sig"])
        .output()
        .unwrap();
    let id128 = String::from_utf8_lossy(&id128.stdout);
    let expected = id128
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(1));
    assert_eq!(kind.as_deref(), expected, "the signature partition's type");
}

/// A copy of the disk with one byte of /usr changed (in the erofs superblock, which mounting
/// reads): the kernel's dm-verity reports the block corrupted, the initrd stops (initramfs-tools'
/// panic shell) with kiln's message before /usr is mounted; the node never comes up.
fn tampered_usr_does_not_come_up(dir: &Path, raw: &Path) {
    let tampered = dir.join("tampered.raw");
    let cp = Command::new("cp")
        .arg("--sparse=always")
        .arg(raw)
        .arg(&tampered)
        .status()
        .unwrap();
    assert!(cp.success());
    let at = partition_offset(&tampered, "usr") + 1024;
    {
        use std::io::{Read, Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&tampered)
            .unwrap();
        let mut byte = [0u8; 1];
        f.seek(SeekFrom::Start(at)).unwrap();
        f.read_exact(&mut byte).unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&[byte[0] ^ 0xff]).unwrap();
    }
    let node = dir.join("tampered.qcow2");
    disk::overlay(&tampered, &node, "3G");
    let mut vm = Vm::start(dir, "tampered", &node, Boot::Uefi, &[], &[]);
    vm.wait_for(
        "kiln: /usr fails dm-verity verification",
        Duration::from_secs(300),
    );
    let console = vm.console();
    assert!(
        console.contains("device-mapper: verity:") && console.contains("data block 0 is corrupted"),
        "dm-verity did not report the changed block:\n{console}"
    );
    assert!(
        !console.contains("KILN-TEST"),
        "the node came up with a changed /usr"
    );
    drop(vm);
    std::fs::remove_file(&tampered).unwrap();
}

/// A second cold build of the same recipe (its own cache; raw and qcow2 only, the conversions to
/// other formats are checked above) gives the same disk.raw and disk.qcow2 bytes.
fn rebuild_is_identical(
    sources: &disk::Sources,
    recipe: &str,
    dir: &Path,
    out: &Path,
    keys: &[&str],
) {
    let again = dir.join("again");
    let cache = dir.join("cache-2");
    let (ok, _, stderr) = sources.build_with("debian-12-again", recipe, &cache, &again, keys);
    assert!(ok, "second kiln build failed:\n{stderr}");
    for file in ["disk.raw", "disk.qcow2"] {
        let cmp = Command::new("cmp")
            .arg(out.join(file))
            .arg(again.join(file))
            .output()
            .unwrap();
        assert!(
            cmp.status.success(),
            "two cold builds gave different {file}: {}",
            String::from_utf8_lossy(&cmp.stdout)
        );
    }
    let cmdline = |d: &Path| std::fs::read_to_string(d.join("pxe/cmdline")).unwrap();
    assert_eq!(cmdline(out), cmdline(&again), "pxe/cmdline differs");
}

/// `qemu-img info --output=json -f FORMAT FILE`.
fn qemu_img_info(file: &Path, format: &str) -> serde_json::Value {
    let o = Command::new("qemu-img")
        .args(["info", "--output=json", "-f", format])
        .arg(file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Every disk format: qemu-img's view of it, the same contents as disk.raw, the VHD's fixed
/// footer and whole-MiB size, the VMDK's subformat, the GCE tar's one member and GNU format.
fn check_formats(out: &Path) {
    let raw = out.join("disk.raw");
    let raw_size = std::fs::metadata(&raw).unwrap().len();
    for (file, format) in [
        ("disk.qcow2", "qcow2"),
        ("disk.vhd", "vpc"),
        ("disk.vhdx", "vhdx"),
        ("disk.vmdk", "vmdk"),
    ] {
        let path = out.join(file);
        let check = Command::new("qemu-img")
            .args(["check", "-f", format])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&check.stderr);
        // qemu-img has no consistency check for vpc (exit status 63 says so).
        let unsupported = format == "vpc" && text.contains("does not support checks");
        assert!(check.status.success() || unsupported, "{file}: {text}");
        let info = qemu_img_info(&path, format);
        assert_eq!(info["format"], format, "{file}: {info}");
        let size = info["virtual-size"].as_u64().unwrap();
        assert!(size >= raw_size, "{file}: virtual size {size} < {raw_size}");
        let compare = Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", format])
            .arg(&raw)
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            compare.status.success(),
            "{file} differs from disk.raw: {}",
            String::from_utf8_lossy(&compare.stdout)
        );
    }
    let vhd = out.join("disk.vhd");
    let size = qemu_img_info(&vhd, "vpc")["virtual-size"].as_u64().unwrap();
    assert_eq!(
        size % (1 << 20),
        0,
        "VHD virtual size {size} is not whole MiB"
    );
    let len = std::fs::metadata(&vhd).unwrap().len();
    assert_eq!(
        len,
        size + 512,
        "a fixed VHD is its data and a 512-byte footer"
    );
    let footer = {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&vhd).unwrap();
        f.seek(SeekFrom::End(-512)).unwrap();
        let mut footer = [0u8; 512];
        f.read_exact(&mut footer).unwrap();
        footer
    };
    assert_eq!(&footer[..8], b"conectix");
    assert_eq!(
        u32::from_be_bytes(footer[60..64].try_into().unwrap()),
        2,
        "disk type fixed"
    );
    assert_eq!(u64::from_be_bytes(footer[48..56].try_into().unwrap()), size);
    let vmdk = qemu_img_info(&out.join("disk.vmdk"), "vmdk");
    assert_eq!(
        vmdk["format-specific"]["data"]["create-type"], "streamOptimized",
        "{vmdk}"
    );

    let gce = out.join("disk-gce.tar.gz");
    let list = Command::new("tar").arg("-tvf").arg(&gce).output().unwrap();
    assert!(list.status.success());
    let list = String::from_utf8_lossy(&list.stdout);
    let members: Vec<&str> = list.lines().collect();
    assert_eq!(members.len(), 1, "{list}");
    assert!(members[0].ends_with(" disk.raw"), "{list}");
    assert!(members[0].contains(&raw_size.to_string()), "{list}");
    let mut header = [0u8; 512];
    let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(&gce).unwrap());
    std::io::Read::read_exact(&mut gz, &mut header).unwrap();
    assert_eq!(&header[257..265], b"ustar  \0", "not a GNU tar header");
    assert_eq!(&header[..9], b"disk.raw\0");
    // 'S': a GNU sparse member.
    assert_eq!(header[156], b'S', "disk.raw is not stored sparse");
}

/// The `--report` file: its keys, every output listed with the digest SHA256SUMS gives, and the
/// /usr root hash (as in manifest.json and on the PXE command line), which it returns.
fn check_report(out: &Path, report: &Path) -> String {
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "architectures",
            "images",
            "kiln_version",
            "kubernetes_version",
            "name",
            "out",
            "outputs",
            "phases",
            "report_version",
            "signing_certificate_sha256",
            "usr_root_hash"
        ]
    );
    assert_eq!(value["report_version"], 1);
    assert_eq!(value["kubernetes_version"], recipe_version());
    let usrhash = value["usr_root_hash"].as_str().unwrap().to_owned();
    assert!(
        usrhash.len() == 64 && usrhash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{usrhash}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["usr_root_hash"], usrhash.as_str());
    assert_eq!(manifest["usr_root_hashes"]["amd64"], usrhash.as_str());
    let pxe = std::fs::read_to_string(out.join("pxe/cmdline")).unwrap();
    assert!(
        pxe.split_whitespace()
            .any(|a| a == format!("usrhash={usrhash}")),
        "pxe/cmdline: {pxe}"
    );
    let from = value["images"]["kubeadm_list_from"].as_str().unwrap();
    assert!(["kubeadm", "table"].contains(&from), "{from}");
    assert!(!value["images"]["kubeadm_list"]
        .as_array()
        .unwrap()
        .is_empty());
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    let outputs = value["outputs"].as_array().unwrap();
    for (file, format) in [
        ("disk.raw", "raw"),
        ("disk.qcow2", "qcow2"),
        ("disk.vhd", "vhd"),
        ("disk.vhdx", "vhdx"),
        ("disk.vmdk", "vmdk"),
        ("disk-gce.tar.gz", "gce"),
    ] {
        let o = outputs
            .iter()
            .find(|o| o["path"] == file)
            .unwrap_or_else(|| panic!("{file} not in the report"));
        assert_eq!(o["format"], format);
        assert_eq!(o["architecture"], "amd64");
        assert_eq!(o["size"], std::fs::metadata(out.join(file)).unwrap().len());
        let line = format!("{}  {file}", o["sha256"].as_str().unwrap());
        assert!(
            sums.lines().any(|l| l == line),
            "{file}: {line} not in SHA256SUMS"
        );
    }
    assert!(outputs.iter().any(|o| o["path"] == "pxe/vmlinuz"));
    let phases: Vec<&str> = value["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for phase in [
        "download",
        "Debian root (mmdebstrap)",
        "dm-verity hash tree (/usr)",
        "GPT disk (systemd-repart)",
        "convert vhd",
        "convert gce",
    ] {
        assert!(phases.contains(&phase), "no phase {phase}: {phases:?}");
    }
    usrhash
}

#[test]
fn bad_recipes_fail_early_and_leave_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let recipe = std::fs::read_to_string(disk::RECIPE).unwrap();
    let sources = disk::Sources::start(dir, &recipe);
    let cases = [
        (
            "no-such-package",
            recipe.replace("\"socat\",", "\"socat\", \"kiln-no-such-package\","),
            "kiln-no-such-package",
        ),
        (
            "small-disk",
            recipe.replace("size = \"3G\"", "size = \"300M\""),
            "disk.size",
        ),
        (
            "no-boot-loader",
            recipe.replace("\"systemd-boot-efi\",", ""),
            "systemd-boot-efi",
        ),
    ];
    for (name, text, expect) in cases {
        let out = dir.join(name).join("out");
        let start = std::time::Instant::now();
        let (ok, _, stderr) = sources.build(name, &text, &dir.join("cache"), &out);
        assert!(!ok, "{name}: build succeeded");
        let error = stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default();
        assert!(
            error.contains(expect),
            "{name}: error line does not name {expect}: {stderr}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{name}: failed late"
        );
        let left: Vec<_> = std::fs::read_dir(&out)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{name}: output left behind: {left:?}");
    }
}
