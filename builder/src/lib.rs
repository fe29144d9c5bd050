//! kiln, the operator's tool, as a library: `bake` turns a recipe into node images (plan, verified
//! downloads, pre-pulled images, content trees, outputs); `cli` is the command line over it and
//! kiln-core (PKI, tokens, kubeadm configuration).

pub mod bake;
mod cli;

pub use cli::Cli;
