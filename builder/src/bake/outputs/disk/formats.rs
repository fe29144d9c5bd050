//! The disk image's output formats (`[disk] formats`): their names and files, the host tools
//! each needs (checked before any long work), and the conversions from `disk.raw`, run in
//! parallel with the field's tools (qemu-img's `qcow2`/`vpc`/`vhdx`/`vmdk` drivers, GNU tar).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};
use kiln_core::command::Run;

use crate::bake::phases::Phases;
use crate::bake::pool;

/// One disk output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// The raw GPT disk (`disk.raw`): AWS `import-snapshot`, bare metal (`dd`), anything.
    Raw,
    /// qcow2 (`disk.qcow2`): QEMU/KVM, OpenStack.
    Qcow2,
    /// Fixed-size VHD, virtual size a whole number of MiB (`disk.vhd`): Azure, AWS.
    Vhd,
    /// VHDX (`disk.vhdx`): Hyper-V.
    Vhdx,
    /// Stream-optimized VMDK (`disk.vmdk`): VMware, AWS.
    Vmdk,
    /// `disk.raw` in a gzip'd GNU tar (`disk-gce.tar.gz`): Google Compute Engine image import.
    Gce,
}

/// Every format, in the order outputs are listed.
pub const ALL: [Format; 6] = [
    Format::Raw,
    Format::Qcow2,
    Format::Vhd,
    Format::Vhdx,
    Format::Vmdk,
    Format::Gce,
];

const MIB: u64 = 1 << 20;

impl Format {
    /// The name used in `[disk] formats` and in the build report.
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
            Format::Vhd => "vhd",
            Format::Vhdx => "vhdx",
            Format::Vmdk => "vmdk",
            Format::Gce => "gce",
        }
    }

    /// The format named `name` in a recipe.
    pub fn parse(name: &str) -> anyhow::Result<Format> {
        ALL.into_iter().find(|f| f.name() == name).ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|f| f.name()).collect();
            anyhow::anyhow!(
                "disk.formats: {name:?} is not a disk format; use {}",
                names.join(", ")
            )
        })
    }

    /// The file it is written to in the output directory.
    pub fn file(self) -> &'static str {
        match self {
            Format::Raw => "disk.raw",
            Format::Qcow2 => "disk.qcow2",
            Format::Vhd => "disk.vhd",
            Format::Vhdx => "disk.vhdx",
            Format::Vmdk => "disk.vmdk",
            Format::Gce => "disk-gce.tar.gz",
        }
    }

    /// The format of the output file `file`, if it is a disk output.
    pub fn of_file(file: &str) -> Option<Format> {
        ALL.into_iter().find(|f| f.file() == file)
    }

    /// The host programs writing it needs, with the Debian package of each.
    pub fn tools(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Format::Raw => &[],
            Format::Qcow2 | Format::Vhd | Format::Vhdx | Format::Vmdk => {
                &[("qemu-img", "qemu-utils")]
            }
            Format::Gce => &[("tar", "tar"), ("gzip", "gzip")],
        }
    }

    /// The `qemu-img convert` output options, for the qemu-img formats.
    fn qemu_img_args(self) -> Option<&'static [&'static str]> {
        match self {
            Format::Qcow2 => Some(&["-O", "qcow2"]),
            // Azure: fixed subformat, and the footer's size is the virtual size as given
            // (force_size), not qemu-img's CHS-rounded one.
            Format::Vhd => Some(&["-O", "vpc", "-o", "subformat=fixed,force_size=on"]),
            Format::Vhdx => Some(&["-O", "vhdx"]),
            Format::Vmdk => Some(&["-O", "vmdk", "-o", "subformat=streamOptimized"]),
            Format::Raw | Format::Gce => None,
        }
    }
}

/// `bytes` rounded up to a whole MiB (Azure wants a VHD's virtual size aligned to 1 MiB).
pub fn round_up_mib(bytes: u64) -> u64 {
    bytes.div_ceil(MIB) * MIB
}

/// The missing tools for `formats`: `prog (package pkg, for f1, f2)`, per program, given a
/// way to tell whether a program is on the host.
pub fn missing_tools(formats: &[Format], present: impl Fn(&str) -> bool) -> Vec<String> {
    let mut missing: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for &format in formats {
        for &(prog, pkg) in format.tools() {
            if present(prog) {
                continue;
            }
            match missing.iter_mut().find(|(p, _, _)| *p == prog) {
                Some((_, _, users)) => users.push(format.name()),
                None => missing.push((prog, pkg, vec![format.name()])),
            }
        }
    }
    missing
        .into_iter()
        .map(|(prog, pkg, users)| format!("{prog} (package {pkg}, for {})", users.join(", ")))
        .collect()
}

