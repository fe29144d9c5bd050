//! containerd's bbolt databases made reproducible: read whole (every nested bucket, key, value
//! and bucket sequence), every `createdat`/`updatedat` timestamp set to SOURCE_DATE_EPOCH, and
//! written again as a fresh, compact bbolt file laid out only by its contents (what
//! `bbolt compact` does, without the freed pages, transaction ids and free list a running
//! containerd leaves, which differ from build to build).
//!
//! Why kiln writes bbolt itself: the build's containerd stamps every record with the wall clock
//! (Go reads it through the vDSO, so no faketime applies), so the records must be rewritten; Debian
//! ships no `bbolt` tool (only Go sources), and the one Rust port (bbolt-rs) is a whole database
//! engine with a dozen dependencies (clap, rand, fake, parking_lot, ...) for what is here a
//! read of the pages and a compact write laid out only by the contents. The format (go.etcd.io/bbolt 1.3, what Debian 12's containerd links):
//! pages of `page_size` bytes, each a 16-byte header (`id` u64, `flags` u16, `count` u16,
//! `overflow` u32); pages 0 and 1 the meta pages (magic, version 2, page size, root bucket,
//! free list page, page count, txid, FNV-1a checksum), then branch elements (`pos` u32,
//! `ksize` u32, `pgid` u64) or leaf elements (`flags` u32, `pos` u32, `ksize` u32, `vsize` u32;
//! `pos` counted from the element), a nested bucket a leaf value of its root page and sequence
//! (u64 each; root 0: the bucket's page follows inline). All little-endian (amd64, arm64).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, ensure, Context as _};

const MAGIC: u32 = 0xED0C_DAED;
const VERSION: u32 = 2;
const HEADER: usize = 16;
const ELEMENT: usize = 16;
const BRANCH: u16 = 0x01;
const LEAF: u16 = 0x02;
const META: u16 = 0x04;
const FREELIST: u16 = 0x10;
const BUCKET_FLAG: u32 = 0x01;
/// Seconds from 0001-01-01 (Go's `time` epoch in `MarshalBinary`) to 1970-01-01.
const GO_UNIX_OFFSET: u64 = 62_135_596_800;
/// Most nested buckets a database may have (containerd's are 5 deep).
const MAX_DEPTH: usize = 32;

/// A bucket: its sequence and its entries in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bucket {
    /// The bucket's sequence (`NextSequence`).
    pub sequence: u64,
    /// Key → value or nested bucket.
    pub entries: BTreeMap<Vec<u8>, Entry>,
}

/// A bucket's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A plain value.
    Value(Vec<u8>),
    /// A nested bucket.
    Bucket(Bucket),
}

/// Rewrites the bbolt database `path` compact, every timestamp `epoch`.
pub fn normalise(path: &Path, epoch: u64) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (mut root, page_size) = read(&bytes)
        .with_context(|| format!("{}: not a bbolt database kiln can read", path.display()))?;
    stamp(&mut root, epoch);
    let out = write(&root, page_size);
    kiln_core::fsutil::write_atomic(path, &out, 0o600)
        .with_context(|| format!("writing {}", path.display()))
}

/// Sets every `createdat`/`updatedat` value (Go's `time.MarshalBinary`) to `epoch`, UTC.
fn stamp(bucket: &mut Bucket, epoch: u64) {
    for (key, entry) in bucket.entries.iter_mut() {
        match entry {
            Entry::Bucket(b) => stamp(b, epoch),
            Entry::Value(v)
                if is_time_key(key)
                    && matches!((v.len(), v.first()), (15, Some(1)) | (16, Some(2))) =>
            {
                *v = go_time_utc(epoch);
            }
            Entry::Value(_) => {}
        }
    }
}

/// Go's `time.MarshalBinary` of `epoch` seconds in UTC: version 1, seconds since 0001-01-01
/// and nanoseconds (big-endian), zone offset -1 (UTC), whatever zone the build host has.
fn go_time_utc(epoch: u64) -> Vec<u8> {
    let mut v = vec![1u8];
    v.extend_from_slice(&(epoch + GO_UNIX_OFFSET).to_be_bytes());
    v.extend_from_slice(&0u32.to_be_bytes());
    v.extend_from_slice(&(-1i16).to_be_bytes());
    v
}

