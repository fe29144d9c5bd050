use super::*;

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap()
}

/// Merges the parts in order, as the compile step does.
fn merged(parts: &[(&str, Option<&str>)]) -> Result<Value> {
    let mut out = Value::Mapping(Mapping::new());
    for (i, (text, header)) in parts.iter().enumerate() {
        merge_part(&mut out, yaml(text), *header, &format!("part {}", i + 1))?;
    }
    Ok(out)
}

#[test]
fn default_replaces_top_level_keys_whole() {
    let out = merged(&[
        (
            "write_files: [{path: /a}]\nntp: {servers: [a], pools: [p]}\n",
            None,
        ),
        ("write_files: [{path: /b}]\nntp: {servers: [b]}\n", None),
    ])
    .unwrap();
    assert_eq!(
        out,
        yaml("write_files: [{path: /b}]\nntp: {servers: [b]}\n")
    );
}

#[test]
fn merge_how_appends_lists_and_is_removed() {
    let how = "merge_how: 'list(append)+dict(recurse_array)+str()'\n";
    let out = merged(&[
        ("write_files: [{path: /a}]\nruncmd: [one]\n", None),
        (
            &format!("{how}write_files: [{{path: /b}}]\nruncmd: [two]\n"),
            None,
        ),
    ])
    .unwrap();
    assert_eq!(
        out,
        yaml("write_files: [{path: /a}, {path: /b}]\nruncmd: [one, two]\n")
    );
}

#[test]
fn merge_type_header_and_list_forms() {
    let out = merged(&[
        ("runcmd: [one]\n", None),
        ("runcmd: [two]\n", Some("list(prepend)+dict(recurse_list)")),
        (
            "merge_how: [{name: dict, settings: [recurse_list]}, [list, append]]\nruncmd: [three]\n",
            None,
        ),
    ])
    .unwrap();
    assert_eq!(out, yaml("runcmd: [two, one, three]\n"));
}

#[test]
fn no_replace_keeps_and_allow_delete_removes() {
    let out = merged(&[
        ("hostname: a\nfqdn: a.example\nntp: {enabled: true}\n", None),
        (
            "merge_how: 'dict(no_replace,allow_delete,recurse_str)+str(append)'\nhostname: b\nfqdn: null\nntp: {enabled: false, servers: [x]}\n",
            None,
        ),
    ])
    .unwrap();
    assert_eq!(
        out,
        yaml("hostname: ab\nntp: {enabled: true, servers: [x]}\n")
    );
}

#[test]
fn list_replace_merges_by_index_and_keeps_the_rest() {
    let out = merged(&[
        ("a: [1, 2, 3]\n", None),
        (
            "merge_how: 'dict(recurse_list)+list(replace)'\na: [9]\n",
            None,
        ),
    ])
    .unwrap();
    assert_eq!(out, yaml("a: [9, 2, 3]\n"));
}

#[test]
fn a_part_without_a_dict_merger_changes_nothing() {
    let out = merged(&[
        ("a: 1\n", None),
        ("merge_how: 'list(append)'\na: 2\nb: 3\n", None),
    ])
    .unwrap();
    assert_eq!(out, yaml("a: 1\n"));
}

#[test]
fn bad_specs_are_errors_naming_the_part() {
    let err = merged(&[("merge_how: 'dict(replace'\na: 1\n", None)]).unwrap_err();
    assert_eq!(err.field, "part 1.merge_how");
    let err = merged(&[("merge_how: 'set()'\n", None)]).unwrap_err();
    assert!(err.message.contains("unknown merger \"set\""), "{err}");
    let err = merged(&[("a: 1\n", Some("list(append)+ +oops"))]).unwrap_err();
    assert_eq!(err.field, "part 1 Merge-Type");
    let err = merged(&[("merge_how: 3\n", None)]).unwrap_err();
    assert!(err.message.contains("string or a list"), "{err}");
}
