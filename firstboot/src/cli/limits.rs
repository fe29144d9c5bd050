//! `--userdata-limit NAME=VALUE`: the one way to change a per-run user-data budget, shared by
//! `apply`, `render` and `run`.

use clap::Args;
use kiln_firstboot::userdata::{Limit, Limits};

/// The per-run user-data budgets.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Changes a per-run user-data budget (repeatable), e.g. `decoded-bytes=1GiB`. Budgets and
    /// defaults: decoded-bytes=512MiB (bytes produced by data: URLs, fetches, base64, gzip,
    /// MIME parts and templates, added up), files=10000 (files, directories and links
    /// written), mime-parts=1000, jinja-fuel=1000000 (template instructions plus one per 64
    /// bytes a template creates), yaml-alias-bytes=16MiB (bytes YAML aliases add when
    /// expanded). One resource is also capped at 256 MiB.
    #[arg(
        long = "userdata-limit",
        value_name = "NAME=VALUE",
        value_parser = Limits::parse_setting
    )]
    userdata_limit: Vec<(Limit, u64)>,
}

impl LimitArgs {
    /// The defaults with the given settings applied, later ones winning.
    pub fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        for &(limit, value) in &self.userdata_limit {
            limits.set(limit, value);
        }
        limits
    }
}
