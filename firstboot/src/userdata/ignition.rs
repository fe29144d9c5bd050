//! Ignition 3.x configs (spec 3.0 to the newest `ignition-config` knows) compiled to a [`Plan`].
//!
//! The config is parsed and validated by the coreos `ignition-config` crate, normalised to the
//! newest spec (3.x is backward compatible), its `ignition.config.merge`/`replace` references are
//! resolved, and every resource is fetched, verified and decompressed — all before anything is
//! written. Sections kiln does not implement are rejected by name.

use std::path::{Component, Path, PathBuf};

use ignition_config::v3_6 as spec;
use kiln_core::redact::decode_error;
use serde_json::Value;

use super::budget::{Budget, Limit};
use super::error::{Result, UserDataError};
use super::resource::{resolve, Fetcher, ResourceRef};
use crate::plan::{self, Existing, Node, Owner, Plan, Principal};

/// How deep `ignition.config.merge`/`replace` may nest.
const MAX_CONFIG_DEPTH: usize = 10;

/// Sections that change disks or the kernel: kiln refuses them rather than skip them.
const UNSUPPORTED: [(&str, &str); 5] = [
    ("storage", "disks"),
    ("storage", "raid"),
    ("storage", "filesystems"),
    ("storage", "luks"),
    ("", "kernelArguments"),
];

/// Parses an Ignition config and compiles it, with all its resources, into a plan; what it
/// decodes and plans is charged to `budget`.
pub fn plan(bytes: &[u8], fetcher: &dyn Fetcher, budget: &Budget) -> Result<Plan> {
    let (config, warnings) = load(bytes, fetcher, budget, "$", 0)?;
    reject_unsupported(&config)?;
    let typed: spec::Config = serde_json::from_value(config).map_err(|e| {
        let message = decode_error(&e.to_string());
        UserDataError::new("$", format!("invalid Ignition config: {message}"))
    })?;
    let mut plan = compile(&typed, fetcher, budget)?;
    plan.warnings.extend(warnings);
    Ok(plan)
}

/// Setuid, setgid and sticky bits in `mode` are honoured from spec 3.4 on; Ignition masks them
/// when it translates an older config to the newest spec, which it does for each config (the
/// top-level one and every merged or replacing one) before merging (coreos/ignition#1301,
/// #2049). So each config's own version decides for the files and directories it names.
fn special_bits_supported(version: &str) -> bool {
    let minor = version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse::<u32>().ok());
    minor.is_some_and(|m| m >= 4)
}

/// Clears the special bits of the modes in one config (spec-3.6 JSON of a config written for
/// `version`) when its version does not support them, with a warning for each.
fn mask_special_bits(config: &mut Value, version: &str, field: &str) -> Vec<String> {
    if special_bits_supported(version) {
        return Vec::new();
    }
    let mut warnings = Vec::new();
    for list in ["files", "directories"] {
        let Some(entries) = config["storage"][list].as_array_mut() else {
            continue;
        };
        for (i, entry) in entries.iter_mut().enumerate() {
            let Some(mode) = entry["mode"].as_i64().filter(|m| m & 0o7000 != 0) else {
                continue;
            };
            entry["mode"] = Value::from(mode & 0o777);
            let at = child_field(field, &format!("storage.{list}[{i}].mode"));
            warnings.push(format!(
                "{at}: setuid/setgid/sticky bits are ignored before Ignition spec 3.4 \
                 (this config is {version}), as Ignition does"
            ));
        }
    }
    warnings
}

