//! cloud-config `groups`, `users` and top-level `ssh_authorized_keys`. Users' keys go to
//! `~/.ssh/authorized_keys`, `sudo` rules to /etc/sudoers.d, as cloud-init does.

use serde_yaml_ng::Value;

use super::{boolean, scalar, string_list};
use crate::plan::{Group, KeyFile, Plan, User};
use crate::userdata::error::{Result, UserDataError};

/// User keys kiln ignores with a warning.
const IGNORED_USER_KEYS: [&str; 7] = [
    "plain_text_passwd",
    "ssh_import_id",
    "ssh_redirect_user",
    "selinux_user",
    "expiredate",
    "inactive",
    "doas",
];

/// User keys kiln implements.
const USER_KEYS: [&str; 16] = [
    "name",
    "gecos",
    "groups",
    "primary_group",
    "homedir",
    "shell",
    "sudo",
    "lock_passwd",
    "passwd",
    "hashed_passwd",
    "ssh_authorized_keys",
    "system",
    "uid",
    "no_create_home",
    "no_user_group",
    "create_groups",
];

/// Compiles `groups`, `users` and `ssh_authorized_keys` into `plan`.
pub fn compile(
    groups: Option<&Value>,
    users: Option<&Value>,
    keys: Option<&Value>,
    plan: &mut Plan,
) -> Result<()> {
    if let Some(groups) = groups {
        plan.groups.extend(compile_groups(groups)?);
    }
    if let Some(users) = users {
        let list = match users {
            Value::Sequence(items) => items.clone(),
            Value::String(_) => string_list(users, "users")?
                .into_iter()
                .map(Value::String)
                .collect(),
            _ => return Err(UserDataError::new("users", "expected a list of users")),
        };
        for (i, item) in list.iter().enumerate() {
            if let Some(user) = compile_user(item, &format!("users[{i}]"), &mut plan.warnings)? {
                plan.users.push(user);
            }
        }
    }
    if keys.is_some() {
        plan.warnings.push(
            "cloud-config key `ssh_authorized_keys` (keys of the distribution's default user) is not supported: \
             kiln images have no default user; put the keys under a named entry in `users`"
                .into(),
        );
    }
    Ok(())
}

fn compile_groups(value: &Value) -> Result<Vec<Group>> {
    let items = match value {
        Value::Sequence(items) => items.clone(),
        Value::String(_) => string_list(value, "groups")?
            .into_iter()
            .map(Value::String)
            .collect(),
        Value::Mapping(_) => vec![value.clone()],
        _ => return Err(UserDataError::new("groups", "expected a list of groups")),
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("groups[{i}]");
        match item {
            Value::Mapping(m) => {
                for (name, members) in m {
                    out.push(Group {
                        name: scalar(name, &field)?,
                        members: string_list(members, &format!("{field}.members"))?,
                        ..Group::default()
                    });
                }
            }
            other => out.push(Group {
                name: scalar(other, &field)?,
                ..Group::default()
            }),
        }
    }
    Ok(out)
}

fn compile_user(item: &Value, field: &str, warnings: &mut Vec<String>) -> Result<Option<User>> {
    let map = match item {
        Value::String(s) if s == "default" => {
            warnings.push(format!(
                "{field}: the distribution's `default` user is not created by kiln"
            ));
            return Ok(None);
        }
        Value::String(name) => {
            return Ok(Some(User {
                name: name.clone(),
                key_file: KeyFile::AuthorizedKeys,
                ..User::default()
            }))
        }
        Value::Mapping(m) => m,
        _ => {
            return Err(UserDataError::new(
                field,
                "expected a user name or a mapping",
            ))
        }
    };
    let get = |k: &str| map.get(k).filter(|v| !v.is_null());
    let text = |k: &str| {
        get(k)
            .map(|v| scalar(v, &format!("{field}.{k}")))
            .transpose()
    };
    let name =
        text("name")?.ok_or_else(|| UserDataError::new(format!("{field}.name"), "missing name"))?;
    for key in map.keys().filter_map(|k| k.as_str()) {
        if IGNORED_USER_KEYS.contains(&key) || !USER_KEYS.contains(&key) {
            warnings.push(format!("{field}.{key} is not supported by kiln; ignored"));
        }
    }
    let uid = get("uid")
        .map(|v| {
            scalar(v, &format!("{field}.uid"))?
                .parse::<u32>()
                .map_err(|_| UserDataError::new(format!("{field}.uid"), "not a valid uid"))
        })
        .transpose()?;
    let sudo = match get("sudo") {
        None | Some(Value::Bool(false)) => vec![],
        Some(v) => string_list_or_single(v, &format!("{field}.sudo"))?,
    };
    Ok(Some(User {
        name,
        uid,
        gecos: text("gecos")?,
        home_dir: text("homedir")?,
        no_create_home: boolean(get("no_create_home"), &format!("{field}.no_create_home"))?,
        primary_group: text("primary_group")?,
        groups: get("groups")
            .map(|v| string_list(v, &format!("{field}.groups")))
            .transpose()?
            .unwrap_or_default(),
        no_user_group: boolean(get("no_user_group"), &format!("{field}.no_user_group"))?,
        shell: text("shell")?,
        system: boolean(get("system"), &format!("{field}.system"))?,
        password_hash: text("hashed_passwd")?.or(text("passwd")?),
        ssh_authorized_keys: get("ssh_authorized_keys")
            .map(|v| string_list_or_single(v, &format!("{field}.ssh_authorized_keys")))
            .transpose()?
            .unwrap_or_default(),
        key_file: KeyFile::AuthorizedKeys,
        sudo,
        lock_password: match get("lock_passwd") {
            None => true,
            v => boolean(v, &format!("{field}.lock_passwd"))?,
        },
        create_groups: true,
    }))
}

/// A list, or one string taken whole (sudo rules and keys contain commas).
fn string_list_or_single(v: &Value, field: &str) -> Result<Vec<String>> {
    match v {
        Value::Sequence(_) => string_list(v, field),
        other => Ok(vec![scalar(other, field)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::compile_text;

    #[test]
    fn users_groups_and_keys() {
        let plan = compile_text(
            "#cloud-config\ngroups: [admins: [root], ops]\nusers:\n  - default\n  - name: core\n    groups: admins, docker\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    ssh_authorized_keys: [ssh-ed25519 AAAA a]\n    uid: 1500\n",
        )
        .unwrap();
        assert_eq!(
            plan.groups
                .iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>(),
            ["admins", "ops"]
        );
        assert_eq!(plan.groups[0].members, ["root"]);
        let core = &plan.users[0];
        assert_eq!((core.name.as_str(), core.uid), ("core", Some(1500)));
        assert_eq!(core.groups, ["admins", "docker"]);
        assert_eq!(core.sudo, ["ALL=(ALL) NOPASSWD:ALL"]);
        assert_eq!(core.ssh_authorized_keys.len(), 1);
        assert!(
            plan.warnings.iter().any(|w| w.contains("default")),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn user_errors_name_the_field() {
        let err = compile_text("#cloud-config\nusers:\n  - gecos: x\n").unwrap_err();
        assert_eq!(err.field, "users[0].name");
        let err = compile_text("#cloud-config\nusers:\n  - {name: a, uid: abc}\n").unwrap_err();
        assert_eq!(err.field, "users[0].uid");
    }
}
