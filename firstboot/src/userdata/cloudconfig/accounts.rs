//! cloud-config `groups`, `users` and top-level `ssh_authorized_keys`. Users' keys go to
//! `~/.ssh/authorized_keys`, `sudo` rules to /etc/sudoers.d, as cloud-init does.

use serde_yaml_ng::{Mapping, Value};

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

/// One `users` entry: `default` (skipped with a warning), a bare name, or a mapping.
fn compile_user(item: &Value, field: &str, warnings: &mut Vec<String>) -> Result<Option<User>> {
    match item {
        Value::String(s) if s == "default" => {
            warnings.push(format!(
                "{field}: the distribution's `default` user is not created by kiln"
            ));
            Ok(None)
        }
        Value::String(name) => Ok(Some(User {
            name: name.clone(),
            key_file: KeyFile::AuthorizedKeys,
            ..User::default()
        })),
        Value::Mapping(map) => UserFields { map, field }.compile(warnings).map(Some),
        _ => Err(UserDataError::new(
            field,
            "expected a user name or a mapping",
        )),
    }
}

/// The keys of one user mapping; errors name the key under `field` (`users[0].uid`).
struct UserFields<'a> {
    map: &'a Mapping,
    field: &'a str,
}

impl UserFields<'_> {
    /// The user, its values read in the order their errors are reported.
    fn compile(&self, warnings: &mut Vec<String>) -> Result<User> {
        let name = (self.text("name")?)
            .ok_or_else(|| UserDataError::new(self.at("name"), "missing name"))?;
        self.warn_unsupported(warnings);
        let uid = self.uid()?;
        let sudo = self.sudo()?;
        Ok(User {
            name,
            uid,
            gecos: self.text("gecos")?,
            home_dir: self.text("homedir")?,
            no_create_home: self.flag("no_create_home")?,
            primary_group: self.text("primary_group")?,
            groups: self.list("groups", string_list)?,
            no_user_group: self.flag("no_user_group")?,
            shell: self.text("shell")?,
            system: self.flag("system")?,
            password_hash: self.text("hashed_passwd")?.or(self.text("passwd")?),
            ssh_authorized_keys: self.list("ssh_authorized_keys", string_list_or_single)?,
            key_file: KeyFile::AuthorizedKeys,
            sudo,
            lock_password: self.lock_password()?,
            create_groups: true,
        })
    }

    /// Keys kiln ignores or does not know, each with a warning.
    fn warn_unsupported(&self, warnings: &mut Vec<String>) {
        for key in self.map.keys().filter_map(|k| k.as_str()) {
            if IGNORED_USER_KEYS.contains(&key) || !USER_KEYS.contains(&key) {
                warnings.push(format!(
                    "{}.{key} is not supported by kiln; ignored",
                    self.field
                ));
            }
        }
    }

    /// The value of `key`, a null one counting as unset.
    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn at(&self, key: &str) -> String {
        format!("{}.{key}", self.field)
    }

    fn text(&self, key: &str) -> Result<Option<String>> {
        (self.get(key))
            .map(|v| scalar(v, &self.at(key)))
            .transpose()
    }

    fn flag(&self, key: &str) -> Result<bool> {
        boolean(self.get(key), &self.at(key))
    }

    /// The list under `key` read by `read`, empty when unset.
    fn list(
        &self,
        key: &str,
        read: fn(&Value, &str) -> Result<Vec<String>>,
    ) -> Result<Vec<String>> {
        Ok((self.get(key))
            .map(|v| read(v, &self.at(key)))
            .transpose()?
            .unwrap_or_default())
    }

    fn uid(&self) -> Result<Option<u32>> {
        (self.get("uid"))
            .map(|v| {
                scalar(v, &self.at("uid"))?
                    .parse::<u32>()
                    .map_err(|_| UserDataError::new(self.at("uid"), "not a valid uid"))
            })
            .transpose()
    }

    /// `sudo` rules: `false` or unset for none, else one rule or a list.
    fn sudo(&self) -> Result<Vec<String>> {
        match self.get("sudo") {
            None | Some(Value::Bool(false)) => Ok(vec![]),
            Some(v) => string_list_or_single(v, &self.at("sudo")),
        }
    }

    /// `lock_passwd`, true unless set otherwise (as cloud-init does).
    fn lock_password(&self) -> Result<bool> {
        match self.get("lock_passwd") {
            None => Ok(true),
            v => boolean(v, &self.at("lock_passwd")),
        }
    }
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

    #[test]
    fn user_defaults_and_short_forms() {
        let plan = compile_text(
            "#cloud-config\nusers:\n  - ops\n  - {name: a, sudo: false, lock_passwd: null}\n  - {name: b, sudo: [x, y], lock_passwd: no, passwd: p, hashed_passwd: h, frob: 1}\n",
        )
        .unwrap();
        let [ops, a, b] = &plan.users[..] else {
            panic!("{:?}", plan.users)
        };
        assert_eq!(ops.name, "ops");
        assert!(a.sudo.is_empty() && a.lock_password && a.groups.is_empty());
        assert_eq!(b.sudo, ["x", "y"]);
        assert!(!b.lock_password);
        assert_eq!(b.password_hash.as_deref(), Some("h"));
        assert!(
            plan.warnings
                .iter()
                .any(|w| w == "users[2].frob is not supported by kiln; ignored"),
            "{:?}",
            plan.warnings
        );
    }
}
