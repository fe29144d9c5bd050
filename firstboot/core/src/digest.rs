//! SHA-256, the one way: hex digests of bytes, readers and files; a writer and a reader that
//! hash what passes through them; and `SHA256SUMS` (`<hex>  <name>` lines, as `sha256sum`
//! prints them) written and parsed.

use std::io::{Read, Write};
use std::path::Path;

use aws_lc_rs::digest::{Context, SHA256};

use crate::Error;

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&SHA256, bytes))
}

/// Lower-case hex SHA-256 of everything `reader` yields (read 1 MiB at a time: disk images
/// are gigabytes).
pub fn sha256_reader(mut reader: impl Read) -> std::io::Result<String> {
    let mut hasher = Context::new(&SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(hex::encode(hasher.finish())),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Lower-case hex SHA-256 of the file at `path`. Only its data extents are read: a hole is
/// hashed as the zeros it reads as, without reading it (a fresh 3 GB disk image is mostly
/// holes, and reading them costs more than hashing them).
pub fn sha256_file(path: &Path) -> Result<String, Error> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Context::new(&SHA256);
    let zeros = vec![0u8; 1 << 20];
    crate::sparse::for_each_piece(&mut file, |bytes, mut len| {
        match bytes {
            Some(bytes) => hasher.update(bytes),
            None => {
                while len > 0 {
                    let n = len.min(zeros.len() as u64);
                    hasher.update(&zeros[..n as usize]);
                    len -= n;
                }
            }
        }
        Ok(())
    })
    .map_err(|e| Error::io(path, e))?;
    Ok(hex::encode(hasher.finish()))
}

/// Whether `s` looks like a SHA-256 hex digest (64 hex characters, any case).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A writer that hashes every byte written through it to `inner`.
pub struct Sha256Writer<W> {
    inner: W,
    hasher: Context,
    len: u64,
}

impl<W: Write> Sha256Writer<W> {
    /// Hashes what is written to `inner`.
    pub fn new(inner: W) -> Self {
        Sha256Writer {
            inner,
            hasher: Context::new(&SHA256),
            len: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.len
    }

    /// The inner writer and the lower-case hex SHA-256 of what was written.
    pub fn finish(self) -> (W, String) {
        (self.inner, hex::encode(self.hasher.finish()))
    }
}

impl<W: Write> Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes every byte read through it from `inner`.
pub struct Sha256Reader<R> {
    inner: R,
    hasher: Context,
}

impl<R: Read> Sha256Reader<R> {
    /// Hashes what is read from `inner`.
    pub fn new(inner: R) -> Self {
        Sha256Reader {
            inner,
            hasher: Context::new(&SHA256),
        }
    }

    /// The inner reader and the lower-case hex SHA-256 of what was read.
    pub fn finish(self) -> (R, String) {
        (self.inner, hex::encode(self.hasher.finish()))
    }
}

impl<R: Read> Read for Sha256Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// One line of a `SHA256SUMS` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumLine {
    /// The digest, lower-case hex.
    pub hex: String,
    /// The file name as listed (without sha256sum's `*` binary marker); `None` for a bare
    /// digest.
    pub name: Option<String>,
}

/// The `SHA256SUMS` text for `(name, hex)` entries: `<hex>  <name>` lines sorted by name bytes,
/// as `LC_ALL=C sha256sum *` prints them.
pub fn write_sums<N: AsRef<str>, H: AsRef<str>>(
    entries: impl IntoIterator<Item = (N, H)>,
) -> String {
    let mut lines: Vec<(String, String)> = entries
        .into_iter()
        .map(|(n, h)| (n.as_ref().to_owned(), h.as_ref().to_ascii_lowercase()))
        .collect();
    lines.sort();
    lines
        .iter()
        .map(|(name, hex)| format!("{hex}  {name}\n"))
        .collect()
}

/// Parses `SHA256SUMS` text (also a bare digest, as some `.sha256` files hold); lines whose
/// first field is not a SHA-256 are skipped.
pub fn parse_sums(text: &str) -> Vec<SumLine> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let (hex, name) = match line.split_once(char::is_whitespace) {
                Some((hex, name)) => (hex, Some(name.trim().trim_start_matches('*'))),
                None => (line, None),
            };
            is_sha256_hex(hex).then(|| SumLine {
                hex: hex.to_ascii_lowercase(),
                name: name.filter(|n| !n.is_empty()).map(str::to_owned),
            })
        })
        .collect()
}

/// The digest `SHA256SUMS` text lists for `name` (compared as listed, after the `*` marker).
pub fn lookup_sum(sums: &[SumLine], name: &str) -> Option<String> {
    sums.iter()
        .find(|l| l.name.as_deref() == Some(name))
        .map(|l| l.hex.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_reader(&b"abc"[..]).unwrap(), sha256_hex(b"abc"));
        assert!(is_sha256_hex(&sha256_hex(b"")));
        assert!(!is_sha256_hex("abc"));
    }

    #[test]
    fn a_sparse_file_hashes_as_its_bytes() {
        use std::io::{Seek, SeekFrom};
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sparse");
        let mut f = std::fs::File::create(&path).unwrap();
        f.seek(SeekFrom::Start(3 << 20)).unwrap();
        f.write_all(b"data in the middle").unwrap();
        f.set_len(5 << 20).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(sha256_file(&path).unwrap(), sha256_hex(&bytes));
        std::fs::write(&path, b"").unwrap();
        assert_eq!(sha256_file(&path).unwrap(), sha256_hex(b""));
    }

    #[test]
    fn writer_and_reader_hash_what_passes() {
        let mut w = Sha256Writer::new(Vec::new());
        w.write_all(b"ab").unwrap();
        w.write_all(b"c").unwrap();
        assert_eq!(w.written(), 3);
        let (bytes, hex) = w.finish();
        assert_eq!((bytes.as_slice(), hex), (&b"abc"[..], sha256_hex(b"abc")));
        let mut r = Sha256Reader::new(&b"abc"[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(r.finish().1, sha256_hex(b"abc"));
    }

    #[test]
    fn sums_round_trip_sorted_by_name() {
        let (a, b) = (sha256_hex(b"a"), sha256_hex(b"b"));
        let text = write_sums([("b.tar", &b), ("a.tar", &a)]);
        assert_eq!(text, format!("{a}  a.tar\n{b}  b.tar\n"));
        let sums = parse_sums(&text);
        assert_eq!(lookup_sum(&sums, "b.tar"), Some(b.clone()));
        assert_eq!(lookup_sum(&sums, "c.tar"), None);
    }

    #[test]
    fn sums_accept_binary_marker_bare_digest_and_skip_junk() {
        let hex = sha256_hex(b"x");
        let upper = hex.to_ascii_uppercase();
        let sums = parse_sums(&format!("{upper} *k.tar\nnot a sum\n\n{hex}\n"));
        assert_eq!(
            sums,
            [
                SumLine {
                    hex: hex.clone(),
                    name: Some("k.tar".into())
                },
                SumLine { hex, name: None },
            ]
        );
    }
}
