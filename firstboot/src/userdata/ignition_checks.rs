//! The checks Ignition's config validation makes that the `ignition-config` crate does not:
//! each config (before it is merged with others) may name a path, unit, drop-in, user or group
//! once, list an SSH key or a supplementary group of one user once, and give paths fully
//! simplified (`/etc/a`, not `/etc//a`, `/etc/a/` or `/etc/./a`). Ignition refuses such a
//! config with "duplicate entry defined" / "path is not fully simplified"; so does kiln, naming
//! the entry.

use std::collections::HashMap;

use serde_json::Value;

use super::error::{Result, UserDataError};

/// Checks one parsed config (spec-3.x JSON); `field` prefixes entry names in errors.
pub fn check(config: &Value, field: &str) -> Result<()> {
    let name = |path: &str| match field {
        "$" => path.to_owned(),
        parent => format!("{parent} -> {path}"),
    };
    check_nodes(config, &name)?;
    let units = list(config, "systemd", "units");
    unique(&units, "name", &name("systemd.units"))?;
    for (i, unit) in units.iter().enumerate() {
        let dropins = list(unit, "dropins", "");
        unique(
            &dropins,
            "name",
            &name(&format!("systemd.units[{i}].dropins")),
        )?;
    }
    unique(
        &list(config, "passwd", "groups"),
        "name",
        &name("passwd.groups"),
    )?;
    let users = list(config, "passwd", "users");
    unique(&users, "name", &name("passwd.users"))?;
    for (i, user) in users.iter().enumerate() {
        for key in ["sshAuthorizedKeys", "groups"] {
            unique_values(
                &list(user, key, ""),
                &name(&format!("passwd.users[{i}].{key}")),
            )?;
        }
    }
    Ok(())
}

/// Files, directories and links share one namespace of paths.
fn check_nodes(config: &Value, name: &dyn Fn(&str) -> String) -> Result<()> {
    let mut seen: HashMap<&str, String> = HashMap::new();
    for kind in ["files", "directories", "links"] {
        for (i, entry) in list(config, "storage", kind).iter().enumerate() {
            let Some(path) = entry.get("path").and_then(Value::as_str) else {
                continue;
            };
            let here = name(&format!("storage.{kind}[{i}]"));
            if clean(path) != path {
                return Err(UserDataError::new(
                    format!("{here}.path"),
                    format!("{path:?} is not fully simplified; write {:?}", clean(path)),
                ));
            }
            if let Some(first) = seen.insert(path, here.clone()) {
                return Err(duplicate(&here, &format!("path {path:?}"), &first));
            }
        }
    }
    Ok(())
}

/// `section.key` of `value` (or `section` alone when `key` is empty) as a list.
fn list<'a>(value: &'a Value, section: &str, key: &str) -> Vec<&'a Value> {
    let mut v = value.get(section);
    if !key.is_empty() {
        v = v.and_then(|s| s.get(key));
    }
    v.and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// Entries of a keyed list must differ in `key`.
fn unique(entries: &[&Value], key: &str, field: &str) -> Result<()> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some(id) = entry.get(key).and_then(Value::as_str) else {
            continue;
        };
        if let Some(first) = seen.insert(id, i) {
            let what = format!("{key} {id:?}");
            return Err(duplicate(
                &format!("{field}[{i}]"),
                &what,
                &format!("{field}[{first}]"),
            ));
        }
    }
    Ok(())
}

/// A list of plain values must not repeat one (values are not quoted: SSH keys are long).
fn unique_values(values: &[&Value], field: &str) -> Result<()> {
    for (i, v) in values.iter().enumerate() {
        if let Some(first) = values[..i].iter().position(|w| w == v) {
            return Err(duplicate(
                &format!("{field}[{i}]"),
                "the same value",
                &format!("{field}[{first}]"),
            ));
        }
    }
    Ok(())
}

fn duplicate(field: &str, what: &str, first: &str) -> UserDataError {
    UserDataError::new(
        field,
        format!("duplicate entry: {what} is also given by {first}; Ignition refuses a config that repeats an entry"),
    )
}

/// Go's `filepath.Clean` for the paths Ignition checks.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if path.starts_with('/') => {
                parts.pop();
            }
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (path.starts_with('/'), joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(config: Value) -> UserDataError {
        check(&config, "$").unwrap_err()
    }

    #[test]
    fn go_clean() {
        for (path, cleaned) in [
            ("/etc/a", "/etc/a"),
            ("/etc//a", "/etc/a"),
            ("/etc/a/", "/etc/a"),
            ("/etc/./a", "/etc/a"),
            ("/../etc", "/etc"),
            ("/etc/x/../a", "/etc/a"),
            ("/", "/"),
        ] {
            assert_eq!(clean(path), cleaned, "{path}");
        }
    }

    #[test]
    fn one_path_one_entry_across_kinds() {
        let e = err(
            json!({"storage": {"files": [{"path": "/etc/a"}], "links": [{"path": "/etc/a", "target": "/x"}]}}),
        );
        assert_eq!(e.field, "storage.links[0]");
        assert!(e.message.contains("storage.files[0]"), "{e}");
        let e = err(json!({"storage": {"directories": [{"path": "/etc/a/"}]}}));
        assert_eq!(e.field, "storage.directories[0].path");
        assert!(e.message.contains("not fully simplified"), "{e}");
    }

    #[test]
    fn units_dropins_users_groups_keys() {
        let e = err(json!({"systemd": {"units": [{"name": "a.service"}, {"name": "a.service"}]}}));
        assert_eq!(e.field, "systemd.units[1]");
        let e = err(
            json!({"systemd": {"units": [{"name": "a.service", "dropins": [{"name": "x.conf"}, {"name": "x.conf"}]}]}}),
        );
        assert_eq!(e.field, "systemd.units[0].dropins[1]");
        let e = err(json!({"passwd": {"users": [{"name": "a"}, {"name": "a"}]}}));
        assert_eq!(e.field, "passwd.users[1]");
        let e = err(json!({"passwd": {"groups": [{"name": "g"}, {"name": "g"}]}}));
        assert_eq!(e.field, "passwd.groups[1]");
        let e = err(
            json!({"passwd": {"users": [{"name": "a", "sshAuthorizedKeys": ["ssh-ed25519 K", "ssh-ed25519 K"]}]}}),
        );
        assert_eq!(e.field, "passwd.users[0].sshAuthorizedKeys[1]");
        assert!(!e.message.contains("ssh-ed25519"), "{e}");
        let e = err(json!({"passwd": {"users": [{"name": "a", "groups": ["g", "g"]}]}}));
        assert_eq!(e.field, "passwd.users[0].groups[1]");
        assert!(check(
            &json!({"passwd": {"users": [{"name": "a"}, {"name": "b"}]}}),
            "$"
        )
        .is_ok());
    }

    #[test]
    fn merged_children_are_named_by_their_reference() {
        let e = check(
            &json!({"systemd": {"units": [{"name": "a"}, {"name": "a"}]}}),
            "ignition.config.merge[0]",
        )
        .unwrap_err();
        assert_eq!(e.field, "ignition.config.merge[0] -> systemd.units[1]");
    }
}
