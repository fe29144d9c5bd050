//! `kiln build`: a recipe (images/*.toml) becomes a plan (every artifact with its URL and where its
//! checksum comes from, every image to pull, every output), then verified downloads and image
//! pulls into a content-addressed cache, content trees per architecture, and the outputs.
//!
//! Modules: `recipe` (the TOML format), `mirror` (`--mirror FROM=TO`), `cache` (content-addressed
//! store), `checksums` (kiln's independent kubeadm/kubelet/kubectl SHA-256s), `digest` (SHA-256 helpers), `fetch`/`http` (verified downloads), `images` (which
//! images, listed by the baked kubeadm or kiln's table), `oci` (pre-pulled images), `plan` (recipe → plan), `tree` and `units` (the content tree); packing the content
//! tree: `sysext` (extension-release, squashfs/erofs), `opt` (the /opt layout and its tar),
//! `sysupdate` (the transfer file), `manifest` (manifest.json, SHA256SUMS); `execute` runs it all.

pub mod cache;
pub mod checksums;
pub mod digest;
pub mod disk;
pub mod execute;
pub mod fetch;
pub mod http;
pub mod images;
pub mod manifest;
pub mod mirror;
pub mod oci;
pub mod opt;
pub mod outputs;
pub mod plan;
pub mod recipe;
pub mod sysext;
pub mod sysupdate;
pub mod tree;
pub mod units;
