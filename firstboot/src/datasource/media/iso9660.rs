//! ISO 9660 volumes read in user space: Joliet names when the image has them (genisoimage
//! `-J`, as cloud-localds and Nova make them), else Rock Ridge `NM` names (`-r`), else plain
//! ISO names without the `;1` version, compared without case.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::super::{Error, Result};
use super::read_at;

const SECTOR: u64 = 2048;
/// The largest directory read; cloud-init media have a handful of entries.
const MAX_DIR: u32 = 1 << 20;

/// A directory record: where its data is and whether it is a directory.
#[derive(Debug, Clone, Copy)]
struct Record {
    extent: u32,
    size: u32,
    is_dir: bool,
}

/// An open ISO 9660 volume.
pub struct Iso {
    file: File,
    /// The size of the device in bytes: no extent may end beyond it.
    len: u64,
    device: PathBuf,
    root: Record,
    joliet: bool,
}

impl Iso {
    /// Reads the volume descriptors of `file` (read from `device`).
    pub fn open(mut file: File, device: &Path) -> Result<Self> {
        let mut primary = None;
        let mut joliet = None;
        for n in 16..64 {
            let mut vd = [0u8; 2048];
            read_at(&mut file, n * SECTOR, &mut vd).map_err(|e| Error::io(device, e))?;
            match vd[0] {
                1 if &vd[1..6] == b"CD001" => primary = Some(record(&vd[156..190])),
                2 if matches!(&vd[88..91], b"%/@" | b"%/C" | b"%/E") => {
                    joliet = Some(record(&vd[156..190]))
                }
                255 => break,
                _ => {}
            }
        }
        let (root, is_joliet) = match (joliet, primary) {
            (Some(root), _) => (root, true),
            (None, Some(root)) => (root, false),
            (None, None) => {
                return Err(Error::Filesystem {
                    path: device.into(),
                    reason: "ISO 9660 without a primary volume descriptor".into(),
                })
            }
        };
        let len = file
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::io(device, e))?;
        Ok(Iso {
            file,
            len,
            device: device.into(),
            root,
            joliet: is_joliet,
        })
    }

    /// The file at `rel`, `None` if missing; refuses files over `max` bytes.
    pub fn read(&mut self, rel: &str, max: u64) -> Result<Option<Vec<u8>>> {
        let mut current = self.root;
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            if !current.is_dir {
                return Ok(None);
            }
            let entries = self.entries(current)?;
            let found = entries.iter().find(|(name, _)| name == part).or_else(|| {
                entries
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(part))
            });
            match found {
                Some((_, rec)) => current = *rec,
                None => return Ok(None),
            }
        }
        if current.is_dir {
            return Ok(None);
        }
        if u64::from(current.size) > max {
            return Err(Error::TooLarge {
                source_name: format!("{}:{rel}", self.device.display()),
                limit: max,
            });
        }
        self.data(current).map(Some)
    }

    /// The bytes of `rec`, refused if they do not lie within the device.
    fn data(&mut self, rec: Record) -> Result<Vec<u8>> {
        let start = u64::from(rec.extent) * SECTOR;
        if start + u64::from(rec.size) > self.len {
            return Err(self.malformed(format!(
                "an extent of {} bytes at sector {} ends beyond the end of the medium ({} bytes)",
                rec.size, rec.extent, self.len
            )));
        }
        let mut buf = vec![0u8; rec.size as usize];
        read_at(&mut self.file, start, &mut buf).map_err(|e| Error::io(&self.device, e))?;
        Ok(buf)
    }

    /// The named entries of directory `dir` (without `.` and `..`).
    fn entries(&mut self, dir: Record) -> Result<Vec<(String, Record)>> {
        if dir.size > MAX_DIR {
            return Err(self.malformed(format!(
                "a directory of {} bytes (more than {MAX_DIR})",
                dir.size
            )));
        }
        let data = self.data(dir)?;
        let mut out = Vec::new();
        let mut pos = 0usize;
        while pos < data.len() {
            let len = data[pos] as usize;
            if len == 0 {
                // Records never cross a sector: the rest of this sector is padding.
                pos = (pos / SECTOR as usize + 1) * SECTOR as usize;
                continue;
            }
            let Some(rec) = data.get(pos..pos + len) else {
                break;
            };
            if rec.len() >= 34 {
                if let Some(name) = self.name(rec) {
                    out.push((name, record(rec)));
                }
            }
            pos += len;
        }
        Ok(out)
    }

    fn malformed(&self, reason: String) -> Error {
        Error::Filesystem {
            path: self.device.clone(),
            reason: format!("malformed ISO 9660: {reason}"),
        }
    }

    /// The entry's name, `None` for `.` and `..`.
    fn name(&self, rec: &[u8]) -> Option<String> {
        let name_len = rec[32] as usize;
        let raw = rec.get(33..33 + name_len)?;
        if raw == [0] || raw == [1] {
            return None;
        }
        if self.joliet {
            let units: Vec<u16> = raw
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            return Some(strip_version(&String::from_utf16_lossy(&units)));
        }
        let system_use = rec
            .get(33 + name_len + (1 - name_len % 2)..)
            .unwrap_or_default();
        Some(
            rock_ridge_name(system_use)
                .unwrap_or_else(|| strip_version(&String::from_utf8_lossy(raw))),
        )
    }
}

