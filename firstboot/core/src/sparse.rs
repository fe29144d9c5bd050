//! Sparse files read by their data extents (`SEEK_DATA`/`SEEK_HOLE`): a fresh disk or
//! filesystem image is mostly holes, and reading a hole makes the kernel fill page cache with
//! zeros (seconds for a few gigabytes).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use nix::errno::Errno;
use nix::unistd::{lseek, Whence};

/// The next data extent of `file` at or after `from`, as `(start, end)` (`end` at most `len`,
/// the file's length); `None` when only a hole (or nothing) is left. A filesystem without
/// `SEEK_DATA` reports the whole rest as data.
fn next_extent(file: &File, from: u64, len: u64) -> std::io::Result<Option<(u64, u64)>> {
    if from >= len {
        return Ok(None);
    }
    let start = match lseek(file, offset(from)?, Whence::SeekData) {
        Ok(start) => start as u64,
        Err(Errno::ENXIO) => return Ok(None),
        Err(Errno::EINVAL) => return Ok(Some((from, len))),
        Err(e) => return Err(e.into()),
    };
    let end = lseek(file, offset(start)?, Whence::SeekHole)? as u64;
    Ok(Some((start, end.min(len))))
}

fn offset(at: u64) -> std::io::Result<i64> {
    i64::try_from(at).map_err(|_| std::io::Error::other("file offset out of range"))
}

/// Calls `visit` with every piece of `file` in order, 1 MiB at most each: the bytes read from
/// its data extents, and for a hole `None` with the hole's length (nothing read). Stops at
/// `visit`'s first error.
pub fn for_each_piece(
    file: &mut File,
    mut visit: impl FnMut(Option<&[u8]>, u64) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let len = file.metadata()?.len();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < len {
        let (start, end) = next_extent(file, at, len)?.unwrap_or((len, len));
        if start > at {
            visit(None, start - at)?;
        }
        file.seek(SeekFrom::Start(start))?;
        let mut pos = start;
        while pos < end {
            let want = (end - pos).min(buf.len() as u64) as usize;
            let n = read_full(file, &mut buf[..want])?;
            if n == 0 {
                return Err(std::io::Error::other("the file shrank while it was read"));
            }
            visit(Some(&buf[..n]), n as u64)?;
            pos += n as u64;
        }
        at = end;
    }
    Ok(())
}

/// Reads until `buf` is full or the file ends; the bytes read.
fn read_full(src: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A file with data at 0..3 and 2 MiB..2 MiB+3, a hole between and after (4 MiB long).
    fn sparse_file(dir: &std::path::Path) -> File {
        let path = dir.join("sparse");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"abc").unwrap();
        f.seek(SeekFrom::Start(2 << 20)).unwrap();
        f.write_all(b"xyz").unwrap();
        f.set_len(4 << 20).unwrap();
        File::open(&path).unwrap()
    }

    #[test]
    fn pieces_cover_the_file_in_order_and_skip_holes() {
        let tmp = tempfile::tempdir().unwrap();
        let mut file = sparse_file(tmp.path());
        let mut rebuilt = Vec::new();
        let mut holes = 0;
        for_each_piece(&mut file, |bytes, len| {
            match bytes {
                Some(b) => rebuilt.extend_from_slice(b),
                None => {
                    holes += len;
                    rebuilt.resize(rebuilt.len() + len as usize, 0);
                }
            }
            Ok(())
        })
        .unwrap();
        let mut whole = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut whole).unwrap();
        assert_eq!(rebuilt, whole);
        assert!(holes >= 1 << 20, "the holes were read: {holes}");
    }

    #[test]
    fn no_extent_past_the_end() {
        let tmp = tempfile::tempdir().unwrap();
        let file = sparse_file(tmp.path());
        assert_eq!(next_extent(&file, 4 << 20, 4 << 20).unwrap(), None);
        let (start, _) = next_extent(&file, 4096, 4 << 20).unwrap().unwrap();
        assert!((4096..=2 << 20).contains(&start));
    }
}
