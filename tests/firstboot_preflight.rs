//! `kiln-firstboot preflight` on a fake system root (in its own network namespace, so the port
//! checks see free ports whatever else runs here): the table names kubeadm's checks, failures
//! exit non-zero, and `--fix` repairs forwarding and modules and persists them.

#[path = "firstboot/mod.rs"]
mod firstboot;

use std::fs;

use firstboot::*;

#[test]
fn preflight_reports_and_fixes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fake_node(root);
    let sys_root = root.to_str().unwrap();
    let out = firstboot_unshared(
        &["preflight", "--role", "worker", "--sys-root", sys_root],
        &[],
    );
    assert!(!out.ok, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("FileContent--proc-sys-net-ipv4-ip_forward  FAIL"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("KernelModule-br_netfilter"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("product_uuid 4c4c4544-0042-3510-8052-b4c04f4e4a31, MACs 52:54:00:12:34:56"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("preflight failed: FileContent--proc-sys-net-ipv4-ip_forward, KernelModule-br_netfilter"), "{}", out.stderr);

    let out = firstboot_unshared(
        &[
            "preflight",
            "--role",
            "worker",
            "--sys-root",
            sys_root,
            "--fix",
        ],
        &[],
    );
    // br_netfilter cannot really be loaded in a fake root: it is persisted, the check still fails.
    assert!(
        out.stdout
            .contains("FileContent--proc-sys-net-ipv4-ip_forward  ok"),
        "{}",
        out.stdout
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/modules-load.d/kubernetes-kiln.conf")).unwrap(),
        "overlay\nbr_netfilter\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/sysctl.d/99-kubernetes-kiln.conf")).unwrap(),
        "net.ipv4.ip_forward = 1\n"
    );

    fs::create_dir_all(root.join("sys/module/br_netfilter")).unwrap();
    let out = firstboot_unshared(
        &["preflight", "--role", "worker", "--sys-root", sys_root],
        &[],
    );
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
}

#[test]
fn control_planes_need_cpus_memory_and_one_runtime() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fake_node(root);
    fs::write(root.join("proc/cpuinfo"), "processor\t: 0\n").unwrap();
    fs::write(root.join("proc/meminfo"), "MemTotal:        1000000 kB\n").unwrap();
    fs::create_dir_all(root.join("var/run/crio")).unwrap();
    fs::write(root.join("var/run/crio/crio.sock"), "").unwrap();
    let out = firstboot_unshared(
        &[
            "preflight",
            "--role",
            "control-plane",
            "--sys-root",
            root.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!out.ok);
    for line in [
        "NumCPU      FAIL    1 CPU(s), a control plane needs 2",
        "Mem         FAIL    976 MB",
        "several container runtimes found (containerd, CRI-O)",
    ] {
        let key = line.split_whitespace().next().unwrap();
        let row = out
            .stdout
            .lines()
            .find(|l| l.contains(key) && l.contains("FAIL"))
            .unwrap_or_else(|| panic!("{key}: {}", out.stdout));
        assert!(
            row.contains(line.split("FAIL").last().unwrap().trim()),
            "{row}"
        );
    }
    let out = firstboot_unshared(
        &[
            "preflight",
            "--role",
            "control-plane",
            "--sys-root",
            root.to_str().unwrap(),
            "--cri-socket",
            "unix:///var/run/crio/crio.sock",
        ],
        &[],
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("CRI") && l.contains(" ok")),
        "{}",
        out.stdout
    );
}
