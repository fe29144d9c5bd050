//! systemd-repart, found, checked and run the one way kiln uses it (the disk image's GPT, the
//! signed sysext's Discoverable Disk Image): a new image file of a fixed size from a directory
//! of repart.d definitions, the GPT's GUIDs seeded, the table of what it made as JSON.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_core::command::{find_tool, Detail, Run};

/// The oldest systemd-repart kiln runs (Debian 12's): `--empty=create`, `--seed`, `--json`,
/// `CopyBlocks=`, `Verity=` with `--private-key`/`--certificate`.
pub const MIN_VERSION: u32 = 252;

/// The systemd-repart on PATH, [`MIN_VERSION`] or newer, and with `verity` able to make verity
/// partitions (built with libcryptsetup); `who` (`--signing-key`, `[disk]`) starts the errors.
pub fn find(who: &str, verity: bool) -> anyhow::Result<PathBuf> {
    let repart = find_tool("systemd-repart", "systemd (>= 252)")
        .map_err(|e| anyhow::anyhow!("{who}: {e}"))?;
    let mut cmd = Command::new(&repart);
    cmd.arg("--version");
    let done = Run::new(&mut cmd, "systemd-repart --version").output()?;
    let text = String::from_utf8_lossy(&done.stdout);
    anyhow::ensure!(
        done.status.success() && version(&text) >= MIN_VERSION,
        "{who}: {} is not systemd-repart {MIN_VERSION} or newer",
        repart.display()
    );
    anyhow::ensure!(
        !verity || text.contains("+LIBCRYPTSETUP"),
        "{who}: {} was built without libcryptsetup and cannot make verity partitions",
        repart.display()
    );
    Ok(repart)
}

/// The version in `systemd-repart --version`'s first line (`systemd 252 (252.36-1~deb12u1)`).
fn version(text: &str) -> u32 {
    text.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Has `repart` make the new image file `image` (`size` bytes, must not exist) from the
/// definitions in `defs`, its GUIDs seeded by `seed` (a UUID), with `extra` arguments (signing
/// keys); returns repart's JSON table of the partitions it made.
pub fn create(
    repart: &Path,
    defs: &Path,
    image: &Path,
    size: u64,
    seed: &str,
    extra: &[OsString],
) -> anyhow::Result<Vec<u8>> {
    let mut definitions = OsString::from("--definitions=");
    definitions.push(defs);
    let mut cmd = Command::new(repart);
    cmd.arg(definitions)
        .args([
            "--empty=create",
            "--dry-run=no",
            "--no-pager",
            "--json=short",
        ])
        .arg(format!("--size={size}"))
        .arg(format!("--seed={seed}"))
        .args(extra)
        .arg(image);
    let done = Run::new(&mut cmd, "systemd-repart")
        .detail(Detail::Last(5))
        .run()?;
    Ok(done.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_the_first_lines_number() {
        assert_eq!(
            version("systemd 252 (252.36-1~deb12u1)\n+PAM +LIBCRYPTSETUP"),
            252
        );
        assert_eq!(version("systemd-repart\n"), 0);
    }
}
