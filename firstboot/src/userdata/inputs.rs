//! What compiling user-data needs besides its bytes: metadata, a fetcher, a view of the root,
//! the run's budgets.

use serde_json::Value;

use super::budget::Limits;
use super::resource::Fetcher;

/// Everything the engine needs besides the user-data bytes.
pub struct Inputs<'a> {
    /// Datasource metadata (kiln's metadata.json), for jinja templates.
    pub metadata: &'a Value,
    /// Fetches remote resources.
    pub fetcher: &'a dyn Fetcher,
    /// Answers "does this absolute path exist in the target root?" (cloud-config `ntp` picks
    /// its client by what is installed).
    pub root_has: &'a dyn Fn(&str) -> bool,
    /// The ceilings of the run's budgets (decoded bytes, files, template fuel, ...).
    pub limits: Limits,
}
