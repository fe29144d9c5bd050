//! The systemd units a Kubernetes node needs, for binaries under `/usr/bin` (the opt layout
//! rewrites their paths).

/// kubelet.service as the Kubernetes packages ship it.
pub const KUBELET_SERVICE: &str = "\
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
";

/// kubeadm's kubelet drop-in (`kubelet.service.d/10-kubeadm.conf`) as the Kubernetes packages
/// ship it.
pub const KUBEADM_DROPIN: &str = "\
# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment=\"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf\"
Environment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"
# This is a file that \"kubeadm init\" and \"kubeadm join\" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort. Preferably, the user should use
# the .NodeRegistration.KubeletExtraArgs object in the configuration files instead. KUBELET_EXTRA_ARGS should be sourced from this file.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
";

/// containerd.service as containerd's release ships it, with the binary in /usr/bin and
/// without `After=network.target` (issue #13: containerd serves its socket without a network,
/// and kubelet waits for the network itself; first boot's image check and kubeadm wait on
/// containerd). The `modprobe overlay` stays: a sysext's modules-load.d may come too late.
pub const CONTAINERD_SERVICE: &str = "\
[Unit]
Description=containerd container runtime
Documentation=https://containerd.io
After=local-fs.target dbus.service

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
";

/// kiln-firstboot's unit (the one the firstboot package ships).
pub const FIRSTBOOT_SERVICE: &str =
    include_str!("../../../firstboot/systemd/kiln-firstboot.service");

/// The join service's unit (runs only where /etc/kiln/join-service.toml exists).
pub const JOIN_SERVICE: &str = include_str!("../../../firstboot/systemd/kiln-join-service.service");

/// Starts kiln-firstboot and kubelet with multi-user.target. A drop-in, not `[Install]`
/// symlinks: a sysext merged at boot cannot enable units, but drop-ins apply on the manager
/// reload the merge triggers.
pub const MULTI_USER_DROPIN: &str = "\
# kiln: start containerd (baked or the host's), first-boot provisioning and kubelet (kubelet waits
# in a restart loop until kubeadm has written its configuration, as with the Kubernetes packages).
[Unit]
Wants=containerd.service kiln-firstboot.service kubelet.service kiln-join-service.service
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_point_at_usr_bin() {
        assert!(KUBEADM_DROPIN.contains("ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS"));
        assert!(FIRSTBOOT_SERVICE.contains("ExecStart=/usr/bin/kiln-firstboot run"));
        assert!(JOIN_SERVICE.contains("ExecStart=/usr/bin/kiln-firstboot join-service"));
        assert!(CONTAINERD_SERVICE.contains("ExecStart=/usr/bin/containerd\n"));
    }
}
