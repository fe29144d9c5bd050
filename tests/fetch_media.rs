//! `kiln-firstboot fetch` from local evidence: real NoCloud and config drive images (ISO 9660
//! with Joliet or Rock Ridge names, vfat) on loop devices found by label, the NoCloud seed
//! directory, QEMU fw_cfg files, and URLs on the kernel command line. Every run also gets
//! `--metadata-url` on a closed loopback port so a detection bug can never probe the host's
//! link-local network.

mod support_fetch;

use std::net::TcpListener;

use support_fetch::server::{Fault, Resp, Server};
use support_fetch::{firstboot, make_iso, make_vfat, mounts, Loop, Run, SysRoot};

const USER_DATA: &[u8] = b"#cloud-config\nwrite_files: [{path: /etc/kiln, content: s3cr3t}]\n";
const META: &[u8] = b"instance-id: iid-local-01\nlocal-hostname: node-7\n";
const NET: &[u8] = b"version: 2\nethernets: {eth0: {dhcp4: true}}\n";
const OS_META: &[u8] = br#"{"uuid": "5d9b1b5e-1bb4-4a4c-9f8b-1a4e0c2d5e11", "hostname": "node-8", "availability_zone": "nova"}"#;

/// `fetch --sys-root ROOT --out OUT EXTRA...` with the loopback-only metadata URL.
fn fetch(root: &SysRoot, out: &std::path::Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "fetch",
        "--sys-root",
        root.path(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(["--metadata-url", "http://127.0.0.1:9", "--timeout", "5"]);
    args.extend_from_slice(extra);
    firstboot(None, &args)
}

fn metadata(out: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("metadata.json")).unwrap()).unwrap()
}

fn nocloud_files() -> [(&'static str, &'static [u8]); 3] {
    [
        ("user-data", USER_DATA),
        ("meta-data", META),
        ("network-config", NET),
    ]
}

/// Fetches from a NoCloud image made by `make`, seen through `expose`; checks all three files.
fn check_nocloud(make: impl Fn(&std::path::Path), expose: impl Fn(&SysRoot, &Loop)) {
    let work = tempfile::tempdir().unwrap();
    let image = work.path().join("seed.img");
    make(&image);
    let dev = Loop::attach(&image);
    let root = SysRoot::new();
    expose(&root, &dev);
    let before = mounts();
    let run = fetch(&root, &work.path().join("out"), &[]);
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stderr.contains("datasource nocloud chosen"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("labelled cidata"), "{}", run.stderr);
    assert!(!run.stderr.contains("s3cr3t"));
    let out = work.path().join("out");
    assert_eq!(std::fs::read(out.join("user-data")).unwrap(), USER_DATA);
    assert_eq!(std::fs::read(out.join("network-config")).unwrap(), NET);
    let m = metadata(&out);
    assert_eq!(m["platform"], "nocloud");
    assert_eq!(m["cloud_name"], "nocloud");
    assert_eq!(m["instance_id"], "iid-local-01");
    assert_eq!(m["local_hostname"], "node-7");
    assert_eq!(m["meta_data"]["local-hostname"], "node-7");
    assert_eq!(mounts(), before, "something was left mounted");
}

#[test]
fn nocloud_iso_with_joliet_found_by_scanning_block_devices() {
    check_nocloud(
        |img| make_iso(img, "cidata", &nocloud_files(), true),
        |root, dev| {
            root.block_device(&dev.device);
        },
    );
}

#[test]
fn nocloud_iso_with_rock_ridge_only_found_by_udev_label_link() {
    check_nocloud(
        |img| make_iso(img, "CIDATA", &nocloud_files(), false),
        |root, dev| {
            root.by_label("CIDATA", &dev.device);
        },
    );
}

#[test]
fn nocloud_vfat_found_by_scanning_among_other_devices() {
    let work = tempfile::tempdir().unwrap();
    let other = work.path().join("other.img");
    make_vfat(&other, "DATA", &[("user-data", b"not this one")]);
    let other = Loop::attach(&other);
    check_nocloud(
        |img| make_vfat(img, "CIDATA", &nocloud_files()),
        |root, dev| {
            root.block_device(&other.device).block_device(&dev.device);
        },
    );
}

fn check_configdrive(make: impl Fn(&std::path::Path, &[(&str, &[u8])])) {
    let work = tempfile::tempdir().unwrap();
    let image = work.path().join("config-2.img");
    make(
        &image,
        &[
            ("openstack/latest/meta_data.json", OS_META),
            ("openstack/latest/user_data", USER_DATA),
        ],
    );
    let dev = Loop::attach(&image);
    let root = SysRoot::new();
    root.block_device(&dev.device);
    let out = work.path().join("out");
    let run = fetch(&root, &out, &[]);
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stderr.contains("labelled config-2"), "{}", run.stderr);
    assert_eq!(std::fs::read(out.join("user-data")).unwrap(), USER_DATA);
    let m = metadata(&out);
    assert_eq!(m["platform"], "configdrive");
    assert_eq!(m["instance_id"], "5d9b1b5e-1bb4-4a4c-9f8b-1a4e0c2d5e11");
    assert_eq!(m["availability_zone"], "nova");
}

