//! cloud-config `write_files`: path, content, encoding (b64/base64, gz/gzip, gz+b64 ...),
//! permissions (default 0644), owner (default root:root), append, defer.

use base64::prelude::{Engine, BASE64_STANDARD};
use serde_yaml_ng::Value;

use super::{boolean, scalar};
use crate::plan::{self, Existing, Node, Owner, Principal};
use crate::userdata::budget::{Budget, Limit};
use crate::userdata::error::{Result, UserDataError};
use crate::userdata::ignition::absolute_path;
use crate::userdata::resource::gunzip;

/// Compiles the `write_files` list, charging its files and decoded contents to `budget`.
pub fn compile(value: &Value, budget: &Budget) -> Result<Vec<Node>> {
    let items = value
        .as_sequence()
        .ok_or_else(|| UserDataError::new("write_files", "expected a list of files"))?;
    budget.charge(Limit::Files, items.len() as u64, "write_files")?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| entry(item, budget, &format!("write_files[{i}]")))
        .collect()
}

fn entry(item: &Value, budget: &Budget, field: &str) -> Result<Node> {
    let get = |k: &str| item.get(k).filter(|v| !v.is_null());
    let path_text = get("path")
        .map(|v| scalar(v, &format!("{field}.path")))
        .transpose()?
        .ok_or_else(|| UserDataError::new(format!("{field}.path"), "missing path"))?;
    let path = absolute_path(&path_text, &format!("{field}.path"))?;
    if get("source").is_some() {
        return Err(UserDataError::new(
            format!("{field}.source"),
            "write_files source URLs are not supported; use content",
        ));
    }
    let content = get("content")
        .map(|v| scalar(v, &format!("{field}.content")))
        .transpose()?
        .unwrap_or_default();
    let encoding = get("encoding")
        .map(|v| scalar(v, &format!("{field}.encoding")))
        .transpose()?;
    let bytes = decode(content, encoding.as_deref(), budget, field)?;
    let mode = get("permissions")
        .map(|v| permissions(v, &format!("{field}.permissions")))
        .transpose()?;
    let owner = get("owner")
        .map(|v| owner(v, &format!("{field}.owner")))
        .transpose()?
        .unwrap_or_default();
    let append = boolean(get("append"), &format!("{field}.append"))?;
    // cloud-init writes files in its init stage, before `users_groups`; `defer: true` after.
    let defer = boolean(get("defer"), &format!("{field}.defer"))?;
    let (contents, append_fragments, existing) = if append {
        (None, vec![bytes], Existing::Keep)
    } else {
        (Some(bytes), vec![], Existing::Overwrite)
    };
    Ok(Node::File(plan::File {
        path,
        contents,
        append: append_fragments,
        existing,
        mode: Some(mode.unwrap_or(0o644)),
        owner,
        writer: plan::Writer::CloudInit { deferred: defer },
        origin: field.to_owned(),
    }))
}

/// Decodes content per cloud-init's encodings.
fn decode(
    content: String,
    encoding: Option<&str>,
    budget: &Budget,
    field: &str,
) -> Result<Vec<u8>> {
    let efield = format!("{field}.content");
    let b64 = |s: &str| {
        let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        BASE64_STANDARD
            .decode(compact)
            .map_err(|e| UserDataError::new(&efield, format!("invalid base64: {e}")))
    };
    let charged = |bytes: Vec<u8>| {
        budget
            .charge(Limit::DecodedBytes, bytes.len() as u64, &efield)
            .map(|()| bytes)
    };
    match encoding.map(str::to_ascii_lowercase).as_deref() {
        None | Some("text/plain") | Some("") => Ok(content.into_bytes()),
        Some("b64") | Some("base64") => charged(b64(&content)?),
        // YAML `!!binary` content arrives as base64 text (the YAML parser drops the tag): gzip
        // data is recognised after base64 decoding.
        Some("gz") | Some("gzip") => match b64(&content) {
            Ok(bytes) if bytes.starts_with(&[0x1f, 0x8b]) => {
                gunzip(&charged(bytes)?, budget, &efield)
            }
            _ => gunzip(content.as_bytes(), budget, &efield),
        },
        Some("gz+b64") | Some("gzip+base64") | Some("gz+base64") | Some("gzip+b64") => {
            gunzip(&charged(b64(&content)?)?, budget, &efield)
        }
        Some(other) => Err(UserDataError::new(
            format!("{field}.encoding"),
            format!("unknown encoding {other:?}; use b64, gzip or gz+b64"),
        )),
    }
}

/// Permissions as cloud-init reads them: a string is octal (`'0644'`, `'644'`, `'0o644'`), an
/// integer is the mode itself (YAML `0o644` is 420; a plain `0644` reaches here as the string
/// "0644", so it is 420 too, as in cloud-init's YAML 1.1).
fn permissions(v: &Value, field: &str) -> Result<u32> {
    let bad =
        |what: &str| UserDataError::new(field, format!("{what} is not a file mode such as '0644'"));
    let mode = match v {
        Value::String(s) => {
            let digits = s.trim().trim_start_matches("0o");
            u32::from_str_radix(digits, 8).map_err(|_| bad(&format!("{s:?}")))?
        }
        Value::Number(n) => n
            .as_u64()
            .and_then(|m| u32::try_from(m).ok())
            .ok_or_else(|| bad(&n.to_string()))?,
        _ => return Err(bad("this value")),
    };
    if mode > 0o7777 {
        return Err(bad(&format!("{mode:o} (octal)")));
    }
    Ok(mode)
}

