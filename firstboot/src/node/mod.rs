//! Preparing the node itself before kubeadm runs.
//!
//! - [`cluster`]: post-init through the Kubernetes API (CNI manifest, Ready wait).
//! - [`containerd`]: containerd configuration and CRI readiness.
//! - [`endpoint`]: waiting for the control plane before a join.
//! - [`join_service`]: asking the join service for a short-lived token.
//! - [`images`]: importing pre-pulled images, verified, into containerd.
//! - [`kubeadm`]: running kubeadm with reset and bounded retries.
//! - [`kubeadm_config`]: which kubeadm config the node uses (a kiln node config, rendered, or
//!   Cluster API's, as given).
//! - [`preflight`]: kubeadm's checks, natively, each with a fix.
//! - [`store`]: containerd's image store checked against the baked manifest, completed.

pub mod cluster;
pub mod containerd;
pub mod endpoint;
pub mod images;
pub mod join_service;
pub mod kubeadm;
pub mod kubeadm_config;
pub mod preflight;
pub mod store;
