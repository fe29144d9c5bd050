//! cloud-init's merging of cloud-config parts, as its `mergers` package does it (read from
//! cloud-init 22.4, `cloudinit/mergers/{__init__,m_dict,m_list,m_str}.py`).
//!
//! Each part is laid over what the earlier parts built, with the mergers the part itself
//! names: its `merge_how` (or `merge_type`) key, then its MIME `Merge-Type` (`X-Merge-Type`)
//! header, else cloud-init's default `dict(replace)+list()+str()`. A merger spec is
//! `dict(no_replace,recurse_list)+list(append)+str(append)` or the same as a YAML list of
//! `{name, settings}` mappings or `[name, option...]` lists. For each kind of value the first
//! merger of that kind decides; a value no merger handles keeps what was there before.
//! Unlike cloud-init, which logs a warning and drops the part, an unreadable spec is an error.

use serde_yaml_ng::{Mapping, Value};

use super::error::{Result, UserDataError};

/// cloud-init's default (`DEF_MERGERS` of `handlers/cloud_config.py`).
const DEFAULT: &str = "dict(replace)+list()+str()";

/// The mergers of one part, at most one of each kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mergers {
    dict: Option<DictMerger>,
    list: Option<ListMerger>,
    string: Option<StrMerger>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DictMerger {
    replace: bool,
    recurse_str: bool,
    recurse_list: bool,
    allow_delete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListMethod {
    Append,
    Prepend,
    Replace,
    NoReplace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ListMerger {
    method: ListMethod,
    recurse_str: bool,
    recurse_dict: bool,
    recurse_list: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StrMerger {
    append: bool,
}

/// Merges `part` (a parsed cloud-config mapping) into `merged`, with the mergers `part` names
/// (its `merge_how`/`merge_type` key, removed here) and then the part's `Merge-Type` header.
pub fn merge_part(
    merged: &mut Value,
    mut part: Value,
    header: Option<&str>,
    field: &str,
) -> Result<()> {
    let mut specs = match part.as_mapping_mut().and_then(take_merge_key) {
        Some(v) => from_yaml(&v, &format!("{field}.merge_how"))?,
        None => vec![],
    };
    specs.extend(from_str(
        header.unwrap_or_default(),
        &format!("{field} Merge-Type"),
    )?);
    if specs.is_empty() {
        specs = from_str(DEFAULT, "default")?;
    }
    let mergers = Mergers::build(&specs, field)?;
    let base = std::mem::take(merged);
    *merged = mergers.merge(base, part);
    Ok(())
}

/// `merge_how`, else `merge_type` (cloud-init pops both names).
fn take_merge_key(map: &mut Mapping) -> Option<Value> {
    let how = map.remove("merge_how");
    let kind = map.remove("merge_type");
    how.or(kind)
}

/// One named merger with its options, as written.
type Spec = (String, Vec<String>);

/// `dict(replace)+list(append)`: names and options lower-cased, `-` read as `_`.
fn from_str(text: &str, field: &str) -> Result<Vec<Spec>> {
    let mut specs = Vec::new();
    for item in text.split('+') {
        let item = item.trim().to_ascii_lowercase().replace('-', "_");
        if item.is_empty() {
            continue;
        }
        let (name, opts) = item
            .strip_suffix(')')
            .and_then(|s| s.split_once('('))
            .filter(|(n, _)| is_identifier(n))
            .ok_or_else(|| {
                UserDataError::new(
                    field,
                    format!("merger {item:?} is not NAME(OPTIONS), e.g. list(append)"),
                )
            })?;
        let opts = opts.split(',').map(str::trim).filter(|o| !o.is_empty());
        specs.push((name.to_owned(), opts.map(str::to_owned).collect()));
    }
    Ok(specs)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The YAML forms: a spec string, or a list of `{name, settings}` or `[name, option...]`.
fn from_yaml(value: &Value, field: &str) -> Result<Vec<Spec>> {
    let items = match value {
        Value::String(s) => return from_str(s, field),
        Value::Sequence(items) => items,
        _ => return Err(UserDataError::new(field, "expected a string or a list")),
    };
    let mut specs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ifield = format!("{field}[{i}]");
        let (name, opts) = match item {
            Value::Mapping(m) => (m.get("name"), settings(m.get("settings"), &ifield)?),
            Value::Sequence(s) => (s.first(), strings(s.get(1..).unwrap_or_default(), &ifield)?),
            _ => {
                return Err(UserDataError::new(
                    &ifield,
                    "expected {name, settings} or a list",
                ))
            }
        };
        let name = name
            .and_then(Value::as_str)
            .ok_or_else(|| UserDataError::new(&ifield, "a merger needs a name"))?;
        let name = name.replace('-', "_").trim().to_owned();
        if !name.is_empty() {
            specs.push((name, opts));
        }
    }
    Ok(specs)
}

/// `settings:` of the mapping form: a list of strings, or nothing.
fn settings(value: Option<&Value>, field: &str) -> Result<Vec<String>> {
    match value {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Sequence(s)) => strings(s, field),
        Some(_) => Err(UserDataError::new(field, "merger settings must be a list")),
    }
}

fn strings(values: &[Value], field: &str) -> Result<Vec<String>> {
    values
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect::<Option<_>>()
        .ok_or_else(|| UserDataError::new(field, "merger settings must be strings"))
}

impl Mergers {
    /// The mergers named by `specs`; the first of each kind wins, as in cloud-init's lookup.
    fn build(specs: &[Spec], field: &str) -> Result<Self> {
        let mut m = Mergers::default();
        for (name, opts) in specs {
            let has = |o: &str| opts.iter().any(|x| x == o);
            match name.as_str() {
                "dict" => m.dict = m.dict.or(Some(DictMerger::new(&has))),
                "list" => m.list = m.list.or(Some(ListMerger::new(&has))),
                "str" => {
                    m.string = m.string.or(Some(StrMerger {
                        append: has("append"),
                    }))
                }
                other => {
                    return Err(UserDataError::new(
                        field,
                        format!("unknown merger {other:?}; cloud-init has dict, list and str"),
                    ))
                }
            }
        }
        Ok(m)
    }

    /// `merge_with` laid over `value` (cloud-init's `LookupMerger.merge`).
    fn merge(&self, value: Value, merge_with: Value) -> Value {
        match value {
            Value::Mapping(map) => match self.dict {
                Some(d) => self.on_dict(d, map, merge_with),
                None => Value::Mapping(map),
            },
            Value::Sequence(list) => match self.list {
                Some(l) => self.on_list(l, list, merge_with),
                None => Value::Sequence(list),
            },
            Value::String(s) => match self.string {
                Some(m) => on_str(m, s, merge_with),
                None => Value::String(s),
            },
            // Numbers, booleans, null: no merger handles them; the old value stays.
            other => other,
        }
    }

    fn on_dict(&self, d: DictMerger, mut value: Mapping, merge_with: Value) -> Value {
        let Value::Mapping(with) = merge_with else {
            return Value::Mapping(value);
        };
        for (k, v) in with {
            if v.is_null() && d.allow_delete && value.contains_key(&k) {
                value.remove(&k);
            } else if let Some(slot) = value.get_mut(&k) {
                let old = std::mem::take(slot);
                *slot = self.dict_same_key(d, old, v);
            } else {
                value.insert(k, v);
            }
        }
        Value::Mapping(value)
    }

    fn dict_same_key(&self, d: DictMerger, old: Value, new: Value) -> Value {
        let recurse = match &new {
            _ if d.replace => return new,
            Value::Sequence(_) => d.recurse_list,
            Value::String(_) => d.recurse_str,
            // cloud-init: "Backwards compat require this to be on."
            Value::Mapping(_) => true,
            _ => false,
        };
        if recurse {
            self.merge(old, new)
        } else {
            old
        }
    }

    fn on_list(&self, l: ListMerger, mut value: Vec<Value>, merge_with: Value) -> Value {
        let Value::Sequence(with) = merge_with else {
            // cloud-init extends a list with a non-list's items; kiln keeps the list, except
            // for `replace`, which takes the new value as cloud-init does.
            return match l.method {
                ListMethod::Replace => merge_with,
                _ => Value::Sequence(value),
            };
        };
        match l.method {
            ListMethod::Append => value.extend(with),
            ListMethod::Prepend => value.splice(0..0, with).for_each(drop),
            ListMethod::NoReplace => {}
            ListMethod::Replace => {
                for (i, new) in with.into_iter().enumerate().take(value.len()) {
                    let old = std::mem::take(&mut value[i]);
                    value[i] = self.list_same_index(l, old, new);
                }
            }
        }
        Value::Sequence(value)
    }

    fn list_same_index(&self, l: ListMerger, old: Value, new: Value) -> Value {
        let recurse = match &new {
            Value::Sequence(_) => l.recurse_list,
            Value::String(_) => l.recurse_str,
            Value::Mapping(_) => l.recurse_dict,
            _ => false,
        };
        if recurse {
            self.merge(old, new)
        } else {
            new
        }
    }
}

fn on_str(m: StrMerger, value: String, merge_with: Value) -> Value {
    match merge_with {
        Value::String(with) if m.append => Value::String(value + &with),
        other => other,
    }
}

impl DictMerger {
    /// Options of `dict(...)`; the default method is `no_replace`, `replace` wins over it.
    fn new(has: &dyn Fn(&str) -> bool) -> Self {
        DictMerger {
            replace: has("replace"),
            recurse_str: has("recurse_str"),
            recurse_list: has("recurse_array") || has("recurse_list"),
            allow_delete: has("allow_delete"),
        }
    }
}

impl ListMerger {
    /// Options of `list(...)`; the first of append, prepend, replace, no_replace present, else
    /// replace.
    fn new(has: &dyn Fn(&str) -> bool) -> Self {
        let methods = [
            ("append", ListMethod::Append),
            ("prepend", ListMethod::Prepend),
            ("replace", ListMethod::Replace),
            ("no_replace", ListMethod::NoReplace),
        ];
        let method = methods
            .iter()
            .find(|(name, _)| has(name))
            .map_or(ListMethod::Replace, |(_, m)| *m);
        ListMerger {
            method,
            recurse_str: has("recurse_str"),
            recurse_dict: has("recurse_dict"),
            recurse_list: has("recurse_array") || has("recurse_list"),
        }
    }
}

#[cfg(test)]
mod tests;
