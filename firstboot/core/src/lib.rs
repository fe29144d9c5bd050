//! kiln-core: the vocabulary both kiln programs share.
//!
//! The operator's tool (`kiln`) and the node agent (`kiln-firstboot`) both need the cluster PKI,
//! bootstrap tokens, kubeadm configuration types and durable file writes. They live here, without
//! any image-building dependency, so the node agent stays small. So do the layers both use, one
//! place each: [`retry`] (the retry policy), [`http`] (the HTTP client and what is transient),
//! [`command`] (running programs), [`digest`] (SHA-256, SHA256SUMS), [`fsutil`] (durable writes,
//! publishing), [`inroot`] (reading inside a root without leaving it), [`duration`] (Go
//! durations), [`epoch`] (SOURCE_DATE_EPOCH), [`redact`] and [`url`] (what text may show: no
//! secrets, no quoted values, no control characters).

pub mod cli_main;
pub mod command;
pub mod containerd;
pub mod digest;
pub mod duration;
pub mod epoch;
pub mod error;
pub mod fsutil;
pub mod http;
pub mod images;
pub mod inroot;
pub mod kernel;
pub mod kubeadm;
pub mod kubeconfig;
pub mod names;
pub mod nodeconfig;
pub mod pki;
pub mod redact;
pub mod retry;
pub mod secret;
pub mod sparse;
pub mod tls;
pub mod token;
pub mod tsv;
pub mod url;
pub mod version;

pub use error::{Error, Result};
