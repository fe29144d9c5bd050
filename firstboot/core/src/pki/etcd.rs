//! Certificates and kubeadm configs for an external etcd cluster: the whole certificate part of
//! "Set up a High Availability etcd Cluster with kubeadm" in one step, offline.
//!
//! Per member `NAME/`: `kubeadmcfg.yaml`, and under `pki/` the etcd CA certificate (never its
//! key), `etcd/server`, `etcd/peer`, `etcd/healthcheck-client` and `apiserver-etcd-client`.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;

use time::OffsetDateTime;

use super::cert::{Ca, CertSpec, Usage, LEAF_VALIDITY};
use super::cluster::{add_ca, ETCD_CA_NAME};
use super::key::{generate_keys, KeyType, PrivateKey};
use crate::fsutil::{FileTree, MODE_PUBLIC, MODE_SECRET};
use crate::kubeadm::etcd::{render_member_config, MemberRef};
use crate::kubeadm::ApiVersion;
use crate::{Error, Result};

/// CN of the etcd healthcheck client certificate (kubeadm constant).
pub const HEALTHCHECK_CLIENT_CN: &str = "kube-etcd-healthcheck-client";
/// CN of the API server's etcd client certificate (kubeadm constant).
pub const APISERVER_ETCD_CLIENT_CN: &str = "kube-apiserver-etcd-client";

/// One etcd member: its node name and IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdMember {
    /// Node name: the etcd member name and the CN of its server and peer certificates.
    pub name: String,
    /// The address it serves clients and peers on.
    pub ip: IpAddr,
}

impl FromStr for EtcdMember {
    type Err = Error;

    /// Parses `NAME=IP`.
    fn from_str(s: &str) -> Result<Self> {
        let (name, ip) = s.split_once('=').ok_or_else(|| {
            Error::invalid(format!(
                "--member {s:?}: expected NAME=IP, e.g. etcd-1=10.0.0.11"
            ))
        })?;
        validate_node_name(name).map_err(|why| Error::invalid(format!("--member {s:?}: {why}")))?;
        let ip = ip.parse().map_err(|_| {
            Error::invalid(format!(
                "--member {s:?}: {ip:?} is not an IPv4 or IPv6 address"
            ))
        })?;
        Ok(EtcdMember {
            name: name.to_owned(),
            ip,
        })
    }
}

/// Checks a member list: at least one member, no name or IP twice, every address one that
/// peers and the API servers can reach (loopback only with `allow_loopback`: one host running
/// every member, as a test cluster does).
pub fn validate_members(members: &[EtcdMember], allow_loopback: bool) -> Result<()> {
    if members.is_empty() {
        return Err(Error::invalid("name at least one --member NAME=IP"));
    }
    let mut names = HashSet::new();
    let mut ips = HashSet::new();
    for m in members {
        m.check_routable(allow_loopback)?;
        if !names.insert(&m.name) {
            return Err(Error::invalid(format!(
                "--member: name {:?} is given twice",
                m.name
            )));
        }
        if !ips.insert(m.ip) {
            return Err(Error::invalid(format!(
                "--member: address {} is given twice",
                m.ip
            )));
        }
    }
    Ok(())
}

impl EtcdMember {
    /// Refuses an address no other host can reach this member on: the unspecified address
    /// (`0.0.0.0`, `::`: etcd may listen there, but peers and clients cannot dial it, and it
    /// would be baked into the certificates and `initial-cluster`) and, unless
    /// `allow_loopback`, a loopback address (127/8, `::1`).
    fn check_routable(&self, allow_loopback: bool) -> Result<()> {
        let ip = self.ip.to_canonical();
        let why = if ip.is_unspecified() {
            "is the unspecified address: etcd may listen on it, but peers and API servers \
             cannot connect to it; give the address the member is reached on"
        } else if ip.is_loopback() && !allow_loopback {
            "is a loopback address, which no other host reaches; give the member's routable \
             address (or pass --allow-loopback for a cluster whose members all run on one host)"
        } else {
            return Ok(());
        };
        Err(Error::invalid(format!(
            "--member {}={}: {} {why}",
            self.name, self.ip, self.ip
        )))
    }
}

