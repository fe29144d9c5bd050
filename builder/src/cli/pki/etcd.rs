//! `kiln pki etcd`: the certificate procedure of "Set up a High Availability etcd Cluster with
//! kubeadm", for all members at once.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use kiln_core::kubeadm::ApiVersion;
use kiln_core::pki::etcd::{plan_members, validate_members, EtcdCa, EtcdMember};
use kiln_core::pki::KeyType;
use kiln_core::version::KubeVersion;
use kiln_core::Error;
use time::OffsetDateTime;

use super::output::print_plan;

/// For each member writes OUT/NAME/kubeadmcfg.yaml and OUT/NAME/pki/ with etcd/ca.crt,
/// etcd/server, etcd/peer, etcd/healthcheck-client and apiserver-etcd-client (.crt and .key):
/// copy OUT/NAME/pki to /etc/kubernetes/pki on host NAME. The etcd CA key never leaves
/// --ca-dir. If --ca-dir has no etcd/ca.crt and etcd/ca.key, a new etcd CA is made and saved
/// there.
///
/// OUT must not exist: it is built under a temporary name and renamed at the end, so a failed
/// run leaves nothing behind.
#[derive(Debug, Args)]
pub struct EtcdArgs {
    /// Cluster PKI directory (from `kiln pki init`) holding etcd/ca.crt and etcd/ca.key.
    #[arg(long, value_name = "DIR")]
    ca_dir: PathBuf,
    /// An etcd member as NAME=IP (node name and the address etcd listens on); repeat per member.
    #[arg(long = "member", value_name = "NAME=IP", required = true)]
    members: Vec<EtcdMember>,
    /// New directory to write the per-member folders into.
    #[arg(long, value_name = "OUT")]
    out: PathBuf,
    /// kubeadm config API of kubeadmcfg.yaml: v1beta4 (read by kubeadm >= 1.31) or v1beta3 (read
    /// only by kubeadm < 1.37: kubeadm 1.37 removed it). Default: what the --kubernetes-version
    /// kubeadm reads best, else v1beta4.
    #[arg(long, value_name = "VERSION")]
    kubeadm_api: Option<ApiVersion>,
    /// The kubeadm version on the etcd hosts, e.g. v1.36.3: --kubeadm-api is checked against it
    /// (v1beta3 is refused for kubeadm >= 1.37, v1beta4 for kubeadm < 1.31).
    #[arg(long, value_name = "vX.Y.Z")]
    kubernetes_version: Option<KubeVersion>,
    /// Key algorithm of the member keys (and of a new etcd CA); default: the etcd CA's, or
    /// rsa-2048 for a new CA.
    #[arg(long, value_name = "TYPE")]
    key_type: Option<KeyType>,
    /// Accept loopback member addresses (127/8, ::1): only for a test cluster whose members all
    /// run on this one host. Otherwise every member needs an address the others reach.
    #[arg(long)]
    allow_loopback: bool,
    /// Print the files that would be written (mode, size, path) and write nothing.
    #[arg(long)]
    dry_run: bool,
}

impl EtcdArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let api = kubeadm_api(self.kubeadm_api, self.kubernetes_version.as_ref())?;
        validate_members(&self.members, self.allow_loopback)?;
        if !self.dry_run && self.out.symlink_metadata().is_ok() {
            return Err(Error::Exists {
                path: self.out.clone(),
                hint: "choose a new --out directory or remove this one".into(),
            }
            .into());
        }
        let now = OffsetDateTime::now_utc();
        let etcd_ca = EtcdCa::load_or_create(&self.ca_dir, self.key_type.unwrap_or_default(), now)
            .context("reading the etcd CA")?;
        let key_type = self.key_type.unwrap_or(etcd_ca.ca.key().key_type());
        let tree = plan_members(&etcd_ca.ca, &self.members, api, key_type, now)?;
        let ca_files = etcd_ca.files_to_save()?;
        if self.dry_run {
            print_plan(&self.ca_dir, &ca_files);
            print_plan(&self.out, &tree);
            return Ok(());
        }
        // The new CA is saved first: certificates must never exist without their CA's key.
        ca_files
            .write_into(&self.ca_dir, false)
            .context("saving the new etcd CA")?;
        if etcd_ca.created {
            tracing::info!(dir = %self.ca_dir.display(), "made a new etcd CA");
        }
        tree.publish_new(&self.out, 0o700)
            .with_context(|| format!("writing {}", self.out.display()))?;
        tracing::info!(
            members = self.members.len(),
            out = %self.out.display(),
            api = api.name(),
            "wrote etcd member certificates and kubeadm configs"
        );
        Ok(())
    }
}

/// The API of kubeadmcfg.yaml: `--kubeadm-api` if the `--kubernetes-version` kubeadm reads it,
/// else that kubeadm's best, else v1beta4.
fn kubeadm_api(
    given: Option<ApiVersion>,
    kubeadm: Option<&KubeVersion>,
) -> anyhow::Result<ApiVersion> {
    let Some(kubeadm) = kubeadm else {
        return Ok(given.unwrap_or_default());
    };
    let best = kubeadm.kubeadm_api().context("--kubernetes-version")?;
    match given {
        Some(api) if !kubeadm.reads(api) => Err(Error::invalid(format!(
            "--kubeadm-api {}: kubeadm {kubeadm} (--kubernetes-version) does not read {} \
             (v1beta3: kubeadm 1.22 to 1.36; v1beta4: kubeadm 1.31 and later); use --kubeadm-api {}",
            api.name(),
            api.api_version(),
            best.name()
        ))
        .into()),
        Some(api) => Ok(api),
        None => Ok(best),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KubeVersion {
        s.parse().unwrap()
    }

    #[test]
    fn api_follows_the_kubeadm_that_reads_it() {
        use ApiVersion::{V1beta3, V1beta4};
        assert_eq!(kubeadm_api(None, None).unwrap(), V1beta4);
        assert_eq!(kubeadm_api(Some(V1beta3), None).unwrap(), V1beta3);
        assert_eq!(kubeadm_api(None, Some(&v("v1.30.4"))).unwrap(), V1beta3);
        assert_eq!(kubeadm_api(None, Some(&v("v1.37.0"))).unwrap(), V1beta4);
        assert_eq!(
            kubeadm_api(Some(V1beta3), Some(&v("v1.36.3"))).unwrap(),
            V1beta3
        );
        let e = kubeadm_api(Some(V1beta3), Some(&v("v1.37.0")))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--kubeadm-api v1beta3: kubeadm v1.37.0 (--kubernetes-version) does not read kubeadm.k8s.io/v1beta3")
                && e.ends_with("use --kubeadm-api v1beta4"),
            "{e}"
        );
        let e = kubeadm_api(Some(V1beta4), Some(&v("v1.30.4")))
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("use --kubeadm-api v1beta3"), "{e}");
        let e = format!("{:#}", kubeadm_api(None, Some(&v("v1.21.0"))).unwrap_err());
        assert!(e.contains("too old"), "{e}");
    }
}