/// Parses and validates one config and resolves its merge/replace references, returning it as
/// spec-3.6 JSON (without `ignition.config`) and the unused-key warnings.
fn load(
    bytes: &[u8],
    fetcher: &dyn Fetcher,
    budget: &Budget,
    field: &str,
    depth: usize,
) -> Result<(Value, Vec<String>)> {
    if depth > MAX_CONFIG_DEPTH {
        return Err(UserDataError::new(
            field,
            "ignition.config merge/replace nests too deeply",
        ));
    }
    check_major_version(bytes, field)?;
    let (parsed, unused) =
        ignition_config::Config::parse_slice(bytes).map_err(|e| parse_error(e, field))?;
    let mut warnings: Vec<String> = unused
        .into_iter()
        .map(|w| format!("{field}: Ignition config: {w} (ignored, as Ignition does)"))
        .collect();
    let mut config =
        serde_json::to_value(&parsed).map_err(|e| UserDataError::new(field, e.to_string()))?;
    super::ignition_checks::check(&config, field)?;
    let version = config["ignition"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    warnings.extend(mask_special_bits(&mut config, &version, field));
    config["ignition"]["version"] = Value::from("3.6.0");
    let references = take_config_references(&mut config);
    if let Some(replace) = references.replace {
        let child_field = child_field(field, "ignition.config.replace");
        let (child, more) = load_reference(&replace, fetcher, budget, &child_field, depth)?;
        warnings.extend(more);
        return Ok((child, warnings));
    }
    for (i, reference) in references.merge.iter().enumerate() {
        let child_field = child_field(field, &format!("ignition.config.merge[{i}]"));
        let (child, more) = load_reference(reference, fetcher, budget, &child_field, depth)?;
        warnings.extend(more);
        super::merge::merge_ignition(&mut config, child);
    }
    Ok((config, warnings))
}

fn child_field(parent: &str, path: &str) -> String {
    if parent == "$" {
        path.to_owned()
    } else {
        format!("{parent} -> {path}")
    }
}

fn load_reference(
    res: &spec::Resource,
    fetcher: &dyn Fetcher,
    budget: &Budget,
    field: &str,
    depth: usize,
) -> Result<(Value, Vec<String>)> {
    let bytes = resolve(resource_ref(res, field)?, fetcher, budget, field)?;
    load(&bytes, fetcher, budget, field, depth + 1)
}

struct References {
    merge: Vec<spec::Resource>,
    replace: Option<spec::Resource>,
}

/// Removes `ignition.config` from the JSON and returns its references.
fn take_config_references(config: &mut Value) -> References {
    let section = config["ignition"]
        .as_object_mut()
        .and_then(|i| i.remove("config"));
    let parsed: Option<spec::IgnitionConfig> = section.and_then(|s| serde_json::from_value(s).ok());
    References {
        merge: parsed
            .as_ref()
            .and_then(|c| c.merge.clone())
            .unwrap_or_default(),
        replace: parsed
            .and_then(|c| c.replace)
            .filter(|r| r.source.is_some()),
    }
}

fn check_major_version(bytes: &[u8], field: &str) -> Result<()> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| UserDataError::new(field, format!("invalid JSON: {e}")))?;
    let version = value["ignition"]["version"].as_str().unwrap_or_default();
    if version.starts_with("1.") || version.starts_with("2.") {
        return Err(UserDataError::new(
            "ignition.version",
            format!("Ignition spec {version} is not supported; translate the config to spec 3 (e.g. with ign-converter) and try again"),
        ));
    }
    Ok(())
}

fn parse_error(err: ignition_config::Error, field: &str) -> UserDataError {
    match err {
        ignition_config::Error::UnknownVersion(v) => UserDataError::new(
            "ignition.version",
            format!("unsupported Ignition spec version {v}; kiln reads 3.0.0 to 3.6.0"),
        ),
        ignition_config::Error::InvalidVersion(e) => {
            UserDataError::new("ignition.version", format!("not a version: {e}"))
        }
        other => UserDataError::new(
            field,
            format!(
                "invalid Ignition config: {}",
                decode_error(&other.to_string())
            ),
        ),
    }
}

fn reject_unsupported(config: &Value) -> Result<()> {
    for (section, key) in UNSUPPORTED {
        let value = if section.is_empty() {
            &config[key]
        } else {
            &config[section][key]
        };
        let present = match value {
            Value::Null => false,
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => o
                .values()
                .any(|v| !v.is_null() && v != &Value::Array(vec![])),
            _ => true,
        };
        if present {
            let name = if section.is_empty() {
                key.to_owned()
            } else {
                format!("{section}.{key}")
            };
            return Err(UserDataError::new(
                name,
                "kiln does not partition disks, create filesystems, RAID, LUKS or change kernel arguments; \
                 do that when building the image or with the real Ignition in the initramfs",
            ));
        }
    }
    Ok(())
}

