//! The cluster PKI as kubeadm lays it out in /etc/kubernetes/pki, made offline.
//!
//! - [`key`]: key types and kubeadm's PEM formats.
//! - [`cert`]: certificate profiles (CA, server, client) and loading a CA from disk.
//! - [`cluster`]: the shared cluster CAs and service-account key (`kiln pki init`).
//! - [`etcd`]: one certificate set per external etcd member (`kiln pki etcd`).
//! - [`signing`]: checking a code-signing key and certificate (`kiln build --signing-key`).

pub mod cert;
pub mod cluster;
pub mod etcd;
pub mod key;
pub mod signing;

pub use cert::{ca_hash, Ca, CertSpec, Usage};
pub use key::{KeyType, PrivateKey};
pub use signing::{check_signing_pair, SigningCert};
