//! The individual preflight checks. Each reads what it needs below [`Host::root`] and returns
//! one [`Check`] with kubeadm's name.

use std::net::TcpListener;

use kiln_core::inroot::{InRoot, Last};

use super::{Check, Host, Outcome, Role};

/// Minimum CPUs and memory for a control-plane node (kubeadm's NumCPU and Mem checks).
const MIN_CPUS: usize = 2;
const MIN_MEMORY_MB: u64 = 1700;

/// Ports kubeadm checks, per role.
const CONTROL_PLANE_PORTS: [u16; 6] = [6443, 2379, 2380, 10250, 10257, 10259];
const WORKER_PORTS: [u16; 1] = [10250];

/// Tools kubeadm requires (errors) and recommends (warnings).
const REQUIRED_TOOLS: [&str; 4] = ["ip", "iptables", "mount", "nsenter"];
const RECOMMENDED_TOOLS: [&str; 5] = ["conntrack", "ebtables", "ethtool", "socat", "tc"];

/// CRI endpoints kubeadm detects.
pub const CRI_SOCKETS: [(&str, &str); 3] = [
    ("containerd", "/var/run/containerd/containerd.sock"),
    ("CRI-O", "/var/run/crio/crio.sock"),
    ("cri-dockerd", "/var/run/cri-dockerd.sock"),
];

/// The most read of one /proc or /sys file.
const MAX_READ: u64 = 1 << 20;

fn read(host: &Host, rel: &str) -> Option<String> {
    read_in(&host.root, rel)
}

/// The text of the regular file `rel` inside `root` (links resolve inside it; a FIFO or device
/// there is not read), `None` if it cannot be read.
fn read_in(root: &std::path::Path, rel: &str) -> Option<String> {
    let root = InRoot::open(root).ok()?;
    root.read_to_string(std::path::Path::new(rel), Last::Follow, MAX_READ)
        .ok()
        .flatten()
}

/// Swap must be off (kubelet's default `failSwapOn`).
pub fn swap(host: &Host) -> Check {
    let active: Vec<String> = read(host, "proc/swaps")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    let outcome = if active.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail(format!("swap is on ({})", active.join(", ")))
    };
    Check::new("Swap", outcome, "run `swapoff -a` and remove swap entries from /etc/fstab (or configure kubelet for swap on cgroup v2)")
}

/// IPv4 forwarding must be on.
pub fn ip_forward(host: &Host) -> Check {
    let value = read(host, "proc/sys/net/ipv4/ip_forward").unwrap_or_default();
    let outcome = if value.trim() == "1" {
        Outcome::Pass
    } else {
        Outcome::Fail(format!("net.ipv4.ip_forward is {:?}", value.trim()))
    };
    Check::new(
        "FileContent--proc-sys-net-ipv4-ip_forward",
        outcome,
        "kiln-firstboot preflight --fix sets it and persists it in /etc/sysctl.d",
    )
}

/// The overlay and br_netfilter modules must be loaded.
pub fn modules(host: &Host) -> Vec<Check> {
    ["overlay", "br_netfilter"]
        .into_iter()
        .map(|m| {
            let loaded = host.root.join("sys/module").join(m).exists();
            let outcome = if loaded {
                Outcome::Pass
            } else {
                Outcome::Fail(format!("kernel module {m} is not loaded"))
            };
            Check::new(
                format!("KernelModule-{m}"),
                outcome,
                "kiln-firstboot preflight --fix loads it and persists it in /etc/modules-load.d",
            )
        })
        .collect()
}

/// A control plane needs at least 2 CPUs.
pub fn cpus(host: &Host) -> Check {
    let count = read(host, "proc/cpuinfo")
        .map(|t| t.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0);
    let outcome = if count >= MIN_CPUS {
        Outcome::Pass
    } else {
        Outcome::Fail(format!("{count} CPU(s), a control plane needs {MIN_CPUS}"))
    };
    Check::new("NumCPU", outcome, "give the machine at least 2 CPUs")
}

/// A control plane needs at least 1700 MB of memory.
pub fn memory(host: &Host) -> Check {
    let kib: u64 = read(host, "proc/meminfo")
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    let mb = kib / 1024;
    let outcome = if mb >= MIN_MEMORY_MB {
        Outcome::Pass
    } else {
        Outcome::Fail(format!(
            "{mb} MB of memory, a control plane needs {MIN_MEMORY_MB} MB"
        ))
    };
    Check::new("Mem", outcome, "give the machine at least 2 GB of memory")
}

