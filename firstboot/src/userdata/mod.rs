//! User-data: recognise the format, and compile it into a [`crate::plan::Plan`].
//!
//! - [`detect`]: gzip, MIME multipart, Ignition, cloud-config, jinja templates, scripts.
//! - [`ignition`]: Ignition 3.x (with `ignition_checks`: Ignition's duplicate and path rules).
//! - [`cloudconfig`]: cloud-init's `#cloud-config`.
//! - [`jinja`]: `## template: jinja` rendering with cloud-init's instance-data names.
//! - [`resource`]: `data:` URLs, remote fetches, hashes, gzip.
//! - [`merge`]: Ignition config merges.
//! - [`merge_how`]: cloud-config part merges (cloud-init's `merge_how` / `Merge-Type`).
//! - [`remote`]: `http(s)` resources through the retrying HTTP client.
//! - [`budget`]: per-run budgets (decoded bytes, files, MIME parts, template fuel, YAML alias
//!   expansion) that everything decoding charges.

pub mod budget;
pub mod cloudconfig;
pub mod detect;
pub mod error;
pub mod ignition;
mod ignition_checks;
pub mod inputs;
pub mod jinja;
pub mod merge;
pub mod merge_how;
pub mod remote;
pub mod resource;

pub use budget::{Budget, Limit, Limits};
pub use detect::compile;
pub use error::{Result, UserDataError};
pub use inputs::Inputs;