/// Reads the extent, size and directory flag of a directory record.
fn record(rec: &[u8]) -> Record {
    Record {
        extent: u32::from_le_bytes([rec[2], rec[3], rec[4], rec[5]]),
        size: u32::from_le_bytes([rec[10], rec[11], rec[12], rec[13]]),
        is_dir: rec[25] & 2 != 0,
    }
}

/// `NAME.EXT;1` → `NAME.EXT`; `NAME.;1` → `NAME`.
fn strip_version(name: &str) -> String {
    let name = name.split(';').next().unwrap_or(name);
    name.strip_suffix('.').unwrap_or(name).to_owned()
}

/// The Rock Ridge `NM` (alternate name) entries of a system use area, joined.
fn rock_ridge_name(mut area: &[u8]) -> Option<String> {
    let mut name = Vec::new();
    while area.len() >= 4 {
        let len = area[2] as usize;
        if len < 4 || len > area.len() {
            break;
        }
        if &area[..2] == b"NM" && len >= 5 && area[4] & 0b110 == 0 {
            name.extend_from_slice(&area[5..len]);
        }
        area = &area[len..];
    }
    (!name.is_empty()).then(|| String::from_utf8_lossy(&name).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_dots_are_stripped() {
        assert_eq!(strip_version("USER_DAT.;1"), "USER_DAT");
        assert_eq!(strip_version("META_DAT.JSO;1"), "META_DAT.JSO");
        assert_eq!(strip_version("user-data"), "user-data");
    }

    /// A 20-sector image whose primary volume descriptor gives the root directory `extent` and
    /// `size`.
    fn image_with_root(extent: u32, size: u32) -> (tempfile::TempDir, PathBuf) {
        let mut img = vec![0u8; 20 * SECTOR as usize];
        let pvd = 16 * SECTOR as usize;
        img[pvd] = 1;
        img[pvd + 1..pvd + 6].copy_from_slice(b"CD001");
        let root = pvd + 156;
        img[root] = 34;
        img[root + 2..root + 6].copy_from_slice(&extent.to_le_bytes());
        img[root + 10..root + 14].copy_from_slice(&size.to_le_bytes());
        img[root + 25] = 2;
        let end = 17 * SECTOR as usize;
        img[end] = 255;
        img[end + 1..end + 6].copy_from_slice(b"CD001");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.iso");
        std::fs::write(&path, img).unwrap();
        (dir, path)
    }

    fn read_user_data(path: &Path) -> String {
        let mut iso = Iso::open(File::open(path).unwrap(), path).unwrap();
        iso.read("user-data", 1 << 20).unwrap_err().to_string()
    }

    #[test]
    fn huge_directories_and_extents_beyond_the_medium_are_refused() {
        let (_dir, path) = image_with_root(18, u32::MAX);
        let err = read_user_data(&path);
        assert!(
            err.contains("malformed ISO 9660: a directory of 4294967295 bytes"),
            "{err}"
        );
        let (_dir, path) = image_with_root(1_000_000, 2048);
        let err = read_user_data(&path);
        assert!(err.contains("beyond the end of the medium"), "{err}");
        let (_dir, path) = image_with_root(18, 2048);
        let mut iso = Iso::open(File::open(&path).unwrap(), &path).unwrap();
        assert!(iso.read("user-data", 1 << 20).unwrap().is_none());
    }

    #[test]
    fn rock_ridge_nm_entries() {
        let mut area = vec![b'P', b'X', 5, 1, 0];
        area.extend_from_slice(&[b'N', b'M', 14, 1, 0]);
        area.extend_from_slice(b"user-data");
        assert_eq!(rock_ridge_name(&area).as_deref(), Some("user-data"));
        assert_eq!(rock_ridge_name(&[b'N', b'M', 5, 1, 2]), None);
    }
}