fn compile(config: &spec::Config, fetcher: &dyn Fetcher, budget: &Budget) -> Result<Plan> {
    let mut plan = Plan::default();
    if let Some(passwd) = &config.passwd {
        for (i, g) in passwd.groups.iter().flatten().enumerate() {
            plan.groups.push(group(g, &format!("passwd.groups[{i}]"))?);
        }
        for (i, u) in passwd.users.iter().flatten().enumerate() {
            plan.users.push(user(u, &format!("passwd.users[{i}]"))?);
        }
    }
    if let Some(storage) = &config.storage {
        let nodes = [
            storage.directories.as_ref().map_or(0, Vec::len),
            storage.files.as_ref().map_or(0, Vec::len),
            storage.links.as_ref().map_or(0, Vec::len),
        ];
        budget.charge(Limit::Files, nodes.iter().sum::<usize>() as u64, "storage")?;
        for (i, d) in storage.directories.iter().flatten().enumerate() {
            plan.nodes
                .push(directory(d, &format!("storage.directories[{i}]"))?);
        }
        for (i, f) in storage.files.iter().flatten().enumerate() {
            plan.nodes
                .push(file(f, fetcher, budget, &format!("storage.files[{i}]"))?);
        }
        for (i, l) in storage.links.iter().flatten().enumerate() {
            plan.nodes.push(link(l, &format!("storage.links[{i}]"))?);
        }
    }
    if let Some(systemd) = &config.systemd {
        for (i, u) in systemd.units.iter().flatten().enumerate() {
            plan.units.push(unit(u, &format!("systemd.units[{i}]"))?);
        }
    }
    Ok(plan)
}

fn file(f: &spec::File, fetcher: &dyn Fetcher, budget: &Budget, field: &str) -> Result<Node> {
    let path = absolute_path(&f.path, &format!("{field}.path"))?;
    let contents = match f.contents.as_ref().filter(|c| c.source.is_some()) {
        Some(res) => {
            let cfield = format!("{field}.contents");
            Some(resolve(
                resource_ref(res, &cfield)?,
                fetcher,
                budget,
                &cfield,
            )?)
        }
        None => None,
    };
    let mut append = Vec::new();
    for (i, res) in f.append.iter().flatten().enumerate() {
        let afield = format!("{field}.append[{i}]");
        append.push(resolve(
            resource_ref(res, &afield)?,
            fetcher,
            budget,
            &afield,
        )?);
    }
    let existing = match (f.overwrite.unwrap_or(false), contents.is_some()) {
        (true, _) => Existing::Overwrite,
        (false, true) => Existing::Refuse,
        (false, false) => Existing::Keep,
    };
    if existing == Existing::Overwrite && contents.is_none() {
        return Err(UserDataError::new(
            format!("{field}.overwrite"),
            "overwrite needs contents.source",
        ));
    }
    Ok(Node::File(plan::File {
        path,
        contents,
        append,
        existing,
        mode: mode(f.mode, &format!("{field}.mode"))?,
        owner: owner(f.user.as_ref(), f.group.as_ref(), field)?,
        writer: plan::Writer::Replace,
        origin: field.to_owned(),
    }))
}

fn directory(d: &spec::Directory, field: &str) -> Result<Node> {
    Ok(Node::Directory(plan::Directory {
        path: absolute_path(&d.path, &format!("{field}.path"))?,
        mode: mode(d.mode, &format!("{field}.mode"))?,
        owner: owner(d.user.as_ref(), d.group.as_ref(), field)?,
        overwrite: d.overwrite.unwrap_or(false),
        origin: field.to_owned(),
    }))
}

fn link(l: &spec::Link, field: &str) -> Result<Node> {
    let target = l
        .target
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| UserDataError::new(format!("{field}.target"), "a link needs a target"))?;
    let hard = l.hard.unwrap_or(false);
    let target = if hard {
        absolute_path(target, &format!("{field}.target"))?
    } else {
        PathBuf::from(target)
    };
    Ok(Node::Link(plan::Link {
        path: absolute_path(&l.path, &format!("{field}.path"))?,
        target,
        hard,
        overwrite: l.overwrite.unwrap_or(false),
        owner: owner(l.user.as_ref(), l.group.as_ref(), field)?,
        origin: field.to_owned(),
    }))
}

