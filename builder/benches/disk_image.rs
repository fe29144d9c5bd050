//! Disk image benchmark: `kiln build` of images/debian-12.toml (cold; build times against their
//! floor are bench disk_floor's), image sizes, and from VM start (QEMU TCG, OVMF) to "kubeadm invoked" (the stand-in kubeadm —
//! not the real kubeadm) and to multi-user (the serial login prompt). From the same boot (the test
//! image's report, issue #13): seconds since the kernel started to the serial getty, to
//! kiln-firstboot's start and to kubeadm invoked (guest clock), kiln-firstboot's step timings and
//! peak RSS from status.json, its binary size, images imported at boot, containerd starts; where
//! the seconds go: containerd's start, first log line and "successfully booted", kiln-firstboot's
//! and containerd's logs, systemd-analyze critical-chain and blame, the guest's CPU time.
//! `KILN_BENCH_CACHE=DIR` keeps the build cache between runs (a warm build).
//! Under TCG every figure scales with the host's load (the guest's clock runs while QEMU waits
//! for a host CPU): compare runs made at the same load (`uptime`).
//! Needs .ci/setup (local mirror, QEMU).

#[path = "../../tests/support/mod.rs"]
#[allow(missing_docs)]
mod support;

#[path = "../../tests/disk/mod.rs"]
#[allow(missing_docs)]
mod disk;

use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list of tests
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let recipe = std::fs::read_to_string(disk::RECIPE).unwrap();
    let sources = disk::Sources::start(dir, &recipe);
    // KILN_BENCH_CACHE: a cache directory kept between runs (a warm build), else a fresh one.
    let cache = std::env::var_os("KILN_BENCH_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.join("cache"));
    let start = Instant::now();
    let (ok, _, stderr) = sources.build("debian-12", &recipe, &cache, &dir.join("out"));
    assert!(ok, "{stderr}");
    println!(
        "image build (cold; cold/warm against the floor: bench disk_floor): {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let out = dir.join("out");
    let mib = |p: &Path| std::fs::metadata(p).unwrap().len() as f64 / 1048576.0;
    let allocated = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).unwrap().blocks() as f64 * 512.0 / 1048576.0
    };
    let raw = out.join("disk.raw");
    println!(
        "image size: raw {:.0} MiB ({:.0} MiB allocated), qcow2 {:.0} MiB",
        mib(&raw),
        allocated(&raw),
        mib(&out.join("disk.qcow2"))
    );
    let toml = "role = \"join\"\ncontrol_plane_endpoint = \"10.0.2.100:6443\"\ntoken = \"abcdef.0123456789abcdef\"\nca_cert_hashes = [\"sha256:0d8b5ae2c8e15c4f1f4cb2df04c4b0b2c1b1a4f6f0b6b0f0d1c9b1e0c3a5d7e9\"]\n";
    let indented: String = toml.lines().map(|l| format!("    {l}\n")).collect();
    let iso = disk::seed_iso(
        dir,
        &format!("#cloud-config\nwrite_files:\n- path: /etc/kiln/node.toml\n  permissions: '0600'\n  content: |\n{indented}"),
    );
    let (mut readyz, port) = disk::readyz_server(dir);
    let node = dir.join("node.qcow2");
    disk::overlay(&raw, &node, "3G");
    let cdrom = vec![
        "-drive".into(),
        format!("file={},media=cdrom,readonly=on", iso.display()),
    ];
    let mut vm = disk::Vm::start(
        dir,
        "bench",
        &node,
        disk::Boot::Uefi,
        &[(6443, port)],
        &cdrom,
    );
    let timeout = Duration::from_secs(420);
    // The serial getty's login prompt marks multi-user (the image boots with `quiet`); it comes
    // before kiln-firstboot reaches kubeadm, and wait_for returns when it sees the text.
    let multi_user = vm.wait_for("login:", timeout);
    let kubeadm = vm.wait_for("running kubeadm", timeout);
    vm.wait_for("KILN-TEST end", timeout);
    // systemd-analyze answers once the boot finished (the report's transient unit).
    vm.wait_for("KILN-TEST analyze-end", timeout);
    println!("VM start to kubeadm invoked: {kubeadm:.1} s (QEMU TCG)");
    println!("VM start to multi-user (login prompt): {multi_user:.1} s (QEMU TCG)");
    println!(
        "kubeadm invoked after the login prompt: {:.1} s (host clock)",
        kubeadm - multi_user
    );
    print_report(&vm.report());
    vm.shutdown();
    let _ = readyz.kill();
}

/// The first boot as the guest saw it (tests/disk/report.sh).
fn print_report(report: &[String]) {
    let line = |key: &str| {
        report
            .iter()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or("-")
            .to_owned()
    };
    let times = line("times ");
    println!("guest clock, seconds since the kernel started: {times}");
    let at = |key: &str| -> Option<f64> {
        times
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.parse().ok())
    };
    if let (Some(getty), Some(kubeadm)) = (at("getty="), at("kubeadm=")) {
        println!(
            "kubeadm invoked after the serial getty started: {:.2} s (guest clock)",
            kubeadm - getty
        );
    }
    println!("containerd: {}", line("containerd-boot "));
    println!(
        "multi-user.target reached (guest clock, after kiln-firstboot and the report): {} s",
        line("multi-user-at ")
    );
    println!("guest CPU since boot (/proc/stat): {}", line("cpu "));
    for prefix in ["firstboot-log: ", "containerd-log: ", "chain: ", "blame: "] {
        for l in report.iter().filter_map(|l| l.strip_prefix(prefix)) {
            println!("  {}{l}", prefix.trim_end_matches(' '));
        }
    }
    let status: serde_json::Value =
        serde_json::from_str(&line("status ")).unwrap_or(serde_json::Value::Null);
    for step in status["steps"].as_array().into_iter().flatten() {
        println!(
            "  step {:<10} {:>7.3} s",
            step["name"].as_str().unwrap_or("?"),
            step["seconds"].as_f64().unwrap_or(f64::NAN)
        );
    }
    let rss = status["peak_rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0;
    println!("kiln-firstboot peak RSS: {rss:.1} MiB (goal <= 20 MB)");
    println!(
        "kiln-firstboot binary: {} bytes (stripped, in the image)",
        line("firstboot-bytes ")
    );
    println!(
        "images imported at boot: {}; containerd starts: {}",
        line("imported-at-boot "),
        line("containerd-starts ")
    );
}