fn is_time_key(key: &[u8]) -> bool {
    key == b"createdat" || key == b"updatedat"
}

fn u16_at(b: &[u8], at: usize) -> anyhow::Result<u16> {
    let s = b.get(at..at + 2).context("truncated")?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> anyhow::Result<u32> {
    let s = b.get(at..at + 4).context("truncated")?;
    Ok(u32::from_le_bytes(s.try_into()?))
}

fn u64_at(b: &[u8], at: usize) -> anyhow::Result<u64> {
    let s = b.get(at..at + 8).context("truncated")?;
    Ok(u64::from_le_bytes(s.try_into()?))
}

/// FNV-1a, 64 bits (bbolt's meta checksum).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The root bucket of the database `file` and its page size.
pub fn read(file: &[u8]) -> anyhow::Result<(Bucket, usize)> {
    let page_size = u32_at(file, HEADER + 8)? as usize;
    ensure!((512..=65536).contains(&page_size), "page size {page_size}");
    let mut best = None;
    for id in 0..2 {
        let meta = id * page_size + HEADER;
        let Some(m) = file.get(meta..meta + 64) else {
            continue;
        };
        let valid =
            u32_at(m, 0)? == MAGIC && u32_at(m, 4)? == VERSION && u64_at(m, 56)? == fnv1a(&m[..56]);
        let txid = u64_at(m, 48)?;
        if valid && best.is_none_or(|(t, _)| txid > t) {
            best = Some((txid, (u64_at(m, 16)?, u64_at(m, 24)?)));
        }
    }
    let (_, (root, sequence)) = best.context("no valid meta page")?;
    let reader = Reader { file, page_size };
    let mut bucket = Bucket {
        sequence,
        ..Bucket::default()
    };
    reader.walk(reader.page(root)?, &mut bucket.entries, 0)?;
    Ok((bucket, page_size))
}

struct Reader<'a> {
    file: &'a [u8],
    page_size: usize,
}

impl Reader<'_> {
    /// Page `id` with its overflow pages.
    fn page(&self, id: u64) -> anyhow::Result<&[u8]> {
        let start = usize::try_from(id)? * self.page_size;
        let overflow = u32_at(self.file, start + 12)? as usize;
        self.file
            .get(start..start + (overflow + 1) * self.page_size)
            .with_context(|| format!("page {id} beyond the file"))
    }

    /// Adds the entries of the tree under `page` to `into`.
    fn walk(
        &self,
        page: &[u8],
        into: &mut BTreeMap<Vec<u8>, Entry>,
        depth: usize,
    ) -> anyhow::Result<()> {
        ensure!(depth < MAX_DEPTH, "pages nested too deep");
        let (flags, count) = (u16_at(page, 8)?, usize::from(u16_at(page, 10)?));
        for i in 0..count {
            let e = HEADER + i * ELEMENT;
            let pos = e + u32_at(page, e + 4)? as usize;
            if flags & BRANCH != 0 {
                self.walk(self.page(u64_at(page, e + 8)?)?, into, depth + 1)?;
            } else if flags & LEAF != 0 {
                let ksize = u32_at(page, e + 8)? as usize;
                let vsize = u32_at(page, e + 12)? as usize;
                let key = page.get(pos..pos + ksize).context("key beyond its page")?;
                let value = page
                    .get(pos + ksize..pos + ksize + vsize)
                    .context("value beyond its page")?;
                let entry = match u32_at(page, e)? & BUCKET_FLAG {
                    0 => Entry::Value(value.to_vec()),
                    _ => Entry::Bucket(self.bucket(value, depth + 1)?),
                };
                into.insert(key.to_vec(), entry);
            } else {
                bail!("page flags {flags:#x} in a bucket's tree");
            }
        }
        Ok(())
    }

    /// The nested bucket whose leaf value is `value`.
    fn bucket(&self, value: &[u8], depth: usize) -> anyhow::Result<Bucket> {
        let (root, sequence) = (u64_at(value, 0)?, u64_at(value, 8)?);
        let mut bucket = Bucket {
            sequence,
            ..Bucket::default()
        };
        let page = match root {
            0 => value.get(16..).context("inline bucket without its page")?,
            id => self.page(id)?,
        };
        self.walk(page, &mut bucket.entries, depth)?;
        Ok(bucket)
    }
}