/// Fails naming every program `formats` need that the host lacks.
pub fn check_tools(formats: &[Format]) -> anyhow::Result<()> {
    let missing = missing_tools(formats, |prog| kiln_core::command::which(prog).is_some());
    if !missing.is_empty() {
        bail!(
            "disk.formats: missing on this host: {}; install them or remove those formats",
            missing.join("; ")
        );
    }
    Ok(())
}

/// Writes every format of `formats` but raw from `raw` into `dir` (as [`Format::file`]),
/// at most `jobs` conversions at a time; `raw` itself is only read. Each conversion is a
/// phase of `phases` (`convert FORMAT`).
pub fn convert_all(
    raw: &Path,
    formats: &[Format],
    dir: &Path,
    jobs: usize,
    phases: &Phases,
) -> anyhow::Result<()> {
    let todo: Vec<Format> = formats
        .iter()
        .copied()
        .filter(|f| *f != Format::Raw)
        .collect();
    pool::all(&todo, jobs, |format| {
        let file = dir.join(format.file());
        phases.run(&format!("convert {}", format.name()), || {
            convert(raw, *format, &file)
        })
    })?;
    Ok(())
}

/// Writes `raw` as `format` at `out`.
pub fn convert(raw: &Path, format: Format, out: &Path) -> anyhow::Result<()> {
    match format {
        Format::Raw => bail!("raw is the source, not a conversion"),
        Format::Vhd => vhd(raw, out),
        Format::Gce => gce_tar(raw, out),
        _ => qemu_img_convert(raw, format, out),
    }
}

fn qemu_img_convert(source: &Path, format: Format, out: &Path) -> anyhow::Result<()> {
    let args = format.qemu_img_args().context("not a qemu-img format")?;
    Run::new(
        Command::new("qemu-img")
            .args(["convert", "-f", "raw"])
            .args(args)
            .arg(source)
            .arg(out),
        format!("converting to {}", format.name()),
    )
    .run()?;
    Ok(())
}

/// The fixed VHD: from `raw` itself when its size is a whole number of MiB, else from a sparse
/// copy of it resized up to the next MiB (the copy sits beside `out` and is removed).
fn vhd(raw: &Path, out: &Path) -> anyhow::Result<()> {
    let size = std::fs::metadata(raw)
        .with_context(|| format!("reading {}", raw.display()))?
        .len();
    let rounded = round_up_mib(size);
    if rounded == size {
        return qemu_img_convert(raw, Format::Vhd, out);
    }
    let copy = TempPath(sibling(out, ".vhd-source.raw"));
    Run::new(
        Command::new("qemu-img")
            .args(["convert", "-f", "raw", "-O", "raw"])
            .arg(raw)
            .arg(&copy.0),
        "copying the raw disk for the VHD",
    )
    .run()?;
    Run::new(
        Command::new("qemu-img")
            .args(["resize", "-f", "raw"])
            .arg(&copy.0)
            .arg(rounded.to_string()),
        format!("growing the VHD's copy to {rounded} bytes (a whole MiB)"),
    )
    .run()?;
    qemu_img_convert(&copy.0, Format::Vhd, out)
}

/// GCE's image import: a gzip'd GNU tar with exactly one member, `disk.raw` (sparse, owned by
/// root). When `raw` is not named `disk.raw`, a hard link of that name is made beside `out`.
fn gce_tar(raw: &Path, out: &Path) -> anyhow::Result<()> {
    let (dir, _link) = if raw.file_name().is_some_and(|n| n == "disk.raw") {
        (kiln_core::fsutil::parent_dir(raw), None)
    } else {
        let link_dir = tempfile::Builder::new()
            .prefix(".gce-")
            .tempdir_in(kiln_core::fsutil::parent_dir(out))
            .context("making a directory for the GCE tar's disk.raw")?;
        let link = link_dir.path().join("disk.raw");
        std::fs::hard_link(raw, &link)
            .or_else(|_| std::fs::copy(raw, &link).map(|_| ()))
            .with_context(|| format!("linking {} as {}", raw.display(), link.display()))?;
        (link_dir.path().to_owned(), Some(link_dir))
    };
    Run::new(
        Command::new("tar")
            .args([
                "--format=gnu",
                "--sparse",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "-z",
                "-c",
                "-f",
            ])
            .arg(out)
            .arg("-C")
            .arg(&dir)
            .arg("disk.raw"),
        "writing the GCE tar (disk.raw, GNU format, gzip)",
    )
    .run()?;
    Ok(())
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    path.with_file_name(name)
}

