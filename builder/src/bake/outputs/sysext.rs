//! The sysext image: a content tree (laid out as `/usr`) gets its extension-release file, every
//! mtime set to `SOURCE_DATE_EPOCH`, and is packed reproducibly into a squashfs or erofs image.
//!
//! systemd-sysext(8) merges `/etc/extensions/NAME.raw` (or `/var/lib/extensions/…`) only if the
//! image carries `usr/lib/extension-release.d/extension-release.NAME` with exactly that NAME, so
//! a versioned `NAME-v1.31.4-x86-64.raw` must be installed under the name `NAME.raw` (a symlink,
//! as systemd-sysupdate's `CurrentSymlink=` makes).
//!
//! Reproducibility (squashfs-tools 4.5.1, erofs-utils 1.5): mksquashfs sorts directory entries and
//! is reproducible by default; `-mkfs-time`/`-all-time` pin the superblock and inode times,
//! `-all-root` the owners, `-no-xattrs` drops host labels; the image is the same with any
//! `-processors`. mkfs.erofs 1.5 lays directories out in name order; `-T` sets the superblock
//! build time and every inode's time (checked: host mtimes differ, dump.erofs shows `-T`),
//! `--all-root` the owners, `-x-1` drops xattrs, and `-U` takes a UUID kiln derives from a seed.
//! mksquashfs reads `SOURCE_DATE_EPOCH` itself and refuses it next to `-all-time`, so
//! it is removed from their environment and the epoch passed explicitly.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use kiln_core::command::{find_tool, Detail, Run};
use kiln_core::fsutil::{publish, Replace};
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;

use serde::Deserialize;

use crate::bake::arch::Arch;

/// The sysext filesystem.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SysextFormat {
    /// squashfs (zstd).
    #[default]
    Squashfs,
    /// erofs (lz4hc).
    Erofs,
    /// No sysext image.
    None,
}

/// Where the extension-release file lives inside the tree.
pub const EXTENSION_RELEASE_DIR: &str = "usr/lib/extension-release.d";