/// The database of `root` as a fresh bbolt file with pages of `page_size` bytes.
pub fn write(root: &Bucket, page_size: usize) -> Vec<u8> {
    let mut w = Writer {
        out: vec![0; 3 * page_size],
        page_size,
    };
    let root_page = w.bucket(root);
    let pages = (w.out.len() / page_size) as u64;
    for id in 0..2u64 {
        let at = id as usize * page_size;
        w.header(at, id, META, 0, 0);
        let mut m = Vec::with_capacity(64);
        for v in [MAGIC, VERSION, page_size as u32, 0] {
            m.extend_from_slice(&v.to_le_bytes());
        }
        for v in [root_page, root.sequence, 2, pages, id] {
            m.extend_from_slice(&v.to_le_bytes());
        }
        m.extend_from_slice(&fnv1a(&m).to_le_bytes());
        w.out[at + HEADER..at + HEADER + 64].copy_from_slice(&m);
    }
    w.header(2 * page_size, 2, FREELIST, 0, 0);
    w.out
}

struct Writer {
    out: Vec<u8>,
    page_size: usize,
}

impl Writer {
    fn header(&mut self, at: usize, id: u64, flags: u16, count: u16, overflow: u32) {
        self.out[at..at + 8].copy_from_slice(&id.to_le_bytes());
        self.out[at + 8..at + 10].copy_from_slice(&flags.to_le_bytes());
        self.out[at + 10..at + 12].copy_from_slice(&count.to_le_bytes());
        self.out[at + 12..at + 16].copy_from_slice(&overflow.to_le_bytes());
    }

    /// Writes `bucket`'s tree (nested buckets first); its root page.
    fn bucket(&mut self, bucket: &Bucket) -> u64 {
        let leaves: Vec<(u32, &[u8], Vec<u8>)> = bucket
            .entries
            .iter()
            .map(|(key, entry)| match entry {
                Entry::Value(v) => (0, key.as_slice(), v.clone()),
                Entry::Bucket(b) => {
                    let root = self.bucket(b);
                    let mut v = root.to_le_bytes().to_vec();
                    v.extend_from_slice(&b.sequence.to_le_bytes());
                    (BUCKET_FLAG, key.as_slice(), v)
                }
            })
            .collect();
        let mut level: Vec<(Vec<u8>, u64)> = self.pages(LEAF, &leaves);
        while level.len() > 1 {
            let branches: Vec<(u32, &[u8], Vec<u8>)> = level
                .iter()
                .map(|(key, id)| (0, key.as_slice(), id.to_le_bytes().to_vec()))
                .collect();
            level = self.pages(BRANCH, &branches);
        }
        level[0].1
    }

    /// Packs `elements` (flags, key, value; for branches the value is the child's page id)
    /// into pages of kind `flags`; each page's first key and id.
    fn pages(&mut self, flags: u16, elements: &[(u32, &[u8], Vec<u8>)]) -> Vec<(Vec<u8>, u64)> {
        let mut made = Vec::new();
        let mut start = 0;
        loop {
            let mut end = start;
            let mut size = HEADER;
            while end < elements.len() && end - start < usize::from(u16::MAX) {
                let (_, k, v) = &elements[end];
                let more = ELEMENT + k.len() + if flags == BRANCH { 0 } else { v.len() };
                if end > start && size + more > self.page_size {
                    break;
                }
                size += more;
                end += 1;
            }
            let first = elements
                .get(start)
                .map(|e| e.1.to_vec())
                .unwrap_or_default();
            made.push((first, self.page(flags, &elements[start..end], size)));
            start = end;
            if start >= elements.len() {
                return made;
            }
        }
    }