fn unit(u: &spec::Unit, field: &str) -> Result<plan::Unit> {
    check_unit_name(&u.name, &format!("{field}.name"))?;
    let mut dropins = Vec::new();
    for (i, d) in u.dropins.iter().flatten().enumerate() {
        check_unit_name(&d.name, &format!("{field}.dropins[{i}].name"))?;
        dropins.push((d.name.clone(), d.contents.clone()));
    }
    Ok(plan::Unit {
        name: u.name.clone(),
        contents: u.contents.clone(),
        enabled: u.enabled,
        mask: u.mask.unwrap_or(false),
        dropins,
    })
}

fn group(g: &spec::Group, field: &str) -> Result<plan::Group> {
    if g.should_exist == Some(false) {
        return Err(UserDataError::new(
            format!("{field}.shouldExist"),
            "deleting groups is not supported",
        ));
    }
    Ok(plan::Group {
        name: g.name.clone(),
        gid: id(g.gid, &format!("{field}.gid"))?,
        system: g.system.unwrap_or(false),
        password_hash: g.password_hash.clone(),
        members: vec![],
    })
}

fn user(u: &spec::User, field: &str) -> Result<plan::User> {
    if u.should_exist == Some(false) {
        return Err(UserDataError::new(
            format!("{field}.shouldExist"),
            "deleting users is not supported",
        ));
    }
    Ok(plan::User {
        name: u.name.clone(),
        uid: id(u.uid, &format!("{field}.uid"))?,
        gecos: u.gecos.clone(),
        home_dir: u.home_dir.clone(),
        no_create_home: u.no_create_home.unwrap_or(false),
        primary_group: u.primary_group.clone(),
        groups: u.groups.clone().unwrap_or_default(),
        no_user_group: u.no_user_group.unwrap_or(false),
        shell: u.shell.clone(),
        system: u.system.unwrap_or(false),
        password_hash: u.password_hash.clone(),
        ssh_authorized_keys: u.ssh_authorized_keys.clone().unwrap_or_default(),
        key_file: plan::KeyFile::IgnitionFragment,
        sudo: vec![],
        lock_password: false,
        create_groups: false,
    })
}

fn resource_ref<'a>(res: &'a spec::Resource, field: &str) -> Result<ResourceRef<'a>> {
    let source = res
        .source
        .as_deref()
        .ok_or_else(|| UserDataError::new(format!("{field}.source"), "missing source"))?;
    Ok(ResourceRef {
        source,
        compression: res.compression.as_deref(),
        hash: res.verification.as_ref().and_then(|v| v.hash.as_deref()),
    })
}

fn owner(
    user: Option<&spec::NodeUser>,
    group: Option<&spec::NodeGroup>,
    field: &str,
) -> Result<Owner> {
    let principal =
        |id: Option<i64>, name: Option<&String>, f: &str| -> Result<Option<Principal>> {
            Ok(match (id, name) {
                (Some(id), _) => {
                    Some(Principal::Id(u32::try_from(id).map_err(|_| {
                        UserDataError::new(f, format!("{id} is not a valid id"))
                    })?))
                }
                (None, Some(n)) if !n.is_empty() => Some(Principal::Name(n.clone())),
                _ => None,
            })
        };
    Ok(Owner {
        user: principal(
            user.and_then(|u| u.id),
            user.and_then(|u| u.name.as_ref()),
            &format!("{field}.user"),
        )?,
        group: principal(
            group.and_then(|g| g.id),
            group.and_then(|g| g.name.as_ref()),
            &format!("{field}.group"),
        )?,
    })
}

fn id(value: Option<i64>, field: &str) -> Result<Option<u32>> {
    value
        .map(|v| {
            u32::try_from(v)
                .map_err(|_| UserDataError::new(field, format!("{v} is not a valid id")))
        })
        .transpose()
}

