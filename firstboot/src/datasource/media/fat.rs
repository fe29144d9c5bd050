//! FAT12/16/32 volumes read in user space with the `fatfs` crate, through a handle that refuses
//! every write so the medium is never changed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::super::{Error, Result};

/// A file handle that can only be read.
pub struct ReadOnly(File);

impl Read for ReadOnly {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Seek for ReadOnly {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
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
    /// Opens the FAT filesystem on `file` (read from `device`).
    pub fn open(mut file: File, device: &Path) -> Result<Self> {
        // fatfs expects the stream at the start of the volume; probing moved it.
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(device, e))?;
        let fs = fatfs::FileSystem::new(ReadOnly(file), fatfs::FsOptions::new()).map_err(|e| {
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
