//! `kiln build`: a recipe (images/*.toml) becomes a plan (every artifact with its URL and where its
//! checksum comes from, every image to pull, every output), then verified downloads and image
//! pulls into a content-addressed cache, content trees per architecture, and the outputs.
//!
//! Modules: `recipe` (the TOML format), `mirror` (`--mirror FROM=TO`), `cache` (content-addressed
//! store), `digest` (SHA-256 helpers), `oci` (pre-pulled images).

pub mod cache;
pub mod digest;
pub mod execute;
pub mod fetch;
pub mod http;
pub mod mirror;
pub mod oci;
pub mod plan;
pub mod recipe;
pub mod tree;
pub mod units;
