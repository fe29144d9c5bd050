//! Per-run budgets for compiling user-data, so a few hundred kilobytes of input cannot make
//! kiln decode gigabytes, plan millions of files, or render a template for ever.
//!
//! [`Limits`] are the configured ceilings; one [`Budget`] is created per compile (per run) and
//! passed to everything that decodes, so the totals add up across resources, parts and
//! `write_files` entries. A single resource also keeps its own cap
//! ([`super::resource::MAX_RESOURCE_BYTES`]). Exceeding a budget is an error naming the field,
//! the budget and how to raise it: `--userdata-limit NAME=VALUE` on `kiln-firstboot apply`,
//! `render` and `run`.

use std::cell::Cell;
use std::fmt;

use super::error::{Result, UserDataError};

/// The command-line option that raises a budget, quoted in every budget error.
pub const OPTION: &str = "--userdata-limit";

/// One budget of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Bytes produced by decoding: `data:` URLs, fetched resources, base64, gzip, MIME part
    /// bodies and rendered templates, added up over the whole run.
    DecodedBytes,
    /// Files, directories and links the plan writes (Ignition `storage`, `write_files`).
    Files,
    /// Leaf parts of MIME multipart user-data.
    MimeParts,
    /// minijinja fuel for all templates of the run: about one per instruction and one per 64
    /// bytes of data a template creates, so it bounds both time and memory.
    JinjaFuel,
    /// Bytes that YAML aliases add to cloud-config documents when they are expanded (the
    /// document's own text is free).
    YamlAliasBytes,
}

impl Limit {
    /// Every budget, in the order of [`Limits`].
    pub const ALL: [Limit; 5] = [
        Limit::DecodedBytes,
        Limit::Files,
        Limit::MimeParts,
        Limit::JinjaFuel,
        Limit::YamlAliasBytes,
    ];

    /// The name used in errors and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Limit::DecodedBytes => "decoded-bytes",
            Limit::Files => "files",
            Limit::MimeParts => "mime-parts",
            Limit::JinjaFuel => "jinja-fuel",
            Limit::YamlAliasBytes => "yaml-alias-bytes",
        }
    }

    /// The default ceiling.
    pub fn default_value(self) -> u64 {
        match self {
            // Two resources at the per-resource cap; a node has the RAM to hold them.
            Limit::DecodedBytes => 512 << 20,
            Limit::Files => 10_000,
            Limit::MimeParts => 1_000,
            // About a second of rendering, or 64 MiB of template data.
            Limit::JinjaFuel => 1_000_000,
            Limit::YamlAliasBytes => 16 << 20,
        }
    }

    fn is_bytes(self) -> bool {
        matches!(self, Limit::DecodedBytes | Limit::YamlAliasBytes)
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The ceilings of one run's budgets; [`Default`] is [`Limit::default_value`] for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    values: [u64; Limit::ALL.len()],
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            values: Limit::ALL.map(Limit::default_value),
        }
    }
}

impl Limits {
    /// The ceiling of `limit`.
    pub fn get(&self, limit: Limit) -> u64 {
        self.values[limit.index()]
    }

    /// Sets the ceiling of `limit`.
    pub fn set(&mut self, limit: Limit, value: u64) {
        self.values[limit.index()] = value;
    }

    /// Parses one `NAME=VALUE` setting, e.g. `decoded-bytes=1GiB` or `files=20000`; byte
    /// budgets accept the suffixes `KiB`, `MiB` and `GiB`.
    pub fn parse_setting(text: &str) -> std::result::Result<(Limit, u64), String> {
        let (name, value) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))?;
        let limit = Limit::ALL
            .into_iter()
            .find(|l| l.name() == name.trim())
            .ok_or_else(|| {
                let names: Vec<_> = Limit::ALL.iter().map(|l| l.name()).collect();
                format!("unknown budget {name:?}; one of {}", names.join(", "))
            })?;
        let value = value.trim();
        let (digits, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
            Some(at) if limit.is_bytes() => value.split_at(at),
            _ => (value, ""),
        };
        let shift = match unit.trim() {
            "" => 0,
            "KiB" => 10,
            "MiB" => 20,
            "GiB" => 30,
            other => return Err(format!("unknown unit {other:?}; use KiB, MiB or GiB")),
        };
        let number: u64 = digits
            .parse()
            .map_err(|_| format!("{value:?} is not a whole number"))?;
        let value = number
            .checked_mul(1 << shift)
            .ok_or_else(|| format!("{value:?} is too large"))?;
        Ok((limit, value))
    }
}