/// A file removed when dropped.
struct TempPath(PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_files_and_unknown_names() {
        for f in ALL {
            assert_eq!(Format::parse(f.name()).unwrap(), f);
            assert_eq!(Format::of_file(f.file()), Some(f));
        }
        let e = Format::parse("vdi").unwrap_err().to_string();
        assert!(
            e.contains("\"vdi\"") && e.contains("raw, qcow2, vhd, vhdx, vmdk, gce"),
            "{e}"
        );
        assert_eq!(Format::of_file("disk.img"), None);
    }

    #[test]
    fn sizes_round_up_to_a_whole_mib() {
        assert_eq!(round_up_mib(0), 0);
        assert_eq!(round_up_mib(1), MIB);
        assert_eq!(round_up_mib(3 << 30), 3 << 30);
        assert_eq!(round_up_mib((3 << 30) + 512), (3 << 30) + MIB);
        assert_eq!(round_up_mib(MIB - 1), MIB);
    }

    #[test]
    fn missing_tools_name_program_package_and_formats() {
        let none = |_: &str| false;
        assert!(missing_tools(&[Format::Raw], none).is_empty());
        let all = missing_tools(&ALL, none);
        assert_eq!(
            all,
            [
                "qemu-img (package qemu-utils, for qcow2, vhd, vhdx, vmdk)",
                "tar (package tar, for gce)",
                "gzip (package gzip, for gce)"
            ]
        );
        let only_tar = missing_tools(&ALL, |p| p != "tar");
        assert_eq!(only_tar, ["tar (package tar, for gce)"]);
    }

    /// A sparse raw file that is not a whole number of MiB, converted to every format with the
    /// real tools; the VHD's footer says fixed and a whole-MiB size, the raw is untouched.
    #[test]
    fn conversions_with_the_real_tools() {
        if !missing_tools(&ALL, |p| kiln_core::command::which(p).is_some()).is_empty() {
            eprintln!("skipped: qemu-img, tar or gzip missing");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("source.img");
        let size = 5 * MIB + 4096;
        {
            use std::io::{Seek, Write};
            let mut f = std::fs::File::create(&raw).unwrap();
            f.set_len(size).unwrap();
            f.seek(std::io::SeekFrom::Start(MIB)).unwrap();
            f.write_all(b"kiln").unwrap();
        }
        let before = kiln_core::digest::sha256_file(&raw).unwrap();
        let phases = Phases::quiet();
        convert_all(&raw, &ALL, dir.path(), 3, &phases).unwrap();
        assert_eq!(kiln_core::digest::sha256_file(&raw).unwrap(), before);
        assert_eq!(std::fs::metadata(&raw).unwrap().len(), size);
        let vhd = std::fs::read(dir.path().join("disk.vhd")).unwrap();
        let footer = &vhd[vhd.len() - 512..];
        assert_eq!(&footer[..8], b"conectix");
        let current = u64::from_be_bytes(footer[48..56].try_into().unwrap());
        assert_eq!(current, 6 * MIB);
        assert_eq!(
            u32::from_be_bytes(footer[60..64].try_into().unwrap()),
            2,
            "fixed"
        );
        assert_eq!(vhd.len() as u64, 6 * MIB + 512);
        assert!(!dir.path().join("disk.vhd.vhd-source.raw").exists());
        for f in [Format::Qcow2, Format::Vhdx, Format::Vmdk, Format::Gce] {
            assert!(dir.path().join(f.file()).is_file(), "{f:?}");
        }
        let names: Vec<String> = phases.take().into_iter().map(|p| p.name).collect();
        assert_eq!(names.len(), 5, "{names:?}");
        let list = Command::new("tar")
            .arg("-tf")
            .arg(dir.path().join("disk-gce.tar.gz"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&list.stdout), "disk.raw\n");
    }
}
