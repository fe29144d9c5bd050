//! Recognises user-data formats and compiles them to one plan: gzip (unwrapped first), MIME
//! multipart (as cloud-init's make-mime and EKS produce), Ignition JSON, `#cloud-config`,
//! `## template: jinja`, `#cloud-boothook` and `#!` scripts. Cloud-config parts are merged in
//! order (cloud-init's default merge) before they are compiled. One [`Budget`] per compile
//! bounds the work of the whole run.

use serde_json::Value;

use super::budget::{Budget, Limit};
use super::cloudconfig;
use super::error::{Result, UserDataError};
use super::inputs::Inputs;
use super::resource::gunzip;
use super::{ignition, jinja, merge_how};
use crate::plan::{Command, Phase, Plan};

/// One recognised piece of user-data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// An Ignition config (JSON with `ignition.version`).
    Ignition(Vec<u8>),
    /// A `#cloud-config` document (already rendered if it was a template), with the
    /// `Merge-Type` header of its MIME part.
    CloudConfig {
        /// The YAML text.
        text: String,
        /// The MIME part's `Merge-Type` (or `X-Merge-Type`) header.
        merge_type: Option<String>,
    },
    /// A `#!` script, run by the boot-time run after runcmd.
    Script(Vec<u8>),
    /// A `#cloud-boothook`, run early in the boot-time run.
    Boothook(Vec<u8>),
}

/// Compiles user-data bytes (any supported format) into a plan, within `inputs.limits`.
pub fn compile(bytes: &[u8], inputs: &Inputs<'_>) -> Result<Plan> {
    let budget = Budget::new(inputs.limits);
    let parts = split(bytes, inputs.metadata, &budget, "user-data", 0)?;
    let ignition_parts = parts
        .iter()
        .filter(|p| matches!(p, Part::Ignition(_)))
        .count();
    if ignition_parts > 0 && ignition_parts != parts.len() || ignition_parts > 1 {
        return Err(UserDataError::new(
            "user-data",
            "an Ignition config cannot be combined with other parts; use ignition.config.merge",
        ));
    }
    let mut plan = Plan::default();
    let mut cloud_config: Option<serde_yaml_ng::Value> = None;
    for (i, part) in parts.into_iter().enumerate() {
        let origin = format!("part {}", i + 1);
        match part {
            Part::Ignition(json) => plan.extend(ignition::plan(&json, inputs.fetcher, &budget)?),
            Part::CloudConfig { text, merge_type } => {
                let doc = cloudconfig::parse_yaml(&text, &budget, &origin)?;
                // As cloud-init: the first part is merged into an empty mapping too.
                let merged = cloud_config
                    .get_or_insert_with(|| serde_yaml_ng::Value::Mapping(Default::default()));
                merge_how::merge_part(merged, doc, merge_type.as_deref(), &origin)?;
            }
            Part::Script(body) => plan.commands.push(script(Phase::Script, body, &origin)),
            Part::Boothook(body) => plan.commands.push(script(Phase::Boot, body, &origin)),
        }
    }
    if let Some(doc) = cloud_config {
        let mut cc = cloudconfig::compile(&doc, inputs, &budget)?;
        // As cloud-init: boothooks, then bootcmd (and later runcmd), then user-data scripts.
        let (boothooks, scripts): (Vec<_>, Vec<_>) = std::mem::take(&mut plan.commands)
            .into_iter()
            .partition(|c| c.phase == Phase::Boot);
        plan.commands = boothooks;
        plan.commands.append(&mut cc.commands);
        plan.commands.extend(scripts);
        plan.extend(cc);
    }
    Ok(plan)
}

fn script(phase: Phase, body: Vec<u8>, origin: &str) -> Command {
    Command {
        phase,
        argv: vec![],
        script: Some(body),
        origin: origin.to_owned(),
    }
}

