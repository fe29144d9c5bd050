//! What each role needs and refuses, and what may stand beside `kubeadm_config`.

use super::{NodeConfig, NodeConfigError, Role};

type Result<T> = std::result::Result<T, NodeConfigError>;

/// Fields that describe the kubeadm config itself: with `kubeadm_config`, they belong there.
fn kubeadm_fields(c: &NodeConfig) -> [(&'static str, bool); 18] {
    [
        ("join_service", c.join_service.is_some()),
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
    check_admin_kubeconfig(c)?;
    if c.kubeadm_config.is_some() {
        return check_beside_kubeadm_config(c);
    }
    if c.role.joins() {
        only_for(c, "init", &init_only(c))?;
        join_rules(c)?;
    } else {
        only_for(c, "join or control-plane", &join_only(c))?;
    }
    if c.role == Role::Join {
        only_for(
            c,
            "init or control-plane (set kubelet_extra_args.node-ip on workers)",
            &[("advertise_address", c.advertise_address.is_some())],
        )?;
        only_for(c, "init or control-plane", &control_plane_only(c))?;
    }
    Ok(())
}

fn check_admin_kubeconfig(c: &NodeConfig) -> Result<()> {
    if c.admin_kubeconfig
        .as_ref()
        .is_some_and(|p| !p.is_absolute())
    {
        return Err(NodeConfigError::field(
            "admin_kubeconfig",
            "must be an absolute path",
        ));
    }
    Ok(())
}

/// With `kubeadm_config`, the first of the [`kubeadm_fields`] that is set is refused.
fn check_beside_kubeadm_config(c: &NodeConfig) -> Result<()> {
    match kubeadm_fields(c).into_iter().find(|(_, set)| *set) {
        Some((name, _)) => Err(NodeConfigError::field(
            name,
            "not allowed with kubeadm_config; put it in that kubeadm config",
        )),
        None => Ok(()),
    }
}

/// Refuses the first of `fields` that is set: it is only for the roles named by `roles`.
fn only_for(c: &NodeConfig, roles: &str, fields: &[(&'static str, bool)]) -> Result<()> {
    match fields.iter().find(|(_, set)| *set) {
        Some((name, _)) => Err(NodeConfigError::field(
            *name,
            format!("only for role {roles}, not {}", c.role.name()),
        )),
        None => Ok(()),
    }
}

/// Fields only the init node uses: they describe the new cluster.
fn init_only(c: &NodeConfig) -> [(&'static str, bool); 6] {
    [
        ("pod_subnets", !c.pod_subnets.is_empty()),
        ("service_subnets", !c.service_subnets.is_empty()),
        ("external_etcd", c.external_etcd.is_some()),
        ("cni_manifest", c.cni_manifest.is_some()),
        ("admin_kubeconfig", c.admin_kubeconfig.is_some()),
        ("token_ttl", c.token_ttl.is_some()),
    ]
}

/// Fields only a joining node uses: the discovery of the existing cluster.
fn join_only(c: &NodeConfig) -> [(&'static str, bool); 4] {
    [
        ("join_service", c.join_service.is_some()),
        ("ca_cert_hashes", !c.ca_cert_hashes.is_empty()),
        ("unsafe_skip_ca_verification", c.unsafe_skip_ca_verification),
        ("discovery_timeout", c.discovery_timeout.is_some()),
    ]
}

/// Fields a worker refuses (besides `advertise_address`): they concern control-plane nodes.
fn control_plane_only(c: &NodeConfig) -> [(&'static str, bool); 3] {
    [
        ("certificate_key", c.certificate_key.is_some()),
        ("untaint", c.untaint),
        ("control_plane_timeout", c.control_plane_timeout.is_some()),
    ]
}

fn join_rules(c: &NodeConfig) -> Result<()> {
    if c.join_service.is_some() {
        return join_service_rules(c);
    }
    if c.control_plane_endpoint.is_none() {
        return Err(NodeConfigError::field(
            "control_plane_endpoint",
            "missing; a join needs the control plane's host:port (or join_service)",
        ));
    }
    if c.token.is_none() {
        return Err(NodeConfigError::field(
            "token",
            "missing; a join needs the bootstrap token (`kiln token generate`) or join_service",
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

/// A join through the join service: the token comes from it (never beside it), the service
/// is pinned by the CA hashes, and it names the control plane unless the config does.
fn join_service_rules(c: &NodeConfig) -> Result<()> {
    if c.token.is_some() {
        return Err(NodeConfigError::field(
            "token",
            "not allowed with join_service: the service issues a short-lived token; remove one",
        ));
    }
    if c.ca_cert_hashes.is_empty() || c.unsafe_skip_ca_verification {
        return Err(NodeConfigError::field(
            "ca_cert_hashes",
            "missing; join_service is pinned by the cluster CA (`kiln pki ca-hash pki/ca.crt`); unsafe_skip_ca_verification is not allowed with it",
        ));
    }
    if c.role == Role::ControlPlane {
        return Err(NodeConfigError::field(
            "join_service",
            "only for role join: a control-plane join needs the certificate key, a long-lived secret the service does not hand out",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_for_refuses_the_first_field_set() {
        let c = NodeConfig::parse("role = \"init\"\n").unwrap();
        assert!(only_for(&c, "join", &[("a", false), ("b", false)]).is_ok());
        let e = only_for(&c, "join", &[("a", false), ("b", true), ("c", true)]).unwrap_err();
        assert_eq!(e.to_string(), "b: only for role join, not init");
    }

    #[test]
    fn join_service_replaces_the_token_and_keeps_the_pin() {
        let pin = format!("ca_cert_hashes = [\"sha256:{}\"]\n", "a".repeat(64));
        let base = "role = \"join\"\njoin_service = \"https://10.0.0.10:9443\"\n";
        let c = NodeConfig::parse(&format!("{base}{pin}")).unwrap();
        assert_eq!(c.join_service.as_deref(), Some("https://10.0.0.10:9443"));
        let err = |text: &str| NodeConfig::parse(text).unwrap_err().to_string();
        assert!(err(base).starts_with("ca_cert_hashes: missing"));
        let token = "token = \"abcdef.0123456789abcdef\"\n";
        assert!(err(&format!("{base}{pin}{token}")).starts_with("token: not allowed"));
        let init = "role = \"init\"\njoin_service = \"https://a:1\"\n";
        assert!(err(init).starts_with("join_service: only for role join"));
        let cp = format!("{pin}role = \"control-plane\"\njoin_service = \"https://a:1\"\n");
        assert!(err(&cp).starts_with("join_service: only for role join"));
        assert!(err("role = \"join\"\njoin_service = \"http://a:1\"\n").contains("HTTPS"));
    }
}
