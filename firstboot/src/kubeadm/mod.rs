//! kubeadm on the node: which kubeadm config this node uses and (later) running kubeadm.
//!
//! - [`input`]: find the node config or Cluster API's kubeadm config (in the user-data plan or
//!   the root), pick the kubeadm version, and render the config (kiln-core's
//!   `kubeadm::render`).

pub mod input;