/// The etcd CA found in a cluster PKI directory, or a new one to be written there.
#[derive(Debug)]
pub struct EtcdCa {
    /// The CA.
    pub ca: Ca,
    /// True if it was just made and still has to be saved as `etcd/ca.{crt,key}`.
    pub created: bool,
}

impl EtcdCa {
    /// Loads `ca_dir/etcd/ca.{crt,key}`, or makes a new etcd CA with `key_type` if neither file
    /// exists. `ca_dir` itself must exist.
    pub fn load_or_create(ca_dir: &Path, key_type: KeyType, now: OffsetDateTime) -> Result<Self> {
        if !ca_dir.is_dir() {
            return Err(Error::invalid(format!(
                "{}: no such directory; make the cluster PKI with `kiln pki init --out DIR` \
                 and pass that DIR",
                ca_dir.display()
            )));
        }
        let cert = ca_dir.join("etcd/ca.crt");
        let key = ca_dir.join("etcd/ca.key");
        match (cert.exists(), key.exists()) {
            (true, true) => Ok(EtcdCa {
                ca: Ca::load(&cert, &key)?,
                created: false,
            }),
            (false, false) => Ok(EtcdCa {
                ca: Ca::generate(ETCD_CA_NAME, PrivateKey::generate(key_type)?, now)?,
                created: true,
            }),
            (true, false) => Err(missing_half(&key, &cert)),
            (false, true) => Err(missing_half(&cert, &key)),
        }
    }

    /// The files to add to the CA directory: `etcd/ca.{crt,key}` if the CA is new, else none.
    pub fn files_to_save(&self) -> Result<FileTree> {
        let mut tree = FileTree::new();
        if self.created {
            add_ca(&mut tree, "etcd/ca", &self.ca)?;
        }
        Ok(tree)
    }
}

fn missing_half(missing: &Path, present: &Path) -> Error {
    Error::invalid(format!(
        "{} is missing but {} exists; restore it, or remove both to make a new etcd CA",
        missing.display(),
        present.display()
    ))
}

/// Plans `NAME/kubeadmcfg.yaml` and `NAME/pki/...` for every member, signed by `ca`, with leaf
/// keys of `key_type`.
pub fn plan_members(
    ca: &Ca,
    members: &[EtcdMember],
    version: ApiVersion,
    key_type: KeyType,
    now: OffsetDateTime,
) -> Result<FileTree> {
    // Whether loopback members are fine is the caller's decision (see `validate_members`).
    validate_members(members, true)?;
    let refs: Vec<MemberRef<'_>> = members
        .iter()
        .map(|m| MemberRef {
            name: &m.name,
            ip: m.ip,
        })
        .collect();
    let mut keys = generate_keys(key_type, 4 * members.len())?.into_iter();
    let mut tree = FileTree::new();
    for member in &refs {
        let mut member_tree = FileTree::new();
        member_tree.add(
            "kubeadmcfg.yaml",
            render_member_config(version, *member, &refs)?,
            MODE_PUBLIC,
        );
        member_tree.add("pki/etcd/ca.crt", ca.cert_pem(), MODE_PUBLIC);
        for (base, spec) in member_certs(member) {
            let key = keys.next().expect("four keys per member were generated");
            let cert = ca.issue(&spec, &key, now, LEAF_VALIDITY)?;
            member_tree.add(format!("pki/{base}.crt"), cert, MODE_PUBLIC);
            member_tree.add(format!("pki/{base}.key"), key.to_pem()?, MODE_SECRET);
        }
        tree.add_tree(member.name, member_tree);
    }
    Ok(tree)
}

/// The four leaf certificates of a member, as kubeadm's certlist defines them.
fn member_certs(member: &MemberRef<'_>) -> [(&'static str, CertSpec); 4] {
    // getAltNames: node name, localhost, advertise address, 127.0.0.1, ::1 (+ the SANs the
    // guide adds, which repeat the advertise address).
    let serving = |usages: Vec<Usage>| CertSpec {
        common_name: member.name.to_owned(),
        organizations: vec![],
        dns_names: vec![member.name.to_owned(), "localhost".into()],
        ips: vec![
            member.ip,
            "127.0.0.1".parse().unwrap(),
            "::1".parse().unwrap(),
        ],
        usages,
    };
    let client = |cn: &str| CertSpec {
        common_name: cn.into(),
        usages: vec![Usage::Client],
        ..CertSpec::default()
    };
    [
        ("etcd/server", serving(vec![Usage::Server, Usage::Client])),
        ("etcd/peer", serving(vec![Usage::Server, Usage::Client])),
        ("etcd/healthcheck-client", client(HEALTHCHECK_CLIENT_CN)),
        ("apiserver-etcd-client", client(APISERVER_ETCD_CLIENT_CN)),
    ]
}