/// `user:group`, `user`, or `:group`; numeric parts are ids.
fn owner(v: &Value, field: &str) -> Result<Owner> {
    let text = scalar(v, field)?;
    let (user, group) = match text.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (text.as_str(), None),
    };
    let principal = |s: &str| match s.parse::<u32>() {
        _ if s.is_empty() => None,
        Ok(id) => Some(Principal::Id(id)),
        Err(_) => Some(Principal::Name(s.to_owned())),
    };
    Ok(Owner {
        user: principal(user),
        group: group.and_then(principal),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userdata::budget::Limits;

    fn files(yaml: &str) -> Result<Vec<Node>> {
        compile(
            &serde_yaml_ng::from_str(yaml).unwrap(),
            &Budget::new(Limits::default()),
        )
    }

    #[test]
    fn encodings_permissions_owner_append() {
        let nodes = files(
            "- {path: /a, content: aGk=, encoding: b64, permissions: '0600', owner: 'core:wheel'}\n\
             - {path: /b, content: x, append: true, permissions: 493}\n\
             - {path: /c, content: H4sIAAAAAAAAA8tIzcnJBwCGphA2BQAAAA==, encoding: gz+b64}\n",
        )
        .unwrap();
        let Node::File(a) = &nodes[0] else { panic!() };
        assert_eq!(
            (a.contents.as_deref(), a.mode),
            (Some(&b"hi"[..]), Some(0o600))
        );
        assert_eq!(a.owner.user, Some(Principal::Name("core".into())));
        assert_eq!(a.owner.group, Some(Principal::Name("wheel".into())));
        let Node::File(b) = &nodes[1] else { panic!() };
        assert_eq!(
            (b.contents.as_ref(), b.append.len(), b.mode, b.existing),
            (None, 1, Some(0o755), Existing::Keep)
        );
        let Node::File(c) = &nodes[2] else { panic!() };
        assert_eq!(c.contents.as_deref(), Some(&b"hello"[..]));
    }

    #[test]
    fn yaml11_octal_modes_leave_contents_alone() {
        // cloud-init (YAML 1.1) reads a plain 0644 as octal, 644 as decimal, '644' as octal.
        let nodes = files(
            "- {path: /a, permissions: 0644, content: \"permissions: 0644\\n\"}\n\
             - path: /b\n  permissions: 0o600\n  content: |\n    mode: 0755\n    permissions: 0755\n\
             - {path: /c, permissions: 644}\n",
        )
        .unwrap();
        let file = |i: usize| match &nodes[i] {
            Node::File(f) => (f.mode, f.contents.clone().unwrap_or_default()),
            _ => panic!(),
        };
        assert_eq!(file(0), (Some(0o644), b"permissions: 0644\n".to_vec()));
        assert_eq!(
            file(1),
            (Some(0o600), b"mode: 0755\npermissions: 0755\n".to_vec())
        );
        assert_eq!(file(2).0, Some(644));
    }

    #[test]
    fn bad_entries_name_the_field() {
        let err = files("- {path: /a, content: '%%%', encoding: b64}\n").unwrap_err();
        assert_eq!(err.field, "write_files[0].content");
        let err = files("- {path: /ok}\n- {path: rel/x}\n").unwrap_err();
        assert_eq!(err.field, "write_files[1].path");
        let err = files("- {path: /a, permissions: 'rw-'}\n").unwrap_err();
        assert_eq!(err.field, "write_files[0].permissions");
        let err = files("- {path: /a, encoding: rot13}\n").unwrap_err();
        assert_eq!(err.field, "write_files[0].encoding");
    }

    #[test]
    fn files_and_decoded_bytes_are_budgeted() {
        let mut limits = Limits::default();
        limits.set(Limit::Files, 2);
        let list = "- {path: /a}\n- {path: /b}\n- {path: /c}\n";
        let err = compile(
            &serde_yaml_ng::from_str(list).unwrap(),
            &Budget::new(limits),
        )
        .unwrap_err();
        assert_eq!(err.field, "write_files");
        assert!(err.message.contains("files budget of 2"), "{}", err.message);

        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&vec![b'x'; 1 << 20]).unwrap();
        let gz = BASE64_STANDARD.encode(e.finish().unwrap());
        let mut limits = Limits::default();
        limits.set(Limit::DecodedBytes, 3 << 20);
        let entry = format!("- {{path: /a, content: {gz}, encoding: gz+b64}}\n");
        let yaml = entry.repeat(4);
        let err = compile(
            &serde_yaml_ng::from_str(&yaml).unwrap(),
            &Budget::new(limits),
        )
        .unwrap_err();
        assert_eq!(err.field, "write_files[2].content");
        assert!(
            err.message.contains("decoded-bytes budget"),
            "{}",
            err.message
        );
    }
}
