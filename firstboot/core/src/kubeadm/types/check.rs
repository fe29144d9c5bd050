//! Version checks: fields that exist in only one of v1beta3 and v1beta4, and the extraArgs
//! form, are refused in the other version, as kubeadm's strict decoding does.

use super::*;
use crate::kubeadm::{ApiVersion, ExtraArgs};
use crate::Error;

/// Collects fields that do not exist in the document's API version.
struct VersionCheck {
    kind: &'static str,
    api: ApiVersion,
    errors: Vec<String>,
}

impl VersionCheck {
    fn new(kind: &'static str, api: ApiVersion) -> Self {
        VersionCheck {
            kind,
            api,
            errors: Vec::new(),
        }
    }

    /// `field` is set but exists only in `only_in`.
    fn only<T>(&mut self, only_in: ApiVersion, field: &str, value: &Option<T>) {
        if value.is_some() && self.api != only_in {
            let hint = match only_in {
                ApiVersion::V1beta4 => "it is new in v1beta4, which kubeadm reads from v1.31",
                ApiVersion::V1beta3 => "it was removed in v1beta4",
            };
            self.errors.push(format!(
                "{}.{field}: unknown field in {} ({hint})",
                self.kind,
                self.api.api_version()
            ));
        }
    }

    /// extraArgs must be a map in v1beta3 and a name/value list in v1beta4.
    fn args(&mut self, field: &str, args: &Option<ExtraArgs>) {
        if let Some(a) = args
            .as_ref()
            .filter(|a| a.version != self.api && !a.args.is_empty())
        {
            let form = match a.version {
                ApiVersion::V1beta3 => "a map",
                ApiVersion::V1beta4 => "a name/value list",
            };
            self.errors.push(format!(
                "{}.{field}: written as {form}, which {} does not read",
                self.kind,
                self.api.api_version()
            ));
        }
    }

    fn node_registration(&mut self, nr: &Option<NodeRegistration>) {
        if let Some(nr) = nr {
            self.only(
                V4,
                "nodeRegistration.imagePullSerial",
                &nr.image_pull_serial,
            );
            self.args("nodeRegistration.kubeletExtraArgs", &nr.kubelet_extra_args);
        }
    }

    fn finish(self) -> Result<(), Error> {
        match self.errors.is_empty() {
            true => Ok(()),
            false => Err(Error::invalid(self.errors.join("; "))),
        }
    }
}

const V3: ApiVersion = ApiVersion::V1beta3;
const V4: ApiVersion = ApiVersion::V1beta4;

impl InitConfiguration {
    /// Rejects fields that `api` does not have.
    pub fn check(&self, api: ApiVersion) -> Result<(), Error> {
        let mut c = VersionCheck::new("InitConfiguration", api);
        c.only(V4, "dryRun", &self.dry_run);
        c.only(V4, "timeouts", &self.timeouts);
        c.node_registration(&self.node_registration);
        c.finish()
    }
}

impl JoinConfiguration {
    /// Rejects fields that `api` does not have.
    pub fn check(&self, api: ApiVersion) -> Result<(), Error> {
        let mut c = VersionCheck::new("JoinConfiguration", api);
        c.only(V4, "dryRun", &self.dry_run);
        c.only(V4, "timeouts", &self.timeouts);
        c.only(V3, "discovery.timeout", &self.discovery.timeout);
        c.node_registration(&self.node_registration);
        c.finish()
    }
}

impl ClusterConfiguration {
    /// Rejects fields that `api` does not have.
    pub fn check(&self, api: ApiVersion) -> Result<(), Error> {
        let mut c = VersionCheck::new("ClusterConfiguration", api);
        c.only(V4, "proxy", &self.proxy);
        c.only(V4, "encryptionAlgorithm", &self.encryption_algorithm);
        c.only(
            V4,
            "certificateValidityPeriod",
            &self.certificate_validity_period,
        );
        c.only(
            V4,
            "caCertificateValidityPeriod",
            &self.ca_certificate_validity_period,
        );
        c.only(
            V4,
            "dns.disabled",
            &self.dns.as_ref().and_then(|d| d.disabled),
        );
        if let Some(a) = &self.api_server {
            c.only(
                V3,
                "apiServer.timeoutForControlPlane",
                &a.timeout_for_control_plane,
            );
            c.only(V4, "apiServer.extraEnvs", &a.extra_envs);
            c.args("apiServer.extraArgs", &a.extra_args);
        }
        for (name, comp) in [
            ("controllerManager", &self.controller_manager),
            ("scheduler", &self.scheduler),
        ] {
            if let Some(comp) = comp {
                c.only(V4, &format!("{name}.extraEnvs"), &comp.extra_envs);
                c.args(&format!("{name}.extraArgs"), &comp.extra_args);
            }
        }
        if let Some(local) = self.etcd.as_ref().and_then(|e| e.local.as_ref()) {
            c.only(V4, "etcd.local.extraEnvs", &local.extra_envs);
            c.args("etcd.local.extraArgs", &local.extra_args);
        }
        c.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1beta4_fields_are_refused_in_v1beta3() {
        let init: InitConfiguration = serde_yaml_ng::from_str(
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\ntimeouts:\n  kubeletHealthCheck: 4m0s\n",
        )
        .unwrap();
        let err = init.check(V3).unwrap_err().to_string();
        assert!(
            err.contains("InitConfiguration.timeouts: unknown field in kubeadm.k8s.io/v1beta3"),
            "{err}"
        );
        assert!(err.contains("v1.31"), "{err}");
        init.check(V4).unwrap();
    }

    #[test]
    fn extra_args_form_must_match_the_version() {
        let cluster: ClusterConfiguration = serde_yaml_ng::from_str(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncontrollerManager:\n  extraArgs:\n    bind-address: 0.0.0.0\n",
        )
        .unwrap();
        let err = cluster.check(V4).unwrap_err().to_string();
        assert!(
            err.contains("controllerManager.extraArgs: written as a map"),
            "{err}"
        );
        cluster.check(V3).unwrap();
    }

    #[test]
    fn unknown_fields_and_secrets() {
        let err = serde_yaml_ng::from_str::<JoinConfiguration>(
            "apiVersion: x\nkind: JoinConfiguration\ndiscovery: {}\nnodeRegistrations: {}\n",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown field `nodeRegistrations`"),
            "{err}"
        );
        let join: JoinConfiguration = serde_yaml_ng::from_str(
            "apiVersion: x\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    token: abcdef.0123456789abcdef\n    unsafeSkipCAVerification: true\n",
        )
        .unwrap();
        assert!(!format!("{join:?}").contains("0123456789abcdef"));
    }
}
