//! The kubeadm kinds kiln reads and writes — InitConfiguration, ClusterConfiguration,
//! JoinConfiguration — with kubeadm's exact JSON field names (kubeadm's
//! `cmd/kubeadm/app/apis/kubeadm/{v1beta3,v1beta4}/types.go`).
//!
//! One set of types covers both API versions: fields that exist in only one version are
//! documented so, and [`InitConfiguration::check`] (and the others) reject them in the other
//! version, as kubeadm's strict decoding does. Unknown fields are rejected by serde.

mod check;
mod cluster;
mod init;
mod join;

pub use cluster::*;
pub use init::*;
pub use join::*;

pub use crate::nodeconfig::Taint;
