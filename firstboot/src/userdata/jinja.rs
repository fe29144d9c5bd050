//! `## template: jinja` user-data, rendered with cloud-init's instance-data variable names.
//!
//! The metadata a datasource supplies (`metadata.json` of `kiln-firstboot fetch`) becomes
//! cloud-init's instance data: `v1.*` (`v1.instance_id`, `v1.local_hostname`, `v1.region`, ...),
//! the same keys at the top level, and `ds.meta_data.*` (the provider's raw metadata). As in
//! cloud-init, every key containing `-` also gets an alias with `_` (so NoCloud's
//! `local-hostname` is `ds.meta_data.local_hostname`). An undefined variable is an error that
//! names it, not silently empty text.
//!
//! Rendering runs on the run's `jinja-fuel` budget (minijinja's fuel: instructions and the data
//! a template creates), so nested loops and string doubling stop early; the output is charged
//! to the `decoded-bytes` budget.

use serde_json::{Map, Value};

use super::budget::{Budget, Limit};
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

/// Renders a template (header line included) with instance data built from `metadata`, on
/// what is left of `budget`.
pub fn render(text: &str, metadata: &Value, budget: &Budget, field: &str) -> Result<String> {
    let body = text.split_once('\n').map_or("", |(_, rest)| rest);
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| UserDataError::new(field, e.to_string()))?;
    env.set_syntax(syntax);
    env.set_fuel(Some(budget.left(Limit::JinjaFuel)));
    let context = minijinja::Value::from(minijinja::value::Serde(instance_data(metadata)));
    let rendered = env
        .template_from_str(body)
        .and_then(|t| t.render_captured(context))
        .map_err(|e| template_error(e, budget, field))?;
    let (used, _) = rendered.state().fuel_levels().unwrap_or_default();
    budget.charge(Limit::JinjaFuel, used, field)?;
    let output = rendered.into_output();
    budget.charge(Limit::DecodedBytes, output.len() as u64, field)?;
    Ok(output)
}

fn template_error(e: minijinja::Error, budget: &Budget, field: &str) -> UserDataError {
    if e.kind() == minijinja::ErrorKind::OutOfFuel {
        return budget.exceeded(Limit::JinjaFuel, field);
    }
    UserDataError::new(field, format!("jinja template: {e}; variables come from the datasource metadata (ds.meta_data.*, v1.*)"))
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
    use crate::userdata::budget::Limits;
    use serde_json::json;

    fn render_default(text: &str, metadata: &Value, field: &str) -> Result<String> {
        render(text, metadata, &Budget::new(Limits::default()), field)
    }

    #[test]
    fn cluster_api_style_template_renders() {
        let md = json!({"instance_id": "i-1", "local_hostname": "node-a", "region": "eu-1",
                        "meta_data": {"local-hostname": "node-a.internal"}});
        let text = "## template: jinja\n#cloud-config\nname: {{ ds.meta_data.local_hostname }}\nid: {{ v1.instance_id }} {{ region }}\n";
        assert!(is_template(text));
        let out = render_default(text, &md, "user-data").unwrap();
        assert_eq!(out, "#cloud-config\nname: node-a.internal\nid: i-1 eu-1\n");
    }

    #[test]
    fn undefined_variables_are_errors_that_name_them() {
        let err = render_default(
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

    #[test]
    fn runaway_templates_run_out_of_fuel() {
        let loops = "## template: jinja\n{% for i in range(10000) %}{% for j in range(10000) %}{{ j }}{% endfor %}{% endfor %}";
        let doubling = "## template: jinja\n{% set s = namespace(v='x') %}{% for i in range(64) %}{% set s.v = s.v ~ s.v %}{% endfor %}{{ s.v }}";
        let repeat = "## template: jinja\n{{ 'x' * 100000000000 }}";
        for text in [loops, doubling, repeat] {
            let started = std::time::Instant::now();
            let err = render_default(text, &json!({}), "part 1").unwrap_err();
            assert!(err.message.contains("jinja-fuel budget"), "{}", err.message);
            assert!(started.elapsed().as_secs() < 10, "{text}");
        }
    }

    #[test]
    fn fuel_is_shared_by_the_templates_of_a_run() {
        let mut limits = Limits::default();
        limits.set(Limit::JinjaFuel, 100_000);
        let budget = Budget::new(limits);
        let text = "## template: jinja\n{% for i in range(1000) %}{{ i }}{% endfor %}";
        render(text, &json!({}), &budget, "part 1").unwrap();
        let used = 100_000 - budget.left(Limit::JinjaFuel);
        assert!(used > 1000, "{used}");
        let mut runs = 1;
        let err = loop {
            match render(text, &json!({}), &budget, "part 2") {
                Ok(_) => runs += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(runs, 100_000 / used, "{used}");
        assert!(err.message.contains("jinja-fuel budget"), "{}", err.message);
    }
}
