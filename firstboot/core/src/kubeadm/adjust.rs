//! kiln's required adjustments to a kubeadm config taken as given (`kubeadm_config` in
//! node.toml): the CRI socket kiln prepares, the systemd cgroup driver kiln configures
//! containerd with, the read-only /usr FlexVolume directories and `untaint`. Values the user
//! set are kept; a value that contradicts kiln's setup is an error.

use serde_yaml_ng::{Mapping, Value};

use super::stream::{Document, KubeadmConfig, KUBELET_API};
use super::types::{ClusterConfiguration, Component, NodeRegistration};
use super::{ApiVersion, Arg, ExtraArgs};
use crate::nodeconfig::{NodeConfig, Role, FLEX_VOLUME_DIR};
use crate::Error;

/// Checks the stream fits the node's role and merges kiln's adjustments in.
pub fn adjust(config: &mut KubeadmConfig, node: &NodeConfig) -> Result<(), Error> {
    check_role(config, node.role)?;
    if let Some(init) = config.init_mut() {
        let api = init.api_version.parse()?;
        registration(
            init.node_registration.get_or_insert_with(Default::default),
            node,
            api,
        )?;
    }
    if let Some(join) = config.join_mut() {
        let api = join.api_version.parse()?;
        registration(
            join.node_registration.get_or_insert_with(Default::default),
            node,
            api,
        )?;
    }
    if node.role == Role::Init {
        cgroup_driver(config)?;
        if node.read_only_usr {
            controller_manager(config)?;
        }
    }
    Ok(())
}

fn check_role(config: &KubeadmConfig, role: Role) -> Result<(), Error> {
    let wrong = |what: &str| {
        Err(Error::invalid(format!(
            "kubeadm_config: {what} for role {}",
            role.name()
        )))
    };
    match (role, config.join()) {
        (Role::Init, Some(_)) => wrong("has a JoinConfiguration"),
        (Role::Init, None)
            if !config.has("InitConfiguration") && !config.has("ClusterConfiguration") =>
        {
            wrong("needs an InitConfiguration or ClusterConfiguration")
        }
        (Role::Join | Role::ControlPlane, None) => wrong("needs a JoinConfiguration"),
        (Role::Join, Some(j)) if j.control_plane.is_some() => {
            wrong("has JoinConfiguration.controlPlane (use role control-plane)")
        }
        (Role::ControlPlane, Some(j)) if j.control_plane.is_none() => {
            wrong("lacks JoinConfiguration.controlPlane")
        }
        _ => Ok(()),
    }
}

fn registration(
    nr: &mut NodeRegistration,
    node: &NodeConfig,
    api: ApiVersion,
) -> Result<(), Error> {
    match (&nr.cri_socket, &node.cri_socket) {
        (Some(given), Some(ours)) if given != ours => {
            return Err(Error::invalid(format!(
            "kubeadm_config: nodeRegistration.criSocket {given:?} differs from cri_socket {ours:?}"
        )))
        }
        (None, _) => nr.cri_socket = Some(node.cri_socket().to_owned()),
        _ => {}
    }
    if node.untaint && nr.taints.is_none() && node.role != Role::Join {
        nr.taints = Some(Vec::new());
    }
    if node.read_only_usr {
        add_arg(&mut nr.kubelet_extra_args, api, "volume-plugin-dir");
    }
    Ok(())
}

/// Adds `name = FLEX_VOLUME_DIR` unless the argument is already there.
fn add_arg(args: &mut Option<ExtraArgs>, api: ApiVersion, name: &str) {
    let args = args.get_or_insert_with(|| ExtraArgs::new(api, Vec::<(String, String)>::new()));
    if args.get(name).is_none() {
        args.version = api;
        args.args.push(Arg {
            name: name.into(),
            value: FLEX_VOLUME_DIR.into(),
        });
    }
}

fn controller_manager(config: &mut KubeadmConfig) -> Result<(), Error> {
    let Some(cluster) = config.cluster_mut() else {
        let api: ApiVersion = match config.init_mut() {
            Some(init) => init.api_version.parse()?,
            None => return Ok(()),
        };
        config
            .docs
            .push(Document::Cluster(Box::new(ClusterConfiguration {
                api_version: api.api_version(),
                kind: "ClusterConfiguration".into(),
                controller_manager: Some(Component {
                    extra_args: Some(flex_volume_args(api)),
                    ..Default::default()
                }),
                ..Default::default()
            })));
        return Ok(());
    };
    let api = cluster.api_version.parse()?;
    let cm = cluster
        .controller_manager
        .get_or_insert_with(Default::default);
    add_arg(&mut cm.extra_args, api, "flex-volume-plugin-dir");
    Ok(())
}

/// kiln configures containerd with `SystemdCgroup = true`; the kubelet must use systemd too.
fn cgroup_driver(config: &mut KubeadmConfig) -> Result<(), Error> {
    let Some(body) = config.other_mut("KubeletConfiguration") else {
        config.docs.push(kubelet_configuration());
        return Ok(());
    };
    match body.get("cgroupDriver") {
        None => {
            body.insert("cgroupDriver".into(), Value::from("systemd"));
            Ok(())
        }
        Some(Value::String(s)) if s == "systemd" => Ok(()),
        Some(other) => Err(Error::invalid(format!(
            "kubeadm_config: KubeletConfiguration.cgroupDriver {other:?} does not match containerd's systemd cgroup driver that kiln sets up; use systemd"
        ))),
    }
}

/// The controller-manager side of the read-only /usr rule.
pub fn flex_volume_args(api: ApiVersion) -> ExtraArgs {
    ExtraArgs::new(api, [("flex-volume-plugin-dir", FLEX_VOLUME_DIR)])
}

/// KubeletConfiguration with the systemd cgroup driver, matching containerd's `SystemdCgroup`.
pub fn kubelet_configuration() -> Document {
    let mut body = Mapping::new();
    body.insert("apiVersion".into(), KUBELET_API.into());
    body.insert("kind".into(), "KubeletConfiguration".into());
    body.insert("cgroupDriver".into(), Value::from("systemd"));
    Document::Other {
        kind: "KubeletConfiguration".into(),
        body,
    }
}
