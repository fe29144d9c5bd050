//! `## template: jinja` user-data, rendered with cloud-init's instance-data variable names.
//!
//! The metadata a datasource supplies (`metadata.json` of `kiln-firstboot fetch`) becomes
//! cloud-init's instance data: `v1.*` (`v1.instance_id`, `v1.local_hostname`, `v1.region`, ...),
//! the same keys at the top level, and `ds.meta_data.*` (the provider's raw metadata). As in
//! cloud-init, every key containing `-` also gets an alias with `_` (so NoCloud's
//! `local-hostname` is `ds.meta_data.local_hostname`). An undefined variable is an error that
//! names it, not silently empty text.

use serde_json::{Map, Value};

use super::error::{Result, UserDataError};

/// The first line that marks a jinja template.
pub const HEADER: &str = "## template: jinja";

/// The v1 keys cloud-init defines, read from kiln's metadata document.
const V1_KEYS: [&str; 7] = [
    "cloud_name",
    "instance_id",
    "local_hostname",
    "region",
    "availability_zone",
    "platform",
    "local_ipv4",
];

/// Whether `text` starts with the jinja header (case-insensitive, spaces allowed).
pub fn is_template(text: &str) -> bool {
    let first = text.lines().next().unwrap_or_default();
    let squashed: String = first.chars().filter(|c| !c.is_whitespace()).collect();
    squashed.eq_ignore_ascii_case("##template:jinja")
}

/// Renders a template (header line included) with instance data built from `metadata`.
pub fn render(text: &str, metadata: &Value, field: &str) -> Result<String> {
    let body = text.split_once('\n').map_or("", |(_, rest)| rest);
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| UserDataError::new(field, e.to_string()))?;
    env.set_syntax(syntax);
    let context = minijinja::Value::from(minijinja::value::Serde(instance_data(metadata)));
    env.render_str(body, context).map_err(|e| {
        UserDataError::new(field, format!("jinja template: {e}; variables come from the datasource metadata (ds.meta_data.*, v1.*)"))
    })
}

/// cloud-init's instance-data document built from kiln's metadata.
pub fn instance_data(metadata: &Value) -> Value {
    let mut v1 = Map::new();
    for key in V1_KEYS {
        v1.insert(
            key.to_owned(),
            metadata.get(key).cloned().unwrap_or(Value::Null),
        );
    }
    let mut root = Map::new();
    for (k, v) in &v1 {
        root.insert(k.clone(), v.clone());
    }
    root.insert("v1".into(), Value::Object(v1));
    let meta_data = metadata
        .get("meta_data")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    root.insert("ds".into(), serde_json::json!({ "meta_data": meta_data }));
    with_underscore_aliases(Value::Object(root))
}

fn with_underscore_aliases(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let v = with_underscore_aliases(v);
                if k.contains('-') {
                    out.entry(k.replace('-', "_")).or_insert_with(|| v.clone());
                }
                out.insert(k, v);
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(with_underscore_aliases).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cluster_api_style_template_renders() {
        let md = json!({"instance_id": "i-1", "local_hostname": "node-a", "region": "eu-1",
                        "meta_data": {"local-hostname": "node-a.internal"}});
        let text = "## template: jinja\n#cloud-config\nname: {{ ds.meta_data.local_hostname }}\nid: {{ v1.instance_id }} {{ region }}\n";
        assert!(is_template(text));
        let out = render(text, &md, "user-data").unwrap();
        assert_eq!(out, "#cloud-config\nname: node-a.internal\nid: i-1 eu-1\n");
    }

    #[test]
    fn undefined_variables_are_errors_that_name_them() {
        let err = render(
            "## template: jinja\n{{ ds.meta_data.nope }}",
            &json!({}),
            "part 1",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("part 1: jinja template"), "{err}");
    }

    #[test]
    fn header_detection_is_lenient_about_spaces() {
        assert!(is_template("##template: JINJA\nx"));
        assert!(!is_template("#cloud-config\n"));
    }
}
