//! Preparing the node itself before kubeadm runs.
//!
//! - [`containerd`]: containerd configuration and CRI readiness.
//! - [`preflight`]: kubeadm's checks, natively, each with a fix.

pub mod containerd;
pub mod preflight;
