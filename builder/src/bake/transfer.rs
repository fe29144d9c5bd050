//! Download plumbing shared by release downloads (`fetch`) and image pulls (`oci::pull`): the
//! copy loop that reports progress (their worker threads are [`super::pool`]'s).

use std::io::{Read, Write};

/// Which side of a copy failed.
#[derive(Debug)]
pub enum CopyError {
    /// Reading the source (a download: usually worth another try).
    Read(std::io::Error),
    /// Writing the destination (the cache).
    Write(std::io::Error),
}

/// Copies `from` into `to` in 256 KiB chunks, calling `progress` with the size of each; returns
/// the bytes copied.
pub fn copy_with_progress(
    from: &mut dyn Read,
    to: &mut dyn Write,
    progress: &dyn Fn(u64),
) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf).map_err(CopyError::Read)?;
        if n == 0 {
            return Ok(total);
        }
        to.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
        progress(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_report_progress_and_the_failing_side() {
        let seen = std::cell::Cell::new(0);
        let mut out = Vec::new();
        let data = vec![7u8; 600 << 10];
        let n =
            copy_with_progress(&mut &data[..], &mut out, &|n| seen.set(seen.get() + n)).unwrap();
        assert_eq!((n, seen.get(), out), (600 << 10, 600 << 10, data.clone()));
        let mut full = [0u8; 4];
        let err = copy_with_progress(&mut &data[..], &mut &mut full[..], &|_| {}).unwrap_err();
        assert!(matches!(err, CopyError::Write(_)), "{err:?}");
    }
}