#[test]
fn config_drive_iso() {
    check_configdrive(|img, files| make_iso(img, "config-2", files, true));
}

#[test]
fn config_drive_vfat() {
    check_configdrive(|img, files| make_vfat(img, "config-2", files));
}

#[test]
fn media_bad_input_is_one_error_line_and_leaves_nothing_mounted() {
    let work = tempfile::tempdir().unwrap();
    let before = mounts();
    // Malformed meta_data.json on a config drive.
    let bad = work.path().join("bad.iso");
    make_iso(
        &bad,
        "config-2",
        &[("openstack/latest/meta_data.json", b"{\"uuid\": ")],
        true,
    );
    let dev = Loop::attach(&bad);
    let root = SysRoot::new();
    root.block_device(&dev.device);
    let device = dev.device.file_name().unwrap().to_str().unwrap();
    fetch(&root, &work.path().join("o1"), &[]).assert_error(&[
        "configdrive",
        device,
        "meta_data.json",
        "malformed metadata",
    ]);
    // User-data over the cap on a NoCloud vfat.
    let big = vec![b'#'; 8192];
    let img = work.path().join("big.img");
    make_vfat(&img, "CIDATA", &[("meta-data", META), ("user-data", &big)]);
    let dev = Loop::attach(&img);
    let root = SysRoot::new();
    root.block_device(&dev.device);
    fetch(&root, &work.path().join("o2"), &["--max-size", "4096"]).assert_error(&[
        "nocloud",
        "user-data",
        "larger than the limit of 4096",
    ]);
    assert!(
        !work.path().join("o1").exists() && !work.path().join("o2").exists(),
        "partial output"
    );
    assert_eq!(mounts(), before);
}

/// A FAT32 image labelled CIDATA whose root directory's cluster chain points back to itself
/// (FAT[root] = root) and whose root cluster holds only deleted entries, so that looking a name
/// up reads the same cluster forever.
fn make_looping_fat32(image: &std::path::Path) {
    use std::io::{Read, Seek, SeekFrom, Write};
    std::fs::File::create(image)
        .unwrap()
        .set_len(40 << 20)
        .unwrap();
    // One sector per cluster: enough clusters for FAT32.
    let out = std::process::Command::new("mkfs.vfat")
        .args(["-F", "32", "-s", "1", "-n", "CIDATA"])
        .arg(image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .unwrap();
    let mut boot = [0u8; 512];
    f.read_exact(&mut boot).unwrap();
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([boot[o], boot[o + 1]]));
    let u32_at = |o: usize| u64::from(u32::from_le_bytes(boot[o..o + 4].try_into().unwrap()));
    let (sector, per_cluster, reserved, fats) = (
        u16_at(11),
        u64::from(boot[13]),
        u16_at(14),
        u64::from(boot[16]),
    );
    let (fat_sectors, root) = (u32_at(36), u32_at(44));
    for n in 0..fats {
        f.seek(SeekFrom::Start(
            (reserved + n * fat_sectors) * sector + 4 * root,
        ))
        .unwrap();
        f.write_all(&(root as u32).to_le_bytes()).unwrap();
    }
    let data = (reserved + fats * fat_sectors) * sector;
    f.seek(SeekFrom::Start(data + (root - 2) * per_cluster * sector))
        .unwrap();
    let mut deleted = [0u8; 32];
    deleted[0] = 0xE5;
    for _ in 0..per_cluster * sector / 32 {
        f.write_all(&deleted).unwrap();
    }
}

#[test]
fn looping_fat_cluster_chain_is_an_error_not_a_hang() {
    let work = tempfile::tempdir().unwrap();
    let image = work.path().join("loop.img");
    make_looping_fat32(&image);
    let root = SysRoot::new();
    root.by_label("CIDATA", &image);
    let run = |extra: &[&str]| {
        let mut args = vec!["fetch", "--sys-root", root.path()];
        args.extend(["--metadata-url", "http://127.0.0.1:9"]);
        args.extend_from_slice(extra);
        let start = std::time::Instant::now();
        (firstboot(None, &args), start.elapsed())
    };
    // The read budget (16 MiB here) ends it, long before the deadline.
    let (r, took) = run(&["--timeout", "120", "--max-size", "65536"]);
    r.assert_error(&[
        "nocloud",
        "meta-data",
        "read more than 16777216 bytes",
        "cluster chain that loops",
    ]);
    assert!(took < std::time::Duration::from_secs(30), "took {took:?}");
    // With the default, larger budget the deadline comes first.
    let (r, took) = run(&["--timeout", "1"]);
    r.assert_error(&["nocloud", "meta-data", "deadline reached"]);
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
}