/// Checks a node name against DNS-1123 subdomain rules (what kubeadm accepts as a node name).
fn validate_node_name(name: &str) -> std::result::Result<(), String> {
    if !crate::names::is_dns1123_subdomain(name) {
        return Err(format!(
            "{name:?} is not a valid node name (lower-case letters, digits, '-' and '.', \
             starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(s: &str) -> EtcdMember {
        s.parse().unwrap()
    }

    #[test]
    fn member_parsing_accepts_v4_and_v6_and_rejects_bad_input() {
        assert_eq!(member("etcd-1=10.0.0.1").ip.to_string(), "10.0.0.1");
        assert_eq!(member("etcd.b=fd00::1").ip.to_string(), "fd00::1");
        for (bad, why) in [
            ("etcd-1", "expected NAME=IP"),
            ("etcd-1=10.0.0.256", "not an IPv4 or IPv6"),
            ("Etcd=10.0.0.1", "not a valid node name"),
            ("=10.0.0.1", "not a valid node name"),
            ("-a=10.0.0.1", "not a valid node name"),
        ] {
            let err = bad.parse::<EtcdMember>().unwrap_err().to_string();
            assert!(err.contains(why) && err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn duplicates_are_rejected() {
        let dup_name = [member("a=10.0.0.1"), member("a=10.0.0.2")];
        assert!(validate_members(&dup_name, false)
            .unwrap_err()
            .to_string()
            .contains("name \"a\""));
        let dup_ip = [member("a=10.0.0.1"), member("b=10.0.0.1")];
        assert!(validate_members(&dup_ip, false)
            .unwrap_err()
            .to_string()
            .contains("10.0.0.1"));
        assert!(validate_members(&[], false).is_err());
    }

    #[test]
    fn unreachable_addresses_are_rejected_naming_the_member() {
        for (bad, why) in [
            ("a=0.0.0.0", "unspecified"),
            ("b=::", "unspecified"),
            ("c=::1", "loopback"),
            ("d=127.0.0.1", "loopback"),
            ("e=::ffff:127.0.0.1", "loopback"),
        ] {
            let members = [member("ok=10.0.0.1"), member(bad)];
            let err = validate_members(&members, false).unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains(why), "{bad}: {err}");
        }
        let local = [member("a=127.0.0.11"), member("b=127.0.0.12")];
        assert!(validate_members(&local, true).is_ok());
        assert!(validate_members(&[member("a=0.0.0.0")], true).is_err());
    }

    #[test]
    fn plan_has_every_file_and_never_the_ca_key() {
        let now = OffsetDateTime::now_utc();
        let ca = Ca::generate(
            ETCD_CA_NAME,
            PrivateKey::generate(KeyType::EcdsaP256).unwrap(),
            now,
        )
        .unwrap();
        let members = [member("a=10.0.0.1"), member("b=10.0.0.2")];
        let tree =
            plan_members(&ca, &members, ApiVersion::V1beta4, KeyType::EcdsaP256, now).unwrap();
        let paths: Vec<String> = tree.iter().map(|(p, _)| p.display().to_string()).collect();
        assert_eq!(paths.len(), 2 * 10);
        for p in [
            "a/kubeadmcfg.yaml",
            "a/pki/etcd/ca.crt",
            "b/pki/apiserver-etcd-client.key",
            "b/pki/etcd/healthcheck-client.crt",
        ] {
            assert!(paths.contains(&p.to_string()), "{p} missing from {paths:?}");
        }
        assert!(!paths.iter().any(|p| p.ends_with("ca.key")));
        for (p, f) in tree.iter() {
            let want = if p.extension().is_some_and(|e| e == "key") {
                0o600
            } else {
                0o644
            };
            assert_eq!(f.mode, want, "{}", p.display());
        }
    }
}
