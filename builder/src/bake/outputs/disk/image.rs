//! The raw GPT disk: an EFI system partition (systemd-boot, kernel, initrd), the read-only /usr
//! image and the writable root, with Discoverable Partitions Specification type GUIDs.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

use super::arch::DiskArch;
use super::layout::Uuids;
use super::plan::DiskPlan;
use kiln_core::command::Run;

/// ESP type GUID.
pub const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";

const MIB: u64 = 1 << 20;
/// First partition starts at 1 MiB; the backup GPT needs the last 33 sectors (1 MiB kept).
const GPT_RESERVED: u64 = 2 * MIB;

/// Makes the read-only /usr image from `usr_tree` at `out`.
pub fn usr_image(plan: &DiskPlan, usr_tree: &Path, out: &Path) -> anyhow::Result<()> {
    let mut cmd = match plan.disk.usr_filesystem.as_str() {
        "squashfs" => {
            let mut c = Command::new("mksquashfs");
            c.arg(usr_tree)
                .arg(out)
                .args(["-noappend", "-comp", "zstd", "-quiet"]);
            c
        }
        _ => {
            let mut c = Command::new("mkfs.erofs");
            c.args(["-zlz4hc", "-T0"]).arg(out).arg(usr_tree);
            c
        }
    };
    Run::new(&mut cmd, "making the /usr image").run()?;
    Ok(())
}

/// What the ESP holds: systemd-boot, the kernel, the initrd and the boot entry's command line.
pub struct EspFiles<'a> {
    /// systemd-boot (`systemd-bootx64.efi`).
    pub efi: &'a Path,
    /// Its path on the ESP (`EFI/BOOT/BOOTX64.EFI`).
    pub loader: &'a str,
    /// The kernel.
    pub kernel: &'a Path,
    /// The initrd.
    pub initrd: &'a Path,
    /// The kernel command line of the boot entry.
    pub cmdline: &'a str,
}

/// Makes the ESP image at `out` (`size` bytes): systemd-boot as the removable-media loader, a
/// loader entry with the command line, the kernel and the initrd.
pub fn esp_image(
    size: u64,
    files: &EspFiles<'_>,
    out: &Path,
    scratch: &Path,
) -> anyhow::Result<()> {
    let needed = file_size(files.efi)? + file_size(files.kernel)? + file_size(files.initrd)? + MIB;
    if needed > size {
        bail!(
            "disk.esp_size: {} MiB is too small for systemd-boot, the kernel and the initrd ({} MiB); raise it",
            size / MIB,
            needed.div_ceil(MIB)
        );
    }
    File::create(out)?.set_len(size)?;
    Run::new(
        Command::new("mkfs.vfat")
            .args(["-F", "32", "-n", "ESP"])
            .arg(out),
        "formatting the ESP",
    )
    .run()?;
    let (loader, entry) = boot_entries(files.cmdline, scratch)?;
    let img = out.to_str().context("ESP path is not UTF-8")?;
    Run::new(
        Command::new("mmd").args([
            "-i",
            img,
            "::/EFI",
            "::/EFI/BOOT",
            "::/loader",
            "::/loader/entries",
            "::/kiln",
        ]),
        "making ESP directories",
    )
    .run()?;
    let removable = format!("::/{}", files.loader);
    for (from, to) in [
        (files.efi, removable.as_str()),
        (&loader, "::/loader/loader.conf"),
        (&entry, "::/loader/entries/kiln.conf"),
        (files.kernel, "::/kiln/vmlinuz"),
        (files.initrd, "::/kiln/initrd"),
    ] {
        Run::new(
            Command::new("mcopy").args(["-i", img]).arg(from).arg(to),
            "copying into the ESP",
        )
        .run()?;
    }
    Ok(())
}

/// systemd-boot's `loader.conf` and kiln's boot entry, written into `scratch`.
fn boot_entries(cmdline: &str, scratch: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let loader = scratch.join("loader.conf");
    std::fs::write(&loader, "default kiln.conf\ntimeout 0\nconsole-mode keep\n")?;
    let entry = scratch.join("kiln.conf");
    std::fs::write(
        &entry,
        format!("title kiln\nlinux /kiln/vmlinuz\ninitrd /kiln/initrd\noptions {cmdline}\n"),
    )?;
    Ok((loader, entry))
}