fn mode(value: Option<i64>, field: &str) -> Result<Option<u32>> {
    match value {
        None => Ok(None),
        Some(m) if (0..=0o7777).contains(&m) => Ok(Some(m as u32)),
        Some(m) => Err(UserDataError::new(
            field,
            format!("{m} is not a file mode (decimal, e.g. 420 for 0644)"),
        )),
    }
}

/// An absolute path without `.` or `..` components.
pub fn absolute_path(text: &str, field: &str) -> Result<PathBuf> {
    if text.contains('\0') {
        return Err(UserDataError::new(field, "the path contains a NUL byte"));
    }
    let path = Path::new(text);
    if !path.is_absolute() {
        return Err(UserDataError::new(
            field,
            format!("{text:?} is not an absolute path"),
        ));
    }
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(UserDataError::new(
            field,
            format!("{text:?} contains . or .. components"),
        ));
    }
    Ok(path.components().collect())
}

fn check_unit_name(name: &str, field: &str) -> Result<()> {
    if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." {
        return Err(UserDataError::new(
            field,
            format!("{name:?} is not a unit or drop-in file name"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userdata::budget::Limits;
    use crate::userdata::resource::NoNetwork;

    fn plan_of(json: &str) -> Result<Plan> {
        plan(json.as_bytes(), &NoNetwork, &Budget::new(Limits::default()))
    }

    #[test]
    fn files_links_dirs_units_and_users_compile() {
        let p = plan_of(r#"{"ignition":{"version":"3.3.0"},
          "storage":{"files":[{"path":"/etc/a","contents":{"source":"data:,x"},"mode":384,"user":{"name":"core"}}],
                     "directories":[{"path":"/var/d"}],
                     "links":[{"path":"/etc/l","target":"../a"},{"path":"/etc/h","target":"/etc/a","hard":true}]},
          "systemd":{"units":[{"name":"x.service","enabled":true,"contents":"[Unit]\n"}]},
          "passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAAA k"]}]}}"#).unwrap();
        assert_eq!(p.nodes.len(), 4);
        let Node::File(f) = &p.nodes[1] else {
            panic!("{:?}", p.nodes)
        };
        assert_eq!(
            (f.contents.as_deref(), f.mode, f.existing),
            (Some(&b"x"[..]), Some(0o600), Existing::Refuse)
        );
        assert_eq!(f.owner.user, Some(Principal::Name("core".into())));
        assert_eq!(p.units[0].enabled, Some(true));
        assert_eq!(p.users[0].ssh_authorized_keys.len(), 1);
    }

    #[test]
    fn old_and_unknown_versions_are_rejected_with_advice() {
        let err = plan_of(r#"{"ignition":{"version":"2.3.0"}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("ignition.version: ") && err.contains("translate"),
            "{err}"
        );
        let err = plan_of(r#"{"ignition":{"version":"3.99.0"}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unsupported Ignition spec version 3.99.0"),
            "{err}"
        );
    }

    #[test]
    fn parse_errors_do_not_repeat_values() {
        let err = plan_of(r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/a","contents":"data:,SECRET-TOKEN"}]}}"#).unwrap_err().to_string();
        assert!(
            !err.contains("SECRET-TOKEN") && err.contains("invalid Ignition config"),
            "{err}"
        );
        assert_eq!(
            decode_error(r#"invalid type: string "x", expected "y""#),
            r#"invalid type: string "…", expected "…""#
        );
    }

    #[test]
    fn unsupported_sections_are_named() {
        let err = plan_of(
            r#"{"ignition":{"version":"3.3.0"},"storage":{"disks":[{"device":"/dev/vda"}]}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "storage.disks");
        let err = plan_of(
            r#"{"ignition":{"version":"3.3.0"},"kernelArguments":{"shouldExist":["quiet"]}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "kernelArguments");
    }

    #[test]
    fn bad_paths_and_sources_name_the_field() {
        let err = plan_of(r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/ok"},{"path":"rel"}]}}"#).unwrap_err();
        assert_eq!(err.field, "storage.files[1].path");
        let err =
            plan_of(r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/a/../b"}]}}"#)
                .unwrap_err();
        assert_eq!(err.field, "storage.files[0].path");
        let err = plan_of(r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/a","contents":{"source":"data:;base64,%%%"}}]}}"#).unwrap_err();
        assert_eq!(err.field, "storage.files[0].contents.source");
    }

    #[test]
    fn merge_and_replace_resolve_data_urls() {
        let child = r#"{"ignition":{"version":"3.0.0"},"storage":{"files":[{"path":"/etc/a","mode":384}]}}"#;
        let url = format!("data:,{}", child.replace('%', "%25").replace('#', "%23"));
        let merge = format!(
            r#"{{"ignition":{{"version":"3.3.0","config":{{"merge":[{{"source":"{}"}}]}}}},
            "storage":{{"files":[{{"path":"/etc/a","contents":{{"source":"data:,parent"}}}},{{"path":"/etc/b"}}]}}}}"#,
            url.replace('"', "\\\"")
        );
        let p = plan_of(&merge).unwrap();
        assert_eq!(p.nodes.len(), 2);
        let Node::File(a) = &p.nodes[0] else { panic!() };
        assert_eq!(
            (a.contents.as_deref(), a.mode),
            (Some(&b"parent"[..]), Some(0o600))
        );
        let replace = merge
            .replace("\"merge\":[", "\"replace\":")
            .replace("}]}},", "}}},");
        let p = plan_of(&replace).unwrap();
        assert_eq!(p.nodes.len(), 1);
    }

    #[test]
    fn files_and_decoded_bytes_are_budgeted_over_the_whole_config() {
        let mut limits = Limits::default();
        limits.set(Limit::Files, 2);
        let config = r#"{"ignition":{"version":"3.3.0"},"storage":{"directories":[{"path":"/d"}],"files":[{"path":"/a"},{"path":"/b"}]}}"#;
        let err = plan(config.as_bytes(), &NoNetwork, &Budget::new(limits)).unwrap_err();
        assert_eq!(err.field, "storage");
        assert!(err.message.contains("files budget of 2"), "{}", err.message);

        let mut limits = Limits::default();
        limits.set(Limit::DecodedBytes, 10);
        let config = r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/a","contents":{"source":"data:,12345"}},{"path":"/b","contents":{"source":"data:,123456"}}]}}"#;
        let err = plan(config.as_bytes(), &NoNetwork, &Budget::new(limits)).unwrap_err();
        assert_eq!(err.field, "storage.files[1].contents.source");
        assert!(
            err.message.contains("decoded-bytes budget"),
            "{}",
            err.message
        );
    }

    /// A config with `child` (a spec `child_version` config with one file of mode 0o4755)
    /// merged into a spec `parent_version` config: the file's mode in the plan.
    fn merged_mode(parent_version: &str, child_version: &str) -> (Option<u32>, Vec<String>) {
        let child = format!(
            r#"{{"ignition":{{"version":"{child_version}"}},"storage":{{"files":[{{"path":"/usr/local/bin/s","mode":2541}}]}}}}"#
        );
        let url = format!("data:,{}", child.replace('%', "%25").replace('#', "%23"));
        let parent = format!(
            r#"{{"ignition":{{"version":"{parent_version}","config":{{"merge":[{{"source":"{}"}}]}}}},
            "storage":{{"directories":[{{"path":"/srv/t","mode":1023}}]}}}}"#,
            url.replace('"', "\\\"")
        );
        let p = plan_of(&parent).unwrap();
        let Some(Node::File(f)) = p.nodes.iter().find(|n| matches!(n, Node::File(_))) else {
            panic!("{:?}", p.nodes.len())
        };
        (f.mode, p.warnings)
    }

    #[test]
    fn special_bits_follow_each_configs_own_version() {
        let (mode, warnings) = merged_mode("3.3.0", "3.4.0");
        assert_eq!(mode, Some(0o4755), "{warnings:?}");
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("storage.directories[0].mode: setuid")),
            "{warnings:?}"
        );
        let (mode, warnings) = merged_mode("3.4.0", "3.3.0");
        assert_eq!(mode, Some(0o755));
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("ignition.config.merge[0] -> storage.files[0].mode")),
            "{warnings:?}"
        );
    }
}
