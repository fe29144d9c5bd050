//! The disk's filesystems, each made reproducibly (UUIDs from the build's seed, every timestamp
//! SOURCE_DATE_EPOCH): the EFI system partition (systemd-boot, kernel, initrd), the read-only /usr
//! image and the writable root; their sizes; the sparse copy of an image into the disk.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

use super::plan::DiskPlan;
use kiln_core::command::Run;
use kiln_core::sparse;

const MIB: u64 = 1 << 20;
/// 1980-01-01: the first time a FAT directory entry can hold.
const FAT_EPOCH: u64 = 315_532_800;
/// First partition starts at 1 MiB; the backup GPT needs the last 33 sectors (1 MiB kept).
const GPT_RESERVED: u64 = 2 * MIB;

/// Makes the read-only /usr image from `usr_tree` at `out`: every timestamp `epoch`, the
/// filesystem UUID `uuid` (erofs; squashfs has none). erofs compresses with lz4, not lz4hc:
/// mkfs.erofs 1.5 is single-threaded and lz4hc took 5.5x as long for ~10 % less (1.7 GB of
/// /usr: 25.7 s and 766 MiB against 4.6 s and 847 MiB; both decompress alike).
pub fn usr_image(
    plan: &DiskPlan,
    usr_tree: &Path,
    out: &Path,
    uuid: &str,
    epoch: u64,
) -> anyhow::Result<()> {
    let mut cmd = match plan.disk.usr_filesystem.as_str() {
        "squashfs" => {
            let mut c = Command::new("mksquashfs");
            c.arg(usr_tree)
                .arg(out)
                .args(["-noappend", "-comp", "zstd", "-quiet"])
                .arg("-all-time")
                .arg(epoch.to_string())
                .arg("-mkfs-time")
                .arg(epoch.to_string());
            c
        }
        _ => {
            let mut c = Command::new("mkfs.erofs");
            c.args(["-zlz4", "--quiet"])
                .arg(format!("-T{epoch}"))
                .arg(format!("-U{uuid}"))
                .arg(out)
                .arg(usr_tree);
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
    /// The timestamp of every file and directory (FAT cannot store one before 1980).
    pub epoch: u64,
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
    // mkfs.vfat's --invariant fixes the volume ID (1234-ABCD) and the volume label's time.
    Run::new(
        Command::new("mkfs.vfat")
            .args(["-F", "32", "-n", "ESP", "--invariant"])
            .arg(out),
        "formatting the ESP",
    )
    .run()?;
    let (loader, entry) = boot_entries(files.cmdline, scratch)?;
    let removable = format!("::/{}", files.loader);
    fill_esp(
        out,
        files.epoch,
        &[
            (files.efi, removable.as_str()),
            (&loader, "::/loader/loader.conf"),
            (&entry, "::/loader/entries/kiln.conf"),
            (files.kernel, "::/kiln/vmlinuz"),
            (files.initrd, "::/kiln/initrd"),
        ],
    )
}

/// Makes the ESP's directories in the FAT image `img` and copies each `(file, ::/path)` of
/// `copies` in, everything stamped `epoch` (mtools takes SOURCE_DATE_EPOCH).
fn fill_esp(img: &Path, epoch: u64, copies: &[(&Path, &str)]) -> anyhow::Result<()> {
    let epoch = epoch.max(FAT_EPOCH).to_string();
    let img = img.to_str().context("ESP path is not UTF-8")?;
    Run::new(
        Command::new("mmd").env("SOURCE_DATE_EPOCH", &epoch).args([
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
    for (from, to) in copies {
        Run::new(
            Command::new("mcopy")
                .env("SOURCE_DATE_EPOCH", &epoch)
                .args(["-i", img])
                .arg(from)
                .arg(to),
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

/// Makes the root ext4 image at `out` (`size` bytes) from `tree`: filesystem UUID and directory
/// hash seed `uuid`, every timestamp `epoch` (mke2fs copies each inode's access and change time
/// from the tree, so those are stamped afterwards with debugfs).
pub fn root_image(
    tree: &Path,
    size: u64,
    out: &Path,
    uuid: &str,
    epoch: u64,
) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(out);
    Run::new(
        Command::new("mke2fs")
            .args(["-q", "-t", "ext4", "-L", "kiln-root", "-U", uuid, "-E"])
            .arg(format!("hash_seed={uuid}"))
            .arg("-d")
            .arg(tree)
            .arg(out)
            .arg(format!("{}k", size / 1024))
            .env("E2FSPROGS_FAKE_TIME", fake_time(epoch)),
        "making the root filesystem",
    )
    .run()?;
    stamp_inode_times(out, epoch)
}

/// e2fsprogs' fixed time for `epoch`: it reads 0 as "not set" (the current time), so 0 is 1.
fn fake_time(epoch: u64) -> String {
    epoch.max(1).to_string()
}

/// Sets the access, change and creation times of every used inode of the ext4 image `image` to
/// `epoch` (mke2fs copies them from the tree: the build reads files, and no one can set a change
/// time), and the superblock's write time.
/// mke2fs -d numbers inodes in order, so the used ones are 1..=count-free.
fn stamp_inode_times(image: &Path, epoch: u64) -> anyhow::Result<()> {
    let header = Run::new(
        Command::new("dumpe2fs").arg("-h").arg(image),
        "dumpe2fs (reading the root filesystem's inode counts)",
    )
    .run()?;
    let text = String::from_utf8_lossy(&header.stdout);
    let field = |name: &str| -> anyhow::Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .with_context(|| format!("dumpe2fs printed no {name:?}"))
    };
    let used = field("Inode count:")? - field("Free inodes:")?;
    // The root directory and the first non-reserved inode (lost+found) on; the other reserved
    // inodes carry mke2fs's own (E2FSPROGS_FAKE_TIME) times.
    let mut script = String::new();
    for ino in std::iter::once(2).chain(11..=used) {
        for what in ["atime", "ctime", "crtime"] {
            script.push_str(&format!("sif <{ino}> {what} @{epoch}\n"));
        }
    }
    Run::new(
        Command::new("debugfs")
            .args(["-w", "-f", "-"])
            .arg(image)
            .env("E2FSPROGS_FAKE_TIME", fake_time(epoch)),
        "debugfs (stamping the root filesystem's inode times)",
    )
    .stdin(script.as_bytes())
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

/// The partitions' sizes: `(esp, usr, usr_hash, root)`, whole MiB, root taking the rest of
/// `total` after them and the `sig_bytes` of a signature partition (rounded up to a MiB, so
/// root stays MiB-aligned). Fails if the content does not fit.
pub fn sizes(
    plan: &DiskPlan,
    (usr_bytes, hash_bytes, sig_bytes): (u64, u64, u64),
    root_min: u64,
) -> anyhow::Result<(u64, u64, u64, u64)> {
    let total = plan.size()?;
    let esp = plan.esp_size()?.next_multiple_of(MIB);
    let usr = usr_bytes.next_multiple_of(MIB);
    let hash = hash_bytes.next_multiple_of(MIB);
    let used = GPT_RESERVED + esp + usr + hash + sig_bytes.next_multiple_of(MIB);
    if total < used + root_min {
        bail!(
            "disk.size: {} is too small for the content: the ESP, /usr ({} MiB) and root (at least {} MiB) need {} MiB; raise disk.size",
            plan.disk.size,
            (usr + hash) / MIB,
            root_min.div_ceil(MIB),
            (used + root_min).div_ceil(MIB)
        );
    }
    let root = (total - used) / MIB * MIB;
    Ok((esp, usr, hash, root))
}

/// Copies `image` into `disk` at `offset`, reading only the image's data extents (a fresh
/// filesystem image is mostly holes) and skipping all-zero blocks in them (the disk stays
/// sparse).
pub fn copy_sparse(image: &Path, disk: &mut File, offset: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let mut src = File::open(image)?;
    let mut pos = offset;
    sparse::for_each_piece(&mut src, |bytes, len| {
        for chunk in bytes.unwrap_or_default().chunks(64 * 1024) {
            if chunk.iter().any(|b| *b != 0) {
                disk.seek(SeekFrom::Start(pos))?;
                disk.write_all(chunk)?;
            }
            pos += chunk.len() as u64;
        }
        if bytes.is_none() {
            pos += len;
        }
        Ok(())
    })?;
    Ok(())
}

/// Size of a file in bytes.
pub fn file_size(path: &Path) -> anyhow::Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::os::unix::fs::{FileExt as _, MetadataExt as _};

    #[test]
    fn copy_sparse_copies_the_data_and_keeps_the_holes() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("root.img");
        let mut f = File::create(&image).unwrap();
        f.write_all(b"superblock").unwrap();
        f.write_all_at(&[0u8; 128 * 1024], 4 * MIB).unwrap();
        f.write_all_at(b"inode table", 10 * MIB).unwrap();
        f.set_len(64 * MIB).unwrap();
        let disk_path = dir.path().join("disk.raw");
        let mut disk = File::create(&disk_path).unwrap();
        disk.set_len(80 * MIB).unwrap();
        copy_sparse(&image, &mut disk, MIB).unwrap();
        let disk = std::fs::read(&disk_path).unwrap();
        let at = |pos: u64, len: usize| &disk[pos as usize..pos as usize + len];
        assert_eq!(at(MIB, 10), b"superblock");
        assert_eq!(at(11 * MIB, 11), b"inode table");
        assert!(at(0, MIB as usize).iter().all(|b| *b == 0));
        let allocated = std::fs::metadata(&disk_path).unwrap().blocks() * 512;
        assert!(allocated < 4 * MIB, "{allocated} bytes allocated");
    }
}