/// Splits user-data into parts, unwrapping gzip and MIME and rendering jinja templates; what
/// that decodes is charged to `budget`.
pub fn split(
    bytes: &[u8],
    metadata: &Value,
    budget: &Budget,
    field: &str,
    depth: usize,
) -> Result<Vec<Part>> {
    if depth > 8 {
        return Err(UserDataError::new(
            field,
            "user-data nests gzip/MIME/templates too deeply",
        ));
    }
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let unzipped = gunzip(bytes, budget, field)?;
        return split(&unzipped, metadata, budget, field, depth + 1);
    }
    let text_start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let trimmed = &bytes[text_start..];
    if trimmed.is_empty() {
        return Ok(vec![]);
    }
    if trimmed.starts_with(b"{") {
        return ignition_part(bytes, field).map(|p| vec![p]);
    }
    if looks_like_mime(trimmed) {
        return split_mime(bytes, metadata, budget, field, depth);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| {
        UserDataError::new(
            field,
            "not UTF-8 text, gzip or MIME; cannot tell the format",
        )
    })?;
    if jinja::is_template(text) {
        let rendered = jinja::render(text, metadata, budget, field)?;
        return split(rendered.as_bytes(), metadata, budget, field, depth + 1);
    }
    by_first_line(text, field)
}

/// A text part by its first line: `#cloud-config`, `#cloud-boothook`, `#!`.
fn by_first_line(text: &str, field: &str) -> Result<Vec<Part>> {
    let first = text.lines().next().unwrap_or_default().trim_end();
    match first {
        l if l.starts_with("#cloud-config") => Ok(vec![Part::CloudConfig {
            text: text.to_owned(),
            merge_type: None,
        }]),
        l if l.starts_with("#cloud-boothook") => {
            Ok(vec![Part::Boothook(boothook_body(text.as_bytes()))])
        }
        l if l.starts_with("#!") => Ok(vec![Part::Script(text.as_bytes().to_vec())]),
        l if l.starts_with("#include") => Err(UserDataError::new(
            field,
            "#include user-data is not supported; inline the content",
        )),
        _ => Err(UserDataError::new(
            field,
            "unrecognised user-data format: expected Ignition JSON, #cloud-config, \
             ## template: jinja, a #! script, #cloud-boothook, MIME multipart or gzip",
        )),
    }
}

/// A boothook without its `#cloud-boothook` header line, as cloud-init runs it.
fn boothook_body(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    match text.split_once('\n') {
        Some((first, rest)) if first.trim_end().starts_with("#cloud-boothook") => {
            rest.as_bytes().to_vec()
        }
        _ => bytes.to_vec(),
    }
}

fn ignition_part(bytes: &[u8], field: &str) -> Result<Part> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| UserDataError::new(field, format!("invalid JSON: {e}")))?;
    if value.pointer("/ignition/version").is_none() {
        return Err(UserDataError::new(
            field,
            "JSON user-data without ignition.version is not an Ignition config",
        ));
    }
    Ok(Part::Ignition(bytes.to_vec()))
}

fn looks_like_mime(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).to_ascii_lowercase();
    head.starts_with("content-type:") || head.starts_with("mime-version:")
}

fn split_mime(
    bytes: &[u8],
    metadata: &Value,
    budget: &Budget,
    field: &str,
    depth: usize,
) -> Result<Vec<Part>> {
    check_delimiter_lines(bytes, budget, field)?;
    let mail = mailparse::parse_mail(bytes)
        .map_err(|e| UserDataError::new(field, format!("malformed MIME message: {e}")))?;
    let mut leaves = Vec::new();
    collect_leaves(&mail, &mut leaves);
    budget.charge(Limit::MimeParts, leaves.len() as u64, field)?;
    let mut parts = Vec::new();
    for (i, leaf) in leaves.into_iter().enumerate() {
        let pfield = format!("{field} MIME part {}", i + 1);
        let body = leaf
            .get_body_raw()
            .map_err(|e| UserDataError::new(&pfield, format!("undecodable body: {e}")))?;
        budget.charge(Limit::DecodedBytes, body.len() as u64, &pfield)?;
        let mimetype = &leaf.ctype.mimetype;
        let mut leaf_parts = mime_part(mimetype, body, metadata, budget, &pfield, depth)?;
        set_merge_type(&mut leaf_parts, leaf);
        parts.extend(leaf_parts);
    }
    Ok(parts)
}

