//! `kiln build`: a recipe (images/*.toml) becomes a plan (every artifact with its URL and where
//! its checksum comes from, every image to pull, every output), then verified downloads and image
//! pulls into a content-addressed cache, content trees per architecture, and the outputs.
//!
//! Modules: `recipe` (the TOML format), `plan` (recipe → plan), `images` (which images, listed
//! by the baked kubeadm or kiln's table), `checksums` (kiln's independent kubeadm/kubelet/kubectl
//! SHA-256s), `mirror` (`--mirror FROM=TO`), `cache` (content-addressed store; SHA-256 is
//! `kiln_core::digest`), `fetch`/`http` (verified downloads), `transfer` (the download pool and
//! copy loop they share with `oci`), `oci` (pre-pulled images), `tree` and `units` (the content
//! tree), `outputs` (the formats: sysext, /opt tar, disk image, PXE, sysupdate transfer,
//! manifest.json and SHA256SUMS), `signing` (`--signing-key`, `--gpg-key`: checked before any
//! download), `pack` (content trees → outputs); `execute` runs it all, timing its `phases`; `report` is
//! `--report`.

pub mod arch;
pub mod cache;
pub mod checksums;
pub mod content;
pub mod execute;
pub mod fetch;
pub mod http;
pub mod images;
pub mod mirror;
pub mod oci;
pub mod outputs;
pub mod pack;
pub mod phases;
pub mod plan;
pub mod pool;
pub mod recipe;
pub mod repart;
pub mod report;
pub mod signing;
pub mod staging;
pub mod transfer;
pub mod tree;
pub mod units;
