//! Local media read without mounting: finding a block device by filesystem label and reading
//! files from its ISO 9660 or FAT filesystem in user space, so nothing is ever left mounted and
//! the node needs no kernel filesystem module for a config drive.

mod fat;
mod iso9660;

pub use iso9660::Iso;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{Env, Error, Result};

/// The least a volume may be read in all before it counts as malformed; more when the size cap
/// allows bigger files (see [`Volume::open`]).
const MIN_READ_BUDGET: u64 = 16 << 20;

/// A filesystem opened for reading.
pub enum Volume {
    /// ISO 9660 (with Joliet or Rock Ridge names).
    Iso(iso9660::Iso),
    /// FAT12/16/32 (vfat long names).
    Fat(Box<fat::Fat>),
}

impl Volume {
    /// Opens the filesystem on `device` (a block device or an image file). Reading a FAT volume
    /// fails once it has been read for more than 16 MiB or four times the size cap, whichever is
    /// more, or at the deadline of `env`: its cluster chains may loop.
    pub fn open(env: &Env, device: &Path) -> Result<Volume> {
        let config = env.http.config();
        let mut file = File::open(device).map_err(|e| Error::io(device, e))?;
        match probe(&mut file) {
            Some((Kind::Iso, _)) => Ok(Volume::Iso(iso9660::Iso::open(file, device)?)),
            Some((Kind::Fat, _)) => {
                let budget = config.max_body.saturating_mul(4).max(MIN_READ_BUDGET);
                let fat = fat::Fat::open(file, device, budget, config.deadline)?;
                Ok(Volume::Fat(Box::new(fat)))
            }
            None => Err(Error::Filesystem {
                path: device.into(),
                reason: "neither ISO 9660 nor FAT".into(),
            }),
        }
    }

    /// The file at `rel` (`/`-separated), `None` if missing; refuses files over `max` bytes.
    pub fn read(&mut self, rel: &str, max: u64) -> Result<Option<Vec<u8>>> {
        match self {
            Volume::Iso(v) => v.read(rel, max),
            Volume::Fat(v) => v.read(rel, max),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Iso,
    Fat,
}

/// The filesystem kind and label on `file`, from its first sectors.
fn probe(file: &mut File) -> Option<(Kind, String)> {
    let mut pvd = [0u8; 2048];
    if read_at(file, 16 * 2048, &mut pvd).is_ok() && &pvd[1..6] == b"CD001" {
        return Some((Kind::Iso, text_label(&pvd[40..72])));
    }
    let mut boot = [0u8; 512];
    read_at(file, 0, &mut boot).ok()?;
    if boot[510..512] != [0x55, 0xAA] {
        return None;
    }
    if &boot[82..87] == b"FAT32" {
        return Some((Kind::Fat, text_label(&boot[71..82])));
    }
    if &boot[54..57] == b"FAT" {
        return Some((Kind::Fat, text_label(&boot[43..54])));
    }
    None
}

fn text_label(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches([' ', '\0'])
        .to_owned()
}

fn read_at(file: &mut File, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

/// The first device whose filesystem label is one of `labels` (compared without case): udev's
/// `/dev/disk/by-label/` links first, then every block device in `/sys/class/block` probed
/// directly (initramfs without udev) until the deadline of `env`. All paths are below `env`'s
/// sys-root.
pub fn find_by_label(env: &Env, labels: &[&str]) -> Option<PathBuf> {
    for label in labels {
        let link = env.path(&format!("/dev/disk/by-label/{label}"));
        if link.exists() {
            return Some(link);
        }
    }
    let deadline = env.http.config().deadline;
    block_devices(env)
        .into_iter()
        .take_while(|_| Instant::now() < deadline)
        .find(|device| {
            let label = File::open(device)
                .ok()
                .and_then(|mut f| probe(&mut f))
                .map(|(_, l)| l);
            label.is_some_and(|label| labels.iter().any(|l| l.eq_ignore_ascii_case(&label)))
        })
}

/// Every block device in `/sys/class/block` as its `/dev` node, sorted, without floppy drives
/// (reading an empty one takes seconds) and devices that report a size of 0 (empty drives and
/// unused loop devices).
pub fn block_devices(env: &Env) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(env.path("/sys/class/block")) else {
        return Vec::new();
    };
    let mut names: Vec<_> = entries
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with("fd"))
        .filter(|e| {
            std::fs::read_to_string(e.path().join("size")).map_or(true, |s| s.trim() != "0")
        })
        .map(|e| e.file_name())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| env.path("/dev").join(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_devices_skip_floppies_and_empty_drives() {
        let (env, dir) = crate::datasource::test_env(1.0);
        for (name, size) in [
            ("fd0", "2880"),
            ("sr0", "0"),
            ("vda", "41943040"),
            ("loop0", ""),
        ] {
            let d = dir.path().join("sys/class/block").join(name);
            std::fs::create_dir_all(&d).unwrap();
            if !size.is_empty() {
                std::fs::write(d.join("size"), format!("{size}\n")).unwrap();
            }
        }
        let names: Vec<_> = block_devices(&env)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["loop0", "vda"]);
    }

    #[test]
    fn labels_are_trimmed() {
        assert_eq!(text_label(b"cidata                          "), "cidata");
        assert_eq!(text_label(b"CONFIG-2   "), "CONFIG-2");
    }

    #[test]
    fn probe_rejects_other_data() {
        let (env, dir) = crate::datasource::test_env(1.0);
        let p = dir.path().join("zero.img");
        std::fs::write(&p, vec![0u8; 64 * 1024]).unwrap();
        assert!(probe(&mut File::open(&p).unwrap()).is_none());
        assert!(Volume::open(&env, &p).is_err());
    }
}