/// The role's ports must be free (probed by listening on all addresses, as kubeadm does).
pub fn ports(role: Role) -> Vec<Check> {
    let ports: &[u16] = match role {
        Role::ControlPlane => &CONTROL_PLANE_PORTS,
        Role::Worker => &WORKER_PORTS,
    };
    ports.iter().map(|&p| port(p)).collect()
}

/// One port must be free.
pub fn port(port: u16) -> Check {
    let outcome = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(_) => Outcome::Pass,
        Err(e) => Outcome::Fail(format!("port {port} is in use ({e})")),
    };
    Check::new(
        format!("Port-{port}"),
        outcome,
        "stop what listens there (`ss -ltnp`)",
    )
}

/// Tools kubeadm and kubelet call.
pub fn tools(host: &Host) -> Vec<Check> {
    let find = |tool: &str| {
        [
            "usr/sbin",
            "usr/bin",
            "sbin",
            "bin",
            "opt/bin",
            "usr/local/bin",
            "usr/local/sbin",
        ]
        .iter()
        .any(|dir| host.root.join(dir).join(tool).exists())
    };
    let required = REQUIRED_TOOLS.iter().map(|t| (t, true));
    let recommended = RECOMMENDED_TOOLS.iter().map(|t| (t, false));
    required
        .chain(recommended)
        .map(|(tool, needed)| {
            let outcome = match (find(tool), needed) {
                (true, _) => Outcome::Pass,
                (false, true) => Outcome::Fail(format!("{tool} not found")),
                (false, false) => Outcome::Warn(format!("{tool} not found")),
            };
            Check::new(
                format!("FileExisting-{tool}"),
                outcome,
                "bake it into the image (see the recipe's packages)",
            )
        })
        .collect()
}

/// The host name must be a valid DNS-1123 subdomain (it becomes the node name).
pub fn hostname(host: &Host) -> Check {
    let name = read(host, "proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let outcome = if kiln_core::names::is_dns1123_subdomain(&name) {
        Outcome::Pass
    } else {
        Outcome::Fail(format!(
            "host name {name:?} is not a valid node name (lower-case DNS-1123)"
        ))
    };
    Check::new(
        "Hostname",
        outcome,
        "set hostname in user-data, or nodeName in the node config",
    )
}

/// Exactly one container runtime socket, unless one is configured.
pub fn cri(host: &Host) -> Check {
    let fix = "start exactly one runtime, or set cri_socket in the node config";
    if let Some(socket) = &host.cri_socket {
        let path = socket.trim_start_matches("unix://");
        let exists = host.root.join(path.trim_start_matches('/')).exists();
        let outcome = if exists {
            Outcome::Pass
        } else {
            Outcome::Fail(format!("configured CRI socket {socket} does not exist"))
        };
        return Check::new("CRI", outcome, fix);
    }
    let found: Vec<&str> = CRI_SOCKETS
        .iter()
        .filter(|(_, p)| host.root.join(p.trim_start_matches('/')).exists())
        .map(|(name, _)| *name)
        .collect();
    let outcome = match found.len() {
        1 => Outcome::Pass,
        0 => Outcome::Fail("no container runtime socket found".into()),
        _ => Outcome::Fail(format!(
            "several container runtimes found ({})",
            found.join(", ")
        )),
    };
    Check::new("CRI", outcome, fix)
}

/// cgroup v2 (unified hierarchy) is what kubelet and containerd with the systemd driver expect.
pub fn cgroup_v2(host: &Host) -> Check {
    let v2 = host.root.join("sys/fs/cgroup/cgroup.controllers").exists();
    let outcome = if v2 {
        Outcome::Pass
    } else {
        Outcome::Warn("cgroup v1 (no unified hierarchy)".into())
    };
    Check::new(
        "SystemVerification-cgroups",
        outcome,
        "boot with systemd.unified_cgroup_hierarchy=1; cgroup v1 is deprecated in Kubernetes",
    )
}

/// product_uuid and MAC addresses: must be unique across the cluster, which only the operator
/// can see, so they are reported.
pub fn identity(host: &Host) -> Check {
    let (uuid, macs) = machine_identity(&host.root);
    let macs = if macs.is_empty() {
        "none".into()
    } else {
        macs.join(" ")
    };
    Check::new(
        "Identity",
        Outcome::Info(format!(
            "product_uuid {}, MACs {macs}",
            uuid.as_deref().unwrap_or("unknown")
        )),
        "both must be unique in the cluster: cloned images must not share them",
    )
}