/// Gives the cloud-config parts of a MIME leaf its `Merge-Type` (or `X-Merge-Type`) header,
/// unless a nested part already has one.
fn set_merge_type(parts: &mut [Part], leaf: &mailparse::ParsedMail<'_>) {
    use mailparse::MailHeaderMap;
    let header = ["Merge-Type", "X-Merge-Type"]
        .iter()
        .find_map(|h| leaf.headers.get_first_value(h).filter(|v| !v.is_empty()));
    for part in parts {
        if let Part::CloudConfig { merge_type, .. } = part {
            if merge_type.is_none() {
                merge_type.clone_from(&header);
            }
        }
    }
}

/// The MIME parser builds every part before kiln can count them, and an empty part costs six
/// bytes of input: refuse before parsing when the lines starting with `--` (every part starts
/// with such a delimiter line) are more than ten times the `mime-parts` budget left, so bodies
/// with such lines of their own (SQL comments) are not counted against it.
fn check_delimiter_lines(bytes: &[u8], budget: &Budget, field: &str) -> Result<()> {
    let delimiters = bytes
        .split(|&b| b == b'\n')
        .filter(|line| line.starts_with(b"--"))
        .count() as u64;
    if delimiters > budget.left(Limit::MimeParts).saturating_mul(10) {
        return Err(budget.exceeded(Limit::MimeParts, field));
    }
    Ok(())
}

fn collect_leaves<'a>(
    mail: &'a mailparse::ParsedMail<'a>,
    out: &mut Vec<&'a mailparse::ParsedMail<'a>>,
) {
    if mail.subparts.is_empty() {
        out.push(mail);
    }
    for sub in &mail.subparts {
        collect_leaves(sub, out);
    }
}

