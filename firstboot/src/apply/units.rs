//! systemd units as Ignition writes them: unit files and drop-ins in /etc/systemd/system,
//! masks as links to /dev/null, enablement through `20-ignition.preset` (applied by systemd's
//! first-boot preset or by the boot-time run), and disabling removes `.wants` links.

use std::path::{Path, PathBuf};

use super::nodes::write_file;
use super::root::Root;
use crate::plan::Unit;
use crate::userdata::{Result, UserDataError};

const UNIT_DIR: &str = "/etc/systemd/system";
const PRESET_FILE: &str = "/etc/systemd/system-preset/20-ignition.preset";

/// Writes all units, then the preset file.
pub fn apply(units: &[Unit], root: &Root) -> Result<()> {
    let mut presets = String::new();
    for (i, unit) in units.iter().enumerate() {
        let origin = format!("systemd.units[{i}] ({})", unit.name);
        let unit_path = Path::new(UNIT_DIR).join(&unit.name);
        if let Some(contents) = &unit.contents {
            write_file(
                &root.resolve(&unit_path, &origin)?,
                contents.as_bytes(),
                0o644,
                (0, 0),
                &origin,
            )?;
        }
        for (name, contents) in &unit.dropins {
            if let Some(contents) = contents {
                let path = Path::new(UNIT_DIR)
                    .join(format!("{}.d", unit.name))
                    .join(name);
                write_file(
                    &root.resolve(&path, &origin)?,
                    contents.as_bytes(),
                    0o644,
                    (0, 0),
                    &origin,
                )?;
            }
        }
        if unit.mask {
            mask(&root.resolve(&unit_path, &origin)?, &origin)?;
        }
        match unit.enabled {
            Some(true) => presets.push_str(&format!("enable {}\n", unit.name)),
            Some(false) => {
                presets.push_str(&format!("disable {}\n", unit.name));
                remove_wants_links(root, &unit.name, &origin)?;
            }
            None => {}
        }
        tracing::info!(unit = %unit.name, "configured unit");
    }
    if !presets.is_empty() {
        let path = root.resolve(Path::new(PRESET_FILE), "systemd.units")?;
        write_file(&path, presets.as_bytes(), 0o644, (0, 0), "systemd.units")?;
    }
    Ok(())
}

fn mask(host: &Path, origin: &str) -> Result<()> {
    if let Some(parent) = host.parent() {
        std::fs::create_dir_all(parent).map_err(|e| UserDataError::io(origin, parent, e))?;
    }
    kiln_core::fsutil::publish(host, kiln_core::fsutil::Replace::Existing, |tmp| {
        std::os::unix::fs::symlink("/dev/null", tmp).map_err(|e| kiln_core::Error::io(tmp, e))
    })
    .map_err(|e| UserDataError::io(origin, host, e))
}

/// Removes `*.wants/NAME` and `*.requires/NAME` links, as `systemctl disable` would.
fn remove_wants_links(root: &Root, name: &str, origin: &str) -> Result<()> {
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
