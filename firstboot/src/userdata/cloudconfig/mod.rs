//! `#cloud-config` compiled to a [`Plan`], following cloud-init's documented semantics for the
//! keys kiln implements; every other key is named in a warning, never silently dropped.
//!
//! - [`write_files`]: the `write_files` key.
//! - [`accounts`]: `users`, `groups`, top-level `ssh_authorized_keys`.
//! - [`system`]: `hostname`/`fqdn`/`preserve_hostname`/`manage_etc_hosts`, `ntp`, `mounts`.
//! - [`commands`]: `bootcmd`, `runcmd`.

mod accounts;
mod aliases;
mod commands;
mod system;
mod write_files;

use serde_yaml_ng::{Mapping, Value};

use super::budget::Budget;
use super::error::{Result, UserDataError};
use super::inputs::Inputs;
use crate::plan::Plan;

/// Keys this module compiles.
const HANDLED: [&str; 14] = [
    "write_files",
    "users",
    "groups",
    "ssh_authorized_keys",
    "hostname",
    "fqdn",
    "preserve_hostname",
    "prefer_fqdn_over_hostname",
    "manage_etc_hosts",
    "ntp",
    "mounts",
    "bootcmd",
    "runcmd",
    "merge_how",
];

/// Parses the YAML of a cloud-config part; an empty document is an empty mapping. What its
/// aliases add when expanded is charged to `budget` before the document is built.
pub fn parse_yaml(text: &str, budget: &Budget, origin: &str) -> Result<Value> {
    aliases::charge_expansion(text, budget, origin)?;
    // No text rewriting for YAML 1.1's octal `0644`: the parser keeps a leading-zero scalar
    // as the string "0644", which `write_files` reads as octal, as cloud-init does.
    let doc: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| UserDataError::new(origin, format!("invalid cloud-config YAML: {e}")))?;
    match doc {
        Value::Null => Ok(Value::Mapping(Mapping::new())),
        Value::Mapping(_) => Ok(doc),
        _ => Err(UserDataError::new(
            origin,
            "a cloud-config document must be a mapping of keys",
        )),
    }
}

/// Compiles a (merged) cloud-config document; what it decodes and plans is charged to
/// `budget`.
pub fn compile(doc: &Value, inputs: &Inputs<'_>, budget: &Budget) -> Result<Plan> {
    let map = doc.as_mapping().cloned().unwrap_or_default();
    let mut plan = Plan::default();
    for key in map.keys() {
        let name = key.as_str().unwrap_or("<non-string key>");
        if !HANDLED.contains(&name) {
            plan.warnings.push(format!(
                "cloud-config key `{name}` is not supported by kiln; ignored"
            ));
        }
    }
    let get = |k: &str| map.get(k).filter(|v| !v.is_null());
    if let Some(v) = get("write_files") {
        plan.nodes.extend(write_files::compile(v, budget)?);
    }
    accounts::compile(
        get("groups"),
        get("users"),
        get("ssh_authorized_keys"),
        &mut plan,
    )?;
    system::hostname(&map, &mut plan)?;
    if let Some(v) = get("ntp") {
        system::ntp(v, inputs.root_has, &mut plan)?;
    }
    if let Some(v) = get("mounts") {
        system::mounts(v, &mut plan)?;
    }
    if let Some(v) = get("bootcmd") {
        plan.commands
            .extend(commands::compile(v, "bootcmd", crate::plan::Phase::Boot)?);
    }
    if let Some(v) = get("runcmd") {
        plan.commands
            .extend(commands::compile(v, "runcmd", crate::plan::Phase::Run)?);
    }
    Ok(plan)
}

/// A string value, or a YAML scalar rendered as a string.
fn scalar(v: &Value, field: &str) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(UserDataError::new(field, "expected a string")),
    }
}

/// A boolean, accepting cloud-init's YAML 1.1 spellings in strings.
fn boolean(v: Option<&Value>, field: &str) -> Result<bool> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "y" => Ok(true),
            "false" | "no" | "off" | "n" => Ok(false),
            _ => Err(UserDataError::new(
                field,
                format!("{s:?} is not true or false"),
            )),
        },
        Some(_) => Err(UserDataError::new(field, "expected true or false")),
    }
}

/// A list of strings from a YAML list or a comma-separated string (cloud-init accepts both).
fn string_list(v: &Value, field: &str) -> Result<Vec<String>> {
    match v {
        Value::Null => Ok(vec![]),
        Value::String(s) => Ok(s
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect()),
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| scalar(item, &format!("{field}[{i}]")))
            .collect(),
        _ => Err(UserDataError::new(
            field,
            "expected a list or a comma-separated string",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userdata::budget::Limits;
    use crate::userdata::resource::NoNetwork;

    pub(super) fn compile_text(text: &str) -> Result<Plan> {
        let budget = Budget::new(Limits::default());
        let doc = parse_yaml(text, &budget, "part 1")?;
        let metadata = serde_json::json!({});
        compile(
            &doc,
            &Inputs {
                metadata: &metadata,
                fetcher: &NoNetwork,
                root_has: &|_| false,
                limits: Limits::default(),
            },
            &budget,
        )
    }

    #[test]
    fn unsupported_keys_warn_by_name() {
        let plan = compile_text("#cloud-config\npackages: [vim]\napt: {}\n").unwrap();
        assert_eq!(plan.warnings.len(), 2);
        assert!(
            plan.warnings[0].contains("`packages`"),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn invalid_yaml_names_the_part() {
        let err = compile_text("#cloud-config\na: [\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("part 1: invalid cloud-config YAML"),
            "{err}"
        );
        let err = compile_text("#cloud-config\n- a\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be a mapping"), "{err}");
    }

    #[test]
    fn aliased_big_strings_are_refused_before_expansion() {
        let big = "x".repeat(1 << 20);
        let users = "  - {name: u, gecos: *big}\n".repeat(5000);
        let text = format!("#cloud-config\nbootcmd: [&big {big}]\nusers:\n{users}");
        let err = compile_text(&text).unwrap_err();
        assert_eq!(err.field, "part 1");
        assert!(
            err.message.contains("yaml-alias-bytes budget"),
            "{}",
            err.message
        );
    }
}
