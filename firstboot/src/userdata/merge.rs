//! Merging Ignition configs ([`merge_ignition`], Ignition's `ignition.config.merge`): the child
//! config is laid over the parent; lists of files, directories and links are matched by `path`,
//! units, drop-ins, users and groups by `name`, and a matched child entry overrides the
//! parent's fields; lists of plain values are appended without duplicates. (Cloud-config parts
//! merge as cloud-init's mergers say: [`super::merge_how`].)

use serde_json::Value;

/// The key that identifies entries of a keyed Ignition list at `path`.
fn ignition_list_key(path: &str) -> Option<&'static str> {
    match path {
        "storage.files" | "storage.directories" | "storage.links" => Some("path"),
        "systemd.units" | "systemd.units.dropins" | "passwd.users" | "passwd.groups" => {
            Some("name")
        }
        _ => None,
    }
}

/// Lays `child` over `parent` with Ignition's merge rules.
pub fn merge_ignition(parent: &mut Value, child: Value) {
    merge_at(parent, child, "");
}

fn merge_at(parent: &mut Value, child: Value, path: &str) {
    match (parent, child) {
        (_, Value::Null) => {}
        (Value::Object(p), Value::Object(c)) => {
            for (key, value) in c {
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let slot = p.entry(key).or_insert(Value::Null);
                if slot.is_null() {
                    *slot = value;
                } else {
                    merge_at(slot, value, &sub);
                }
            }
        }
        (Value::Array(p), Value::Array(c)) => merge_list(p, c, path),
        (p, c) => *p = c,
    }
}

fn merge_list(parent: &mut Vec<Value>, child: Vec<Value>, path: &str) {
    // Drop-ins live under each unit: their path is "systemd.units.dropins".
    let key = ignition_list_key(path);
    for item in child {
        let matching = key.and_then(|k| {
            let id = item.get(k)?;
            parent.iter().position(|p| p.get(k) == Some(id))
        });
        match matching {
            Some(index) => merge_at(&mut parent[index], item, path),
            None if key.is_none() && parent.contains(&item) => {}
            None => parent.push(item),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ignition_lists_merge_by_key() {
        let mut parent = json!({"storage":{"files":[{"path":"/a","mode":420,"contents":{"source":"data:,p"}}]},
            "systemd":{"units":[{"name":"x.service","dropins":[{"name":"a.conf","contents":"1"}]}]},
            "passwd":{"users":[{"name":"core","sshAuthorizedKeys":["k1"]}]}});
        let child = json!({"storage":{"files":[{"path":"/a","mode":384},{"path":"/b"}]},
            "systemd":{"units":[{"name":"x.service","dropins":[{"name":"a.conf","contents":"2"},{"name":"b.conf"}]}]},
            "passwd":{"users":[{"name":"core","sshAuthorizedKeys":["k1","k2"]}]}});
        merge_ignition(&mut parent, child);
        assert_eq!(
            parent["storage"]["files"][0],
            json!({"path":"/a","mode":384,"contents":{"source":"data:,p"}})
        );
        assert_eq!(parent["storage"]["files"][1]["path"], "/b");
        assert_eq!(parent["systemd"]["units"][0]["dropins"][0]["contents"], "2");
        assert_eq!(
            parent["systemd"]["units"][0]["dropins"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            parent["passwd"]["users"][0]["sshAuthorizedKeys"],
            json!(["k1", "k2"])
        );
    }
}