#[test]
fn nocloud_seed_directory() {
    let root = SysRoot::new();
    root.file("/var/lib/cloud/seed/nocloud/meta-data", META)
        .file("/var/lib/cloud/seed/nocloud/user-data", USER_DATA);
    let out = tempfile::tempdir().unwrap();
    let run = fetch(&root, out.path(), &[]);
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stderr.contains("seed directory"), "{}", run.stderr);
    assert_eq!(
        std::fs::read(out.path().join("user-data")).unwrap(),
        USER_DATA
    );
    assert_eq!(metadata(out.path())["instance_id"], "iid-local-01");
}

#[test]
fn qemu_fw_cfg_prefers_the_kiln_key() {
    let root = SysRoot::new();
    root.file(
        "/sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config/raw",
        b"{\"ignition\":{}}",
    )
    .file(
        "/sys/class/dmi/id/product_uuid",
        "ABCDEF01-0000-4000-8000-000000000002\n",
    );
    let out = tempfile::tempdir().unwrap();
    let run = fetch(&root, out.path(), &[]);
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stderr.contains("fw_cfg key opt/com.coreos/config"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(out.path().join("user-data")).unwrap(),
        b"{\"ignition\":{}}"
    );
    let m = metadata(out.path());
    assert_eq!(
        (m["platform"].as_str(), m["instance_id"].as_str()),
        (Some("fwcfg"), Some("abcdef01-0000-4000-8000-000000000002"))
    );
    root.file(
        "/sys/firmware/qemu_fw_cfg/by_name/opt/org.kiln/user-data/raw",
        USER_DATA,
    );
    assert!(fetch(&root, out.path(), &[]).ok);
    assert_eq!(
        std::fs::read(out.path().join("user-data")).unwrap(),
        USER_DATA
    );
}

#[test]
fn kernel_command_line_urls() {
    let server = Server::start(
        TcpListener::bind("127.0.0.1:0").unwrap(),
        std::sync::Arc::new(|r: &support_fetch::server::Req| match r.path.as_str() {
            "/node.yaml" | "/seed/user-data" => Resp::ok(USER_DATA),
            "/seed/meta-data" => Resp::ok(META),
            _ => Resp::status(404),
        }),
        Fault::ServerError,
        2,
    );
    let url = server.url();
    let out = tempfile::tempdir().unwrap();
    for (cmdline, platform) in [
        (format!("ro kiln.userdata={url}/node.yaml"), "cmdline"),
        (format!("ignition.config.url={url}/node.yaml quiet"), "cmdline"),
        (format!("ds=nocloud-net;s={url}/seed/"), "nocloud"),
        ("kiln.userdata=data:;base64,I2Nsb3VkLWNvbmZpZwp3cml0ZV9maWxlczogW3twYXRoOiAvZXRjL2tpbG4sIGNvbnRlbnQ6IHMzY3IzdH1dCg==".into(), "cmdline"),
    ] {
        let root = SysRoot::new();
        root.file("/proc/cmdline", &cmdline);
        let run = fetch(&root, out.path(), &[]);
        assert!(run.ok, "{cmdline}: {}", run.stderr);
        assert!(run.stderr.contains("kernel command line"), "{}", run.stderr);
        assert_eq!(std::fs::read(out.path().join("user-data")).unwrap(), USER_DATA, "{cmdline}");
        assert_eq!(metadata(out.path())["platform"], platform);
    }
}

#[test]
fn bad_names_and_schemes_are_one_error_line() {
    let root = SysRoot::new();
    let out = tempfile::tempdir().unwrap();
    fetch(&root, out.path(), &["--datasource", "nosuch"])
        .assert_error(&["unknown datasource \"nosuch\"", "--datasource"]);
    root.file("/proc/cmdline", "kiln.datasource=vmware");
    fetch(&root, out.path(), &[]).assert_error(&["unknown datasource \"vmware\""]);
    root.file("/proc/cmdline", "kiln.userdata=gopher://10.0.0.1/ud");
    fetch(&root, out.path(), &[]).assert_error(&["unsupported URL scheme", "gopher://10.0.0.1/ud"]);
    fetch(&root, out.path(), &["--datasource", "nocloud"])
        .assert_error(&["nocloud", "no medium labelled cidata"]);
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}
