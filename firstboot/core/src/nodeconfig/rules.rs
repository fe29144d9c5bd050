//! What each role needs and refuses, and what may stand beside `kubeadm_config`.

use super::{NodeConfig, NodeConfigError, Role};

type Result<T> = std::result::Result<T, NodeConfigError>;

/// Fields that describe the kubeadm config itself: with `kubeadm_config`, they belong there.
fn kubeadm_fields(c: &NodeConfig) -> [(&'static str, bool); 17] {
    [
        ("token_ttl", c.token_ttl.is_some()),
        ("unsafe_skip_ca_verification", c.unsafe_skip_ca_verification),
        ("discovery_timeout", c.discovery_timeout.is_some()),
        ("control_plane_endpoint", c.control_plane_endpoint.is_some()),
        ("advertise_address", c.advertise_address.is_some()),
        ("pod_subnets", !c.pod_subnets.is_empty()),
        ("service_subnets", !c.service_subnets.is_empty()),
        ("node_name", c.node_name.is_some()),
        ("labels", !c.labels.is_empty()),
        ("taints", !c.taints.is_empty()),
        ("kubelet_extra_args", !c.kubelet_extra_args.is_empty()),
        ("token", c.token.is_some()),
        ("ca_cert_hashes", !c.ca_cert_hashes.is_empty()),
        ("certificate_key", c.certificate_key.is_some()),
        ("pki_dir", c.pki_dir.is_some()),
        ("external_etcd", c.external_etcd.is_some()),
        ("control_plane_timeout", c.control_plane_timeout.is_some()),
    ]
}

/// The rules of the role (and of the escape hatch) over the validated values.
pub(super) fn check(c: &NodeConfig) -> Result<()> {
    if c.admin_kubeconfig
        .as_ref()
        .is_some_and(|p| !p.is_absolute())
    {
        return Err(NodeConfigError::field(
            "admin_kubeconfig",
            "must be an absolute path",
        ));
    }
    if c.kubeadm_config.is_some() {
        if let Some((name, _)) = kubeadm_fields(c).into_iter().find(|(_, set)| *set) {
            return Err(NodeConfigError::field(
                name,
                "not allowed with kubeadm_config; put it in that kubeadm config",
            ));
        }
        return Ok(());
    }
    let not_for = |name: &str, set: bool, roles: &str| match set {
        true => Err(NodeConfigError::field(
            name,
            format!("only for role {roles}, not {}", c.role.name()),
        )),
        false => Ok(()),
    };
    let init_only = [
        ("pod_subnets", !c.pod_subnets.is_empty()),
        ("service_subnets", !c.service_subnets.is_empty()),
        ("external_etcd", c.external_etcd.is_some()),
        ("cni_manifest", c.cni_manifest.is_some()),
        ("admin_kubeconfig", c.admin_kubeconfig.is_some()),
        ("token_ttl", c.token_ttl.is_some()),
    ];
    if c.role.joins() {
        for (name, set) in init_only {
            not_for(name, set, "init")?;
        }
        join_rules(c)?;
    } else {
        not_for(
            "ca_cert_hashes",
            !c.ca_cert_hashes.is_empty(),
            "join or control-plane",
        )?;
        not_for(
            "unsafe_skip_ca_verification",
            c.unsafe_skip_ca_verification,
            "join or control-plane",
        )?;
        not_for(
            "discovery_timeout",
            c.discovery_timeout.is_some(),
            "join or control-plane",
        )?;
    }
    if c.role == Role::Join {
        not_for(
            "advertise_address",
            c.advertise_address.is_some(),
            "init or control-plane (set kubelet_extra_args.node-ip on workers)",
        )?;
        not_for(
            "certificate_key",
            c.certificate_key.is_some(),
            "init or control-plane",
        )?;
        not_for("untaint", c.untaint, "init or control-plane")?;
        not_for(
            "control_plane_timeout",
            c.control_plane_timeout.is_some(),
            "init or control-plane",
        )?;
    }
    Ok(())
}

fn join_rules(c: &NodeConfig) -> Result<()> {
    if c.control_plane_endpoint.is_none() {
        return Err(NodeConfigError::field(
            "control_plane_endpoint",
            "missing; a join needs the control plane's host:port",
        ));
    }
    if c.token.is_none() {
        return Err(NodeConfigError::field(
            "token",
            "missing; a join needs the bootstrap token (`kiln token generate`)",
        ));
    }
    if c.ca_cert_hashes.is_empty() && !c.unsafe_skip_ca_verification {
        return Err(NodeConfigError::field(
            "ca_cert_hashes",
            "missing; a join must pin the cluster CA (`kiln pki ca-hash pki/ca.crt`), or set unsafe_skip_ca_verification = true",
        ));
    }
    if c.role == Role::ControlPlane && c.certificate_key.is_none() && c.pki_dir.is_none() {
        return Err(NodeConfigError::field(
            "certificate_key",
            "missing; a control-plane join needs the certificate key the init node uploaded with, or pki_dir with the pre-shared CA files",
        ));
    }
    Ok(())
}
