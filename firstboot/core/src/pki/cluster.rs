//! The cluster-wide material kubeadm accepts pre-made and the HA guide copies between
//! control-plane nodes: `ca`, `front-proxy-ca`, `etcd/ca` and the service-account key pair.

use time::OffsetDateTime;

use super::cert::Ca;
use super::key::{generate_keys, KeyType, PrivateKey};
use crate::fsutil::{FileTree, MODE_PUBLIC, MODE_SECRET};
use crate::Result;

/// Common name of the cluster CA (kubeadm `ca`).
pub const CA_NAME: &str = "kubernetes";
/// Common name of the front-proxy CA (kubeadm `front-proxy-ca`).
pub const FRONT_PROXY_CA_NAME: &str = "front-proxy-ca";
/// Common name of the etcd CA (kubeadm `etcd/ca`).
pub const ETCD_CA_NAME: &str = "etcd-ca";

/// The three cluster CAs and the service-account signing key.
#[derive(Debug)]
pub struct ClusterPki {
    /// `ca.crt`/`ca.key`.
    pub ca: Ca,
    /// `front-proxy-ca.crt`/`front-proxy-ca.key`.
    pub front_proxy_ca: Ca,
    /// `etcd/ca.crt`/`etcd/ca.key`.
    pub etcd_ca: Ca,
    /// `sa.key`/`sa.pub`.
    pub service_account: PrivateKey,
}

impl ClusterPki {
    /// Generates all of it with keys of `key_type` (kubeadm uses its `encryptionAlgorithm` for
    /// the service-account key too).
    pub fn generate(key_type: KeyType, now: OffsetDateTime) -> Result<Self> {
        let mut keys = generate_keys(key_type, 4)?.into_iter();
        let mut next = || {
            keys.next()
                .expect("generate_keys returns the count asked for")
        };
        Ok(ClusterPki {
            ca: Ca::generate(CA_NAME, next(), now)?,
            front_proxy_ca: Ca::generate(FRONT_PROXY_CA_NAME, next(), now)?,
            etcd_ca: Ca::generate(ETCD_CA_NAME, next(), now)?,
            service_account: next(),
        })
    }

    /// The files, named and laid out as in /etc/kubernetes/pki.
    pub fn files(&self) -> Result<FileTree> {
        let mut tree = FileTree::new();
        add_ca(&mut tree, "ca", &self.ca)?;
        add_ca(&mut tree, "front-proxy-ca", &self.front_proxy_ca)?;
        add_ca(&mut tree, "etcd/ca", &self.etcd_ca)?;
        tree.add("sa.key", self.service_account.to_pem()?, MODE_SECRET);
        tree.add("sa.pub", self.service_account.public_key_pem(), MODE_PUBLIC);
        Ok(tree)
    }
}

/// Plans `BASE.crt` (0644) and `BASE.key` (0600) for `ca`.
pub fn add_ca(tree: &mut FileTree, base: &str, ca: &Ca) -> Result<()> {
    tree.add(format!("{base}.crt"), ca.cert_pem(), MODE_PUBLIC);
    tree.add(format!("{base}.key"), ca.key().to_pem()?, MODE_SECRET);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_have_kubeadm_names_and_modes() {
        let pki = ClusterPki::generate(KeyType::EcdsaP256, OffsetDateTime::now_utc()).unwrap();
        let tree = pki.files().unwrap();
        let names: Vec<_> = tree
            .iter()
            .map(|(p, f)| (p.display().to_string(), f.mode))
            .collect();
        let expect = [
            ("ca.crt", 0o644),
            ("ca.key", 0o600),
            ("etcd/ca.crt", 0o644),
            ("etcd/ca.key", 0o600),
            ("front-proxy-ca.crt", 0o644),
            ("front-proxy-ca.key", 0o600),
            ("sa.key", 0o600),
            ("sa.pub", 0o644),
        ];
        assert_eq!(names, expect.map(|(n, m)| (n.to_string(), m)));
        let sa_pub = String::from_utf8(tree.get("sa.pub").unwrap().contents.clone()).unwrap();
        assert!(sa_pub.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    }
}