/// What one run has used of its [`Limits`]; every decoder charges it before or as it works.
#[derive(Debug)]
pub struct Budget {
    limits: Limits,
    used: [Cell<u64>; Limit::ALL.len()],
}

impl Budget {
    /// A fresh budget with `limits`.
    pub fn new(limits: Limits) -> Self {
        Budget {
            limits,
            used: Default::default(),
        }
    }

    /// What is left of `limit`.
    pub fn left(&self, limit: Limit) -> u64 {
        self.limits
            .get(limit)
            .saturating_sub(self.used[limit.index()].get())
    }

    /// Uses `amount` of `limit` for `field`; an error naming the budget if it is not left.
    pub fn charge(&self, limit: Limit, amount: u64, field: &str) -> Result<()> {
        if amount > self.left(limit) {
            return Err(self.exceeded(limit, field));
        }
        let used = &self.used[limit.index()];
        used.set(used.get() + amount);
        Ok(())
    }

    /// The error for `field` going over `limit`.
    pub fn exceeded(&self, limit: Limit, field: &str) -> UserDataError {
        let ceiling = self.limits.get(limit);
        let shown = if limit.is_bytes() {
            format!("{ceiling} bytes ({})", human_bytes(ceiling))
        } else {
            ceiling.to_string()
        };
        let unit = if limit.is_bytes() { "SIZE" } else { "N" };
        UserDataError::new(
            field,
            format!(
                "user-data exceeds the {limit} budget of {shown} per run; \
                 raise it with {OPTION} {limit}={unit}"
            ),
        )
    }
}

/// `n` in the largest binary unit that divides it, e.g. `512 MiB`.
fn human_bytes(n: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_with_units() {
        assert_eq!(
            Limits::parse_setting("decoded-bytes=1GiB"),
            Ok((Limit::DecodedBytes, 1 << 30))
        );
        assert_eq!(
            Limits::parse_setting("yaml-alias-bytes=12345"),
            Ok((Limit::YamlAliasBytes, 12345))
        );
        assert_eq!(
            Limits::parse_setting("files=20000"),
            Ok((Limit::Files, 20000))
        );
        for bad in [
            "files",
            "nope=1",
            "files=1MiB",
            "decoded-bytes=1TB",
            "jinja-fuel=-1",
        ] {
            assert!(Limits::parse_setting(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn charges_add_up_and_errors_say_how_to_raise() {
        let mut limits = Limits::default();
        limits.set(Limit::DecodedBytes, 2 << 20);
        let budget = Budget::new(limits);
        budget.charge(Limit::DecodedBytes, 1 << 20, "a").unwrap();
        budget.charge(Limit::DecodedBytes, 1 << 20, "b").unwrap();
        assert_eq!(budget.left(Limit::DecodedBytes), 0);
        let err = budget.charge(Limit::DecodedBytes, 1, "c").unwrap_err();
        assert_eq!(
            err.to_string(),
            "c: user-data exceeds the decoded-bytes budget of 2097152 bytes (2 MiB) per run; \
             raise it with --userdata-limit decoded-bytes=SIZE"
        );
        let err = budget
            .charge(Limit::Files, 10_001, "write_files")
            .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("files budget of 10000 per run; raise it with --userdata-limit files=N"),
            "{err}"
        );
    }
}
