//! Preparing the node itself before kubeadm runs.
//!
//! - [`preflight`]: kubeadm's checks, natively, each with a fix.

pub mod preflight;