fn mime_part(
    mimetype: &str,
    body: Vec<u8>,
    metadata: &Value,
    budget: &Budget,
    field: &str,
    depth: usize,
) -> Result<Vec<Part>> {
    let as_text = |body: &[u8]| {
        String::from_utf8(body.to_vec())
            .map_err(|_| UserDataError::new(field, "part is not UTF-8 text"))
    };
    match mimetype {
        "text/cloud-config" => Ok(vec![Part::CloudConfig {
            text: as_text(&body)?,
            merge_type: None,
        }]),
        "text/x-shellscript" => Ok(vec![Part::Script(body)]),
        "text/cloud-boothook" => Ok(vec![Part::Boothook(boothook_body(&body))]),
        "text/jinja2" => {
            let text = as_text(&body)?;
            let text = if jinja::is_template(&text) { text } else { format!("{}\n{text}", jinja::HEADER) };
            let rendered = jinja::render(&text, metadata, budget, field)?;
            split(rendered.as_bytes(), metadata, budget, field, depth + 1)
        }
        "application/vnd.coreos.ignition+json" => Ok(vec![ignition_part(&body, field)?]),
        "text/plain" | "application/octet-stream" | "application/x-gzip" | "application/gzip" => {
            split(&body, metadata, budget, field, depth + 1)
        }
        other => Err(UserDataError::new(
            field,
            format!("MIME type {other} is not supported (text/cloud-config, text/x-shellscript, text/cloud-boothook, text/jinja2)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userdata::budget::Limits;
    use serde_json::json;

    fn parts(data: &[u8]) -> Result<Vec<Part>> {
        let budget = Budget::new(Limits::default());
        split(
            data,
            &json!({"local_hostname": "n1"}),
            &budget,
            "user-data",
            0,
        )
    }

    #[test]
    fn formats_are_recognised() {
        assert!(matches!(
            parts(b"#cloud-config\na: 1\n").unwrap()[..],
            [Part::CloudConfig { .. }]
        ));
        assert!(matches!(
            parts(b"#!/bin/sh\necho hi\n").unwrap()[..],
            [Part::Script(_)]
        ));
        assert!(matches!(
            parts(b"#cloud-boothook\necho\n").unwrap()[..],
            [Part::Boothook(_)]
        ));
        assert!(matches!(
            parts(br#" {"ignition":{"version":"3.3.0"}}"#).unwrap()[..],
            [Part::Ignition(_)]
        ));
        assert!(parts(b"").unwrap().is_empty());
        let rendered =
            parts(b"## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\n")
                .unwrap();
        assert_eq!(
            rendered,
            vec![Part::CloudConfig {
                text: "#cloud-config\nhostname: n1\n".into(),
                merge_type: None
            }]
        );
    }

    #[test]
    fn gzip_is_unwrapped() {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b"#cloud-config\n{}\n").unwrap();
        assert!(matches!(
            parts(&e.finish().unwrap()).unwrap()[..],
            [Part::CloudConfig { .. }]
        ));
    }

    #[test]
    fn mime_multipart_parts_keep_their_order() {
        let mime = "Content-Type: multipart/mixed; boundary=\"XX\"\nMIME-Version: 1.0\n\n\
--XX\nContent-Type: text/cloud-config; charset=\"us-ascii\"\n\n#cloud-config\nhostname: a\n\
--XX\nContent-Type: text/x-shellscript\nContent-Transfer-Encoding: base64\n\nIyEvYmluL3NoCmVjaG8gaGkK\n\
--XX\nContent-Type: text/cloud-config\n\n#cloud-config\nhostname: b\n--XX--\n";
        let p = parts(mime.as_bytes()).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[1], Part::Script(b"#!/bin/sh\necho hi\n".to_vec()));
        let err = parts(b"Content-Type: multipart/mixed; boundary=\"X\"\n\n--X\nContent-Type: text/x-include-url\n\nhttp://a\n--X--\n").unwrap_err();
        assert!(err.to_string().contains("text/x-include-url"), "{err}");
    }

    #[test]
    fn mime_merge_type_headers_reach_the_cloud_config_parts() {
        let mime = "Content-Type: multipart/mixed; boundary=\"XX\"\nMIME-Version: 1.0\n\n\
--XX\nContent-Type: text/cloud-config\n\n#cloud-config\nruncmd: [a]\n\
--XX\nContent-Type: text/cloud-config\nMerge-Type: list(append)+dict(recurse_array)+str()\n\n#cloud-config\nruncmd: [b]\n\
--XX\nContent-Type: text/plain\nX-Merge-Type: dict(replace)\n\n#cloud-config\nhostname: c\n--XX--\n";
        let types: Vec<Option<String>> = parts(mime.as_bytes())
            .unwrap()
            .into_iter()
            .map(|p| match p {
                Part::CloudConfig { merge_type, .. } => merge_type,
                _ => panic!("{p:?}"),
            })
            .collect();
        assert_eq!(
            types,
            [
                None,
                Some("list(append)+dict(recurse_array)+str()".into()),
                Some("dict(replace)".into())
            ]
        );
    }

    #[test]
    fn unknown_formats_are_clear_errors() {
        let err = parts(b"hello world").unwrap_err().to_string();
        assert!(
            err.starts_with("user-data: unrecognised user-data format"),
            "{err}"
        );
        let err = parts(br#"{"a":1}"#).unwrap_err().to_string();
        assert!(err.contains("not an Ignition config"), "{err}");
        let err = parts(b"{not json").unwrap_err().to_string();
        assert!(err.contains("invalid JSON"), "{err}");
    }

    #[test]
    fn mime_parts_are_budgeted() {
        let part = "--XX\nContent-Type: text/x-shellscript\n\n#!/bin/sh\n";
        let mime = format!(
            "Content-Type: multipart/mixed; boundary=\"XX\"\nMIME-Version: 1.0\n\n{}--XX--\n",
            part.repeat(3)
        );
        let mut limits = Limits::default();
        limits.set(Limit::MimeParts, 2);
        let budget = Budget::new(limits);
        let err = split(mime.as_bytes(), &json!({}), &budget, "user-data", 0).unwrap_err();
        assert_eq!(err.field, "user-data");
        assert!(
            err.message.contains("mime-parts budget of 2"),
            "{}",
            err.message
        );
    }

    #[test]
    fn millions_of_empty_mime_parts_are_refused_before_parsing() {
        let mime = format!(
            "Content-Type: multipart/mixed; boundary=\"B\"\nMIME-Version: 1.0\n\n{}--B--\n",
            "--B\n\n".repeat(1_000_000)
        );
        let started = std::time::Instant::now();
        let err = parts(mime.as_bytes()).unwrap_err();
        assert!(
            err.message.contains("mime-parts budget of 1000"),
            "{}",
            err.message
        );
        assert!(started.elapsed().as_secs() < 5);
    }
}
