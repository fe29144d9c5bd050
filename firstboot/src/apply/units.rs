//! systemd units as Ignition writes them, expanded into plain nodes before anything is written:
//! unit files and drop-ins in /etc/systemd/system, masks as links to /dev/null, enablement
//! through `20-ignition.preset` (its existing lines kept, the plan's lines added; applied by
//! systemd's first-boot preset or by the boot-time run). Disabling also removes `.wants` links,
//! after the commit.

use std::path::{Path, PathBuf};

use super::root::Root;
use crate::plan::{Existing, File, Link, Node, Owner, Unit, Writer};
use crate::userdata::{Result, UserDataError};

const UNIT_DIR: &str = "/etc/systemd/system";
const PRESET_FILE: &str = "/etc/systemd/system-preset/20-ignition.preset";

/// The nodes that write `units`: unit files, drop-ins, masks, then the preset file.
pub fn nodes(units: &[Unit], root: &Root) -> Result<Vec<Node>> {
    let mut out = Vec::new();
    let mut presets = Vec::new();
    for (i, unit) in units.iter().enumerate() {
        let origin = format!("systemd.units[{i}] ({})", unit.name);
        plain_name(&unit.name, &origin)?;
        let unit_path = Path::new(UNIT_DIR).join(&unit.name);
        // A masked unit's file would be replaced by the mask at once: the mask wins.
        if let Some(contents) = unit.contents.as_ref().filter(|_| !unit.mask) {
            out.push(file(unit_path.clone(), contents.as_bytes(), &origin));
        }
        for (name, contents) in &unit.dropins {
            plain_name(name, &format!("{origin}.dropins"))?;
            if let Some(contents) = contents {
                let path = Path::new(UNIT_DIR).join(format!("{}.d", unit.name));
                out.push(file(path.join(name), contents.as_bytes(), &origin));
            }
        }
        if unit.mask {
            out.push(Node::Link(Link {
                path: unit_path,
                target: "/dev/null".into(),
                hard: false,
                overwrite: true,
                owner: Owner::default(),
                origin: origin.clone(),
            }));
        }
        match unit.enabled {
            Some(true) => presets.push(("enable", unit.name.as_str())),
            Some(false) => presets.push(("disable", unit.name.as_str())),
            None => {}
        }
    }
    if !presets.is_empty() {
        let text = merge_presets(&read_presets(root)?, &presets);
        out.push(file(PRESET_FILE.into(), text.as_bytes(), "systemd.units"));
    }
    Ok(out)
}

/// The preset file's new text: existing lines kept, except those for units the plan sets
/// (systemd takes the first line naming a unit, so the plan's line replaces them), then the
/// plan's lines, each once.
fn merge_presets(existing: &str, presets: &[(&str, &str)]) -> String {
    let planned = |line: &str| {
        let unit = line.split_whitespace().nth(1);
        presets.iter().any(|(_, name)| Some(*name) == unit)
    };
    let mut lines: Vec<String> = existing
        .lines()
        .filter(|l| !planned(l))
        .map(str::to_owned)
        .collect();
    for (verb, name) in presets {
        let line = format!("{verb} {name}");
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The preset file as it is now (empty if missing), read inside the root.
fn read_presets(root: &Root) -> Result<String> {
    let bytes = root.read(Path::new(PRESET_FILE), "systemd.units")?;
    Ok(String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned())
}

/// A unit or drop-in name is one path component.
fn plain_name(name: &str, origin: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(UserDataError::new(
            origin,
            format!("{name:?} is not a unit or drop-in file name"),
        ));
    }
    Ok(())
}

fn file(path: PathBuf, contents: &[u8], origin: &str) -> Node {
    Node::File(File {
        path,
        contents: Some(contents.to_vec()),
        append: Vec::new(),
        existing: Existing::Overwrite,
        mode: Some(0o644),
        owner: Owner::default(),
        writer: Writer::Replace,
        origin: origin.to_owned(),
    })
}

/// Removes `*.wants/NAME` and `*.requires/NAME` links of every disabled unit, as `systemctl
/// disable` would (after the commit; removing a link that is gone is done).
pub fn remove_wants_links(units: &[Unit], root: &Root) -> Result<()> {
    for (i, unit) in units.iter().enumerate() {
        if unit.enabled == Some(false) {
            let origin = format!("systemd.units[{i}] ({})", unit.name);
            remove_links_of(root, &unit.name, &origin)?;
        }
    }
    Ok(())
}

fn remove_links_of(root: &Root, name: &str, origin: &str) -> Result<()> {
    let dir: PathBuf = root
        .resolve(&Path::new(UNIT_DIR).join("x"), origin)?
        .with_file_name("");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let sub = entry.file_name().to_string_lossy().into_owned();
        // Only real directories: a symlinked .wants could point outside the root.
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && (sub.ends_with(".wants") || sub.ends_with(".requires")) {
            let link = entry.path().join(name);
            if link.symlink_metadata().is_ok() {
                std::fs::remove_file(&link).map_err(|e| UserDataError::io(origin, &link, e))?;
                // Like Ignition, leave no empty .wants directory behind.
                let _ = std::fs::remove_dir(entry.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_keep_existing_lines_and_replace_those_the_plan_sets() {
        let existing = "enable a.service\ndisable b.service\n# comment\n";
        let merged = merge_presets(
            existing,
            &[("enable", "b.service"), ("enable", "c.service")],
        );
        assert_eq!(
            merged,
            "enable a.service\n# comment\nenable b.service\nenable c.service\n"
        );
        // Applying the same units again changes nothing.
        let again = merge_presets(&merged, &[("enable", "b.service"), ("enable", "c.service")]);
        assert_eq!(again, merged);
    }

    #[test]
    fn unit_names_are_one_component() {
        assert!(plain_name("a.service", "u").is_ok());
        for bad in ["", "..", "a/b", "x\0"] {
            assert!(plain_name(bad, "u").is_err(), "{bad}");
        }
    }
}
