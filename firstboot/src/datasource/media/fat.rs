//! FAT12/16/32 volumes read in user space with the `fatfs` crate, through a handle that refuses
//! every write so the medium is never changed, and that stops a malformed volume from being read
//! forever.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::super::{Error, Result};

/// Size of the cached, aligned block reads are served from (fatfs reads a few bytes at a time).
const BLOCK: u64 = 4096;

/// A read-only handle on a volume that fails once more than its budget of bytes has been read or
/// the deadline has passed: fatfs follows cluster chains without noticing cycles, so a chain that
/// points back to itself would otherwise be read forever.
pub struct ReadOnly {
    file: File,
    /// The logical position.
    pos: u64,
    /// The cached bytes, read from `block_start`.
    block: Vec<u8>,
    block_start: u64,
    /// Bytes handed out so far, and the most allowed.
    read: u64,
    budget: u64,
    deadline: Instant,
}

impl ReadOnly {
    fn new(file: File, budget: u64, deadline: Instant) -> Self {
        ReadOnly {
            file,
            pos: 0,
            block: Vec::new(),
            block_start: 0,
            read: 0,
            budget,
            deadline,
        }
    }
}

impl Read for ReadOnly {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if Instant::now() >= self.deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "deadline reached while reading the FAT filesystem",
            ));
        }
        let cached = self.block_start..self.block_start + self.block.len() as u64;
        if !cached.contains(&self.pos) {
            self.block_start = self.pos - self.pos % BLOCK;
            self.block.clear();
            self.file.seek(SeekFrom::Start(self.block_start))?;
            (&mut self.file).take(BLOCK).read_to_end(&mut self.block)?;
        }
        let offset = (self.pos - self.block_start) as usize;
        let n = buf.len().min(self.block.len().saturating_sub(offset));
        if n == 0 {
            // At or past the end of the medium.
            return Ok(0);
        }
        if self.read + n as u64 > self.budget {
            return Err(std::io::Error::other(format!(
                "read more than {} bytes of the FAT filesystem: it is malformed (a cluster chain that loops?)",
                self.budget
            )));
        }
        buf[..n].copy_from_slice(&self.block[offset..offset + n]);
        self.pos += n as u64;
        self.read += n as u64;
        Ok(n)
    }
}

impl Seek for ReadOnly {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.pos = match pos {
            SeekFrom::Start(n) => n,
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
            })?,
            SeekFrom::End(_) => self.file.seek(pos)?,
        };
        Ok(self.pos)
    }
}

impl Write for ReadOnly {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "read-only medium",
        ))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An open FAT volume.
pub struct Fat {
    fs: fatfs::FileSystem<ReadOnly>,
    device: PathBuf,
}

impl Fat {
    /// Opens the FAT filesystem on `file` (read from `device`); reading fails once more than
    /// `budget` bytes have been read or at `deadline`.
    pub fn open(file: File, device: &Path, budget: u64, deadline: Instant) -> Result<Self> {
        let medium = ReadOnly::new(file, budget, deadline);
        let fs = fatfs::FileSystem::new(medium, fatfs::FsOptions::new()).map_err(|e| {
            Error::Filesystem {
                path: device.into(),
                reason: format!("FAT: {e}"),
            }
        })?;
        Ok(Fat {
            fs,
            device: device.into(),
        })
    }

    /// The file at `rel`, `None` if missing; refuses files over `max` bytes.
    pub fn read(&mut self, rel: &str, max: u64) -> Result<Option<Vec<u8>>> {
        let mut file = match self.fs.root_dir().open_file(rel) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(self.device.join(rel), e)),
        };
        let mut bytes = Vec::new();
        (&mut file)
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(self.device.join(rel), e))?;
        if bytes.len() as u64 > max {
            return Err(Error::TooLarge {
                source_name: format!("{}:{rel}", self.device.display()),
                limit: max,
            });
        }
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_cached_budgeted_and_end_at_the_end_of_the_medium() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("medium");
        let contents: Vec<u8> = (0..6000u32).map(|i| i as u8).collect();
        std::fs::write(&path, &contents).unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        let mut medium = ReadOnly::new(File::open(&path).unwrap(), 5000, deadline);
        medium.seek(SeekFrom::Start(4090)).unwrap();
        let mut buf = [0u8; 100];
        // Served from the first block, then from the second.
        assert_eq!(medium.read(&mut buf).unwrap(), 6);
        assert_eq!(medium.read(&mut buf).unwrap(), 100);
        assert_eq!(buf[..], contents[4096..4196]);
        for pos in [6000, 7000, 9000] {
            medium.seek(SeekFrom::Start(pos)).unwrap();
            assert_eq!(medium.read(&mut buf).unwrap(), 0, "{pos}");
        }
        medium.seek(SeekFrom::Start(0)).unwrap();
        let mut all = Vec::new();
        let err = medium.read_to_end(&mut all).unwrap_err();
        assert!(
            err.to_string().contains("read more than 5000 bytes"),
            "{err}"
        );
        assert!(medium.write(b"x").is_err());
    }
}
