//! The kernel settings a Kubernetes node needs, as kubeadm's install page tells operators to set
//! them (IPv4 forwarding on, `overlay` and `br_netfilter` loaded), in the files systemd applies
//! early in boot (systemd-sysctl, systemd-modules-load: in-process, no `modprobe` exec).
//! kiln-firstboot's preflight writes them when it repairs a node; `kiln build` writes them into
//! disk images so the node boots with them set.

/// Where IPv4 forwarding is persisted (relative to the root).
pub const SYSCTL_FILE: &str = "etc/sysctl.d/99-kubernetes-kiln.conf";
/// [`SYSCTL_FILE`]'s text.
pub const SYSCTL: &str = "net.ipv4.ip_forward = 1\n";
/// Where the kernel modules to load at boot are listed (relative to the root).
pub const MODULES_FILE: &str = "etc/modules-load.d/kubernetes-kiln.conf";
/// [`MODULES_FILE`]'s text.
pub const MODULES: &str = "overlay\nbr_netfilter\n";