/// Makes the root ext4 image at `out` (`size` bytes) from `tree`.
pub fn root_image(tree: &Path, size: u64, out: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(out);
    Run::new(
        Command::new("mke2fs")
            .args(["-q", "-t", "ext4", "-L", "kiln-root", "-d"])
            .arg(tree)
            .arg(out)
            .arg(format!("{}k", size / 1024))
            .env("E2FSPROGS_FAKE_TIME", "0"),
        "making the root filesystem",
    )
    .run()?;
    Ok(())
}

/// Bytes a tree needs on ext4, with room for metadata and first-boot writes.
pub fn root_needs(tree: &Path) -> anyhow::Result<u64> {
    // du's total counts even if it could not read some entry (a non-zero exit).
    let out = Run::new(
        Command::new("du")
            .args(["-s", "-B1", "--apparent-size"])
            .arg(tree),
        "du",
    )
    .output()?;
    let bytes: u64 = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .context("measuring the root tree")?;
    Ok(bytes + bytes / 5 + 128 * MIB)
}

/// The three partitions' sizes: `(esp, usr, root)`, root taking the rest of `total`. Fails if
/// the content does not fit.
pub fn sizes(plan: &DiskPlan, usr_bytes: u64, root_min: u64) -> anyhow::Result<(u64, u64, u64)> {
    let total = plan.size()?;
    let esp = plan.esp_size()?.next_multiple_of(MIB);
    let usr = usr_bytes.next_multiple_of(MIB);
    let used = GPT_RESERVED + esp + usr;
    if total < used + root_min {
        bail!(
            "disk.size: {} is too small for the content: the ESP, /usr ({} MiB) and root (at least {} MiB) need {} MiB; raise disk.size",
            plan.disk.size,
            usr / MIB,
            root_min.div_ceil(MIB),
            (used + root_min).div_ceil(MIB)
        );
    }
    let root = (total - used) / MIB * MIB;
    Ok((esp, usr, root))
}

/// Assembles the GPT disk at `out` from the three images.
pub fn assemble(
    total: u64,
    parts: [(&Path, u64); 3],
    uuids: &Uuids,
    arch: DiskArch,
    out: &Path,
) -> anyhow::Result<()> {
    let f = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    f.set_len(total)?;
    drop(f);
    let [(_, esp), (_, usr), (_, root)] = parts;
    let (usr_type, root_type) = (arch.usr_type, arch.root_type);
    let script = format!(
        "label: gpt\nunit: sectors\nfirst-lba: 2048\n\
         start=2048, size={}, type={ESP_TYPE}, uuid={}, name=esp\n\
         size={}, type={usr_type}, uuid={}, name=usr\n\
         size={}, type={root_type}, uuid={}, name=root\n",
        esp / 512,
        uuids.esp,
        usr / 512,
        uuids.usr,
        root / 512,
        uuids.root
    );
    Run::new(
        Command::new("sfdisk")
            .args(["-q", "--no-reread", "--no-tell-kernel"])
            .arg(out),
        "writing the partition table",
    )
    .stdin(script.as_bytes())
    .run()?;
    let mut offset = MIB;
    let mut disk = std::fs::OpenOptions::new().write(true).open(out)?;
    for (image, size) in parts {
        copy_sparse(image, &mut disk, offset)
            .with_context(|| format!("copying {} into the disk", image.display()))?;
        offset += size;
    }
    disk.sync_all()?;
    Ok(())
}

/// Copies `image` into `disk` at `offset`, skipping all-zero blocks (the disk stays sparse).
fn copy_sparse(image: &Path, disk: &mut File, offset: u64) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let mut src = File::open(image)?;
    let mut buf = vec![0u8; 4 * MIB as usize];
    let mut pos = offset;
    loop {
        let n = read_full(&mut src, &mut buf)?;
        if n == 0 {
            break;
        }
        for chunk in buf[..n].chunks(64 * 1024) {
            if chunk.iter().any(|b| *b != 0) {
                disk.seek(SeekFrom::Start(pos))?;
                disk.write_all(chunk)?;
            }
            pos += chunk.len() as u64;
        }
    }
    let _ = src.read(&mut [])?;
    Ok(())
}

fn read_full(src: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Size of a file in bytes.
pub fn file_size(path: &Path) -> anyhow::Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len())
}