/// How systemd-sysext matches the extension to the host (os-release(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level<'a> {
    /// `SYSEXT_LEVEL=` (compared when the host's ID matches and ID is not `_any`).
    SysextLevel(&'a str),
    /// `VERSION_ID=` (compared when no SYSEXT_LEVEL is given).
    VersionId(&'a str),
}

/// The text of `extension-release.NAME`. `id` is the host's os-release ID to match, or `_any`
/// (systemd ≥ 252 then skips the ID and level checks; older ones refuse the image).
/// `ARCHITECTURE=` uses systemd's names (`x86-64`, `arm64`) and is checked against uname(2).
/// `SYSEXT_SCOPE=system` keeps kubelet out of initrds and portable services.
/// `EXTENSION_RELOAD_MANAGER=1` makes systemd ≥ 255 reload units on merge (older ones ignore it).
pub fn extension_release(id: &str, level: Level<'_>, arch: Arch) -> String {
    let level = match level {
        Level::SysextLevel(v) => format!("SYSEXT_LEVEL={v}"),
        Level::VersionId(v) => format!("VERSION_ID={v}"),
    };
    format!(
        "ID={id}\n{level}\nARCHITECTURE={}\nSYSEXT_SCOPE=system\nEXTENSION_RELOAD_MANAGER=1\n",
        arch.systemd()
    )
}

/// Writes `usr/lib/extension-release.d/extension-release.NAME` (0644) into `tree`.
pub fn write_extension_release(
    tree: &Path,
    name: &str,
    id: &str,
    level: Level<'_>,
    arch: Arch,
) -> anyhow::Result<PathBuf> {
    let value = match level {
        Level::SysextLevel(v) | Level::VersionId(v) => v,
    };
    // os-release(5): ID and SYSEXT_LEVEL/VERSION_ID are lower-case [0-9a-z._-].
    for (what, v) in [("ID", id), ("level", value)] {
        let ok = !v.is_empty()
            && v.bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'));
        anyhow::ensure!(
            ok,
            "extension-release {what} {v:?}: use 0-9, a-z, '.', '_', '-'"
        );
    }
    let path = tree
        .join(EXTENSION_RELEASE_DIR)
        .join(format!("extension-release.{name}"));
    let text = extension_release(id, level, arch);
    kiln_core::fsutil::write_atomic(&path, text.as_bytes(), 0o644)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Packs `tree` into the image `out` (written beside it under a temporary name, then renamed).
/// Every mtime in `tree` is set to `source_date_epoch` first; the erofs UUID derives from
/// `uuid_seed` (use e.g. the output file name). `SysextFormat::None` does nothing.
pub fn pack(
    tree: &Path,
    out: &Path,
    format: SysextFormat,
    source_date_epoch: u64,
    uuid_seed: &str,
) -> anyhow::Result<()> {
    let args = match format {
        SysextFormat::None => return Ok(()),
        SysextFormat::Squashfs => None,
        SysextFormat::Erofs => Some(derived_uuid(uuid_seed)),
    };
    let tool = match format {
        SysextFormat::Erofs => find_tool("mkfs.erofs", "erofs-utils")?,
        _ => find_tool("mksquashfs", "squashfs-tools")?,
    };
    normalise_tree(tree, source_date_epoch)?;
    let result = publish(out, Replace::Existing, |tmp| {
        let argv = match args {
            None => squashfs_args(tree, tmp, source_date_epoch),
            Some(uuid) => erofs_args(tree, tmp, source_date_epoch, &uuid),
        };
        run_tool(&tool, &argv)
    });
    result.with_context(|| format!("packing {} into {}", tree.display(), out.display()))
}

/// mksquashfs arguments: zstd (kernel ≥ 4.14; Flatcar, Fedora and Debian kernels build
/// `SQUASHFS_ZSTD`), owners root, all times and the superblock time pinned, no xattrs.
fn squashfs_args(tree: &Path, out: &Path, epoch: u64) -> Vec<OsString> {
    let epoch = epoch.to_string();
    let mut argv: Vec<OsString> = vec![tree.into(), out.into()];
    for a in [
        "-noappend",
        "-reproducible",
        "-comp",
        "zstd",
        "-all-root",
        "-no-xattrs",
        "-mkfs-time",
        &epoch,
        "-all-time",
        &epoch,
        "-no-progress",
        "-quiet",
        "-exit-on-error",
    ] {
        argv.push(a.into());
    }
    argv
}

/// mkfs.erofs (1.5) arguments: lz4hc level 12, fixed build time and UUID, owners root, no xattrs.
fn erofs_args(tree: &Path, out: &Path, epoch: u64, uuid: &str) -> Vec<OsString> {
    let mut argv: Vec<OsString> = [
        "-zlz4hc,12".to_owned(),
        format!("-T{epoch}"),
        format!("-U{uuid}"),
        "--all-root".to_owned(),
        "-x-1".to_owned(),
        "--quiet".to_owned(),
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    argv.push(out.into());
    argv.push(tree.into());
    argv
}

/// A UUID (RFC 9562 version 8, "custom") from the SHA-256 of `seed`: the same seed, the same UUID.
pub fn derived_uuid(seed: &str) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("kiln sysext uuid\0{seed}").as_bytes(),
    );
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Normalises `tree` for reproducible, host-independent output: every mtime = `epoch`,
/// directories 0755, files 0755 if any execute bit is set else 0644 (the build machine's umask
/// must not reach the image: overlayfs takes a merged directory's mode from the top layer).
pub fn normalise_tree(tree: &Path, epoch: u64) -> anyhow::Result<()> {
    let secs = i64::try_from(epoch).context("SOURCE_DATE_EPOCH out of range")?;
    let ts = TimeSpec::new(secs, 0);
    fn walk(path: &Path, ts: &TimeSpec) -> anyhow::Result<()> {
        let meta =
            std::fs::symlink_metadata(path).with_context(|| format!("{}", path.display()))?;
        let mode = if meta.is_dir() {
            for entry in std::fs::read_dir(path).with_context(|| format!("{}", path.display()))? {
                walk(
                    &entry.with_context(|| format!("{}", path.display()))?.path(),
                    ts,
                )?;
            }
            Some(0o755)
        } else if meta.is_file() {
            Some(if meta.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            })
        } else {
            None
        };
        if let Some(mode) = mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("setting the mode of {}", path.display()))?;
        }
        utimensat(
            nix::fcntl::AT_FDCWD,
            path,
            ts,
            ts,
            UtimensatFlags::NoFollowSymlink,
        )
        .with_context(|| format!("setting the mtime of {}", path.display()))
    }
    walk(tree, &ts)
}

/// Runs `tool` with `args` (without `SOURCE_DATE_EPOCH`); a failure carries its stderr.
pub(crate) fn run_tool(tool: &Path, args: &[OsString]) -> anyhow::Result<()> {
    let mut cmd = Command::new(tool);
    cmd.args(args).env_remove("SOURCE_DATE_EPOCH");
    // The first lines carry the error; mkfs.erofs follows them with its whole usage text.
    let done = Run::new(&mut cmd, tool.display().to_string())
        .detail(Detail::First(10))
        .output()?;
    if !done.status.success() {
        anyhow::bail!(
            "{} failed ({}): {}",
            tool.display(),
            done.status,
            done.detail()
        );
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
pub mod verity;