/// The machine's product_uuid (if the firmware has one) and its interfaces' MAC addresses
/// (sorted, loopback left out), read below `root`.
pub fn machine_identity(root: &std::path::Path) -> (Option<String>, Vec<String>) {
    let uuid = read_in(root, "sys/class/dmi/id/product_uuid").map(|s| s.trim().to_owned());
    let mut macs: Vec<String> = std::fs::read_dir(root.join("sys/class/net"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name() != "lo")
                .filter_map(|e| {
                    let name = e.file_name();
                    read_in(
                        root,
                        &format!("sys/class/net/{}/address", name.to_string_lossy()),
                    )
                })
                .map(|m| m.trim().to_owned())
                .collect()
        })
        .unwrap_or_default();
    macs.sort();
    (uuid, macs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(files: &[(&str, &str)]) -> (tempfile::TempDir, Host) {
        let tmp = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let p = tmp.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let host = Host {
            root: tmp.path().to_owned(),
            cri_socket: None,
        };
        (tmp, host)
    }

    #[test]
    fn swap_memory_cpu_forwarding() {
        let (_t, host) = fake(&[
            (
                "proc/swaps",
                "Filename Type Size Used Priority\n/swapfile file 1024 0 -2\n",
            ),
            ("proc/meminfo", "MemTotal:        1024000 kB\n"),
            ("proc/cpuinfo", "processor : 0\n"),
            ("proc/sys/net/ipv4/ip_forward", "0\n"),
        ]);
        assert!(swap(&host).failed());
        assert!(memory(&host).failed());
        assert!(cpus(&host).failed());
        assert!(ip_forward(&host).failed());
        let (_t, good) = fake(&[
            ("proc/swaps", "Filename Type Size Used Priority\n"),
            ("proc/meminfo", "MemTotal:        4024000 kB\n"),
            ("proc/cpuinfo", "processor : 0\nprocessor : 1\n"),
            ("proc/sys/net/ipv4/ip_forward", "1\n"),
        ]);
        for c in [swap(&good), memory(&good), cpus(&good), ip_forward(&good)] {
            assert_eq!(c.outcome, Outcome::Pass, "{c:?}");
        }
    }

    #[test]
    fn files_are_read_inside_the_root_and_never_block() {
        let (t, host) = fake(&[]);
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("swaps"), "h\n/host-swap file 1 0 -2\n").unwrap();
        std::fs::create_dir_all(t.path().join("proc")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("swaps"), t.path().join("proc/swaps"))
            .unwrap();
        nix::unistd::mkfifo(
            &t.path().join("proc/meminfo"),
            nix::sys::stat::Mode::S_IRUSR,
        )
        .unwrap();
        assert_eq!(swap(&host).outcome, Outcome::Pass);
        assert!(memory(&host).failed());
    }

    #[test]
    fn cri_detection_needs_exactly_one() {
        let (_t, none) = fake(&[]);
        assert!(cri(&none).failed());
        let (_t, one) = fake(&[("var/run/containerd/containerd.sock", "")]);
        assert_eq!(cri(&one).outcome, Outcome::Pass);
        let (_t, two) = fake(&[
            ("var/run/containerd/containerd.sock", ""),
            ("var/run/crio/crio.sock", ""),
        ]);
        assert!(
            matches!(cri(&two).outcome, Outcome::Fail(ref m) if m.contains("containerd, CRI-O"))
        );
        let (_t, mut configured) = fake(&[
            ("var/run/containerd/containerd.sock", ""),
            ("var/run/crio/crio.sock", ""),
        ]);
        configured.cri_socket = Some("unix:///var/run/crio/crio.sock".into());
        assert_eq!(cri(&configured).outcome, Outcome::Pass);
    }

    #[test]
    fn hostname_and_tools() {
        let (_t, host) = fake(&[
            ("proc/sys/kernel/hostname", "Bad_Host\n"),
            ("usr/sbin/ip", ""),
        ]);
        assert!(hostname(&host).failed());
        let t = tools(&host);
        assert_eq!(
            t.iter()
                .find(|c| c.name == "FileExisting-ip")
                .unwrap()
                .outcome,
            Outcome::Pass
        );
        assert!(t
            .iter()
            .find(|c| c.name == "FileExisting-nsenter")
            .unwrap()
            .failed());
        assert!(matches!(
            t.iter()
                .find(|c| c.name == "FileExisting-socat")
                .unwrap()
                .outcome,
            Outcome::Warn(_)
        ));
    }

    #[test]
    fn busy_port_fails() {
        let busy = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let p = busy.local_addr().unwrap().port();
        let check = port(p);
        assert_eq!(check.name, format!("Port-{p}"));
        assert!(check.failed(), "{check:?}");
        drop(busy);
        assert_eq!(port(p).outcome, Outcome::Pass);
    }
}
