//! User-data: recognise the format, and compile it into a [`crate::plan::Plan`].
//!
//! - [`detect`]: gzip, MIME multipart, Ignition, cloud-config, jinja templates, scripts.
//! - [`ignition`]: Ignition 3.x.
//! - [`cloudconfig`]: cloud-init's `#cloud-config`.
//! - [`jinja`]: `## template: jinja` rendering with cloud-init's instance-data names.
//! - [`resource`]: `data:` URLs, remote fetches, hashes, gzip.
//! - [`merge`]: Ignition config merges and cloud-config part merges.
//! - [`remote`]: `http(s)` resources through the retrying HTTP client.
//! - [`budget`]: per-run budgets (decoded bytes, files, MIME parts, template fuel, YAML alias
//!   expansion) that everything decoding charges.

pub mod budget;
pub mod cloudconfig;
pub mod detect;
pub mod error;
pub mod ignition;
pub mod inputs;
pub mod jinja;
pub mod merge;
pub mod remote;
pub mod resource;

pub use budget::{Budget, Limit, Limits};
pub use detect::compile;
pub use error::{Result, UserDataError};
pub use inputs::Inputs;