    /// Appends one page (with overflow pages for `size` bytes) of `elements`; its id.
    fn page(&mut self, flags: u16, elements: &[(u32, &[u8], Vec<u8>)], size: usize) -> u64 {
        let at = self.out.len();
        let id = (at / self.page_size) as u64;
        let pages = size.div_ceil(self.page_size).max(1);
        self.out.resize(at + pages * self.page_size, 0);
        self.header(at, id, flags, elements.len() as u16, (pages - 1) as u32);
        let mut data = at + HEADER + elements.len() * ELEMENT;
        for (i, (eflags, key, value)) in elements.iter().enumerate() {
            let e = at + HEADER + i * ELEMENT;
            let pos = (data - e) as u32;
            let fields: [u32; 4] = match flags {
                BRANCH => [pos, key.len() as u32, 0, 0],
                _ => [*eflags, pos, key.len() as u32, value.len() as u32],
            };
            for (j, f) in fields.iter().enumerate() {
                self.out[e + 4 * j..e + 4 * j + 4].copy_from_slice(&f.to_le_bytes());
            }
            if flags == BRANCH {
                self.out[e + 8..e + 16].copy_from_slice(value);
            }
            self.out[data..data + key.len()].copy_from_slice(key);
            data += key.len();
            if flags != BRANCH {
                self.out[data..data + value.len()].copy_from_slice(value);
                data += value.len();
            }
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: &[u8]) -> Entry {
        Entry::Value(v.to_vec())
    }

    fn sample() -> Bucket {
        let mut inner = Bucket {
            sequence: 7,
            ..Bucket::default()
        };
        for i in 0..600u32 {
            inner
                .entries
                .insert(format!("key-{i:05}").into_bytes(), value(&[i as u8; 40]));
        }
        inner.entries.insert(b"big".to_vec(), value(&[9; 10_000]));
        let mut time = vec![1u8];
        time.extend_from_slice(&[0xAA; 14]);
        inner
            .entries
            .insert(b"createdat".to_vec(), Entry::Value(time));
        let mut v1 = Bucket::default();
        v1.entries.insert(b"version".to_vec(), value(b"\x03"));
        v1.entries.insert(b"inner".to_vec(), Entry::Bucket(inner));
        v1.entries
            .insert(b"empty".to_vec(), Entry::Bucket(Bucket::default()));
        let mut root = Bucket::default();
        root.entries.insert(b"v1".to_vec(), Entry::Bucket(v1));
        root
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let root = sample();
        let file = write(&root, 4096);
        assert_eq!(file.len() % 4096, 0);
        let (read_back, page_size) = read(&file).unwrap();
        assert_eq!(page_size, 4096);
        assert_eq!(read_back, root);
        assert_eq!(
            write(&read_back, 4096),
            file,
            "not a function of the contents"
        );
    }

    #[test]
    fn timestamps_become_the_epoch() {
        let mut root = sample();
        stamp(&mut root, 1_700_000_000);
        let Entry::Bucket(v1) = &root.entries[b"v1".as_slice()] else {
            panic!()
        };
        let Entry::Bucket(inner) = &v1.entries[b"inner".as_slice()] else {
            panic!()
        };
        let Entry::Value(t) = &inner.entries[b"createdat".as_slice()] else {
            panic!()
        };
        assert_eq!(t[0], 1);
        assert_eq!(
            u64::from_be_bytes(t[1..9].try_into().unwrap()),
            1_700_000_000 + GO_UNIX_OFFSET
        );
        assert_eq!(&t[9..13], &[0, 0, 0, 0]);
        assert_eq!(&t[13..], &[0xFF, 0xFF], "not UTC");
    }

    #[test]
    fn a_file_that_is_not_bbolt_is_refused() {
        assert!(read(&[0u8; 8192]).is_err());
        assert!(read(b"short").is_err());
    }
}
