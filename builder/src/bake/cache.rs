//! The build cache: a content-addressed store of verified blobs (`sha256/<hex>`) plus a small
//! index from immutable keys (a release URL, an image reference pinned by the recipe) to the
//! digest of what they served, so a warm build makes no network request at all.
//!
//! Nothing enters `sha256/` unverified: a blob is written under `tmp/`, hashed while it is
//! written, and renamed into place only when its digest matches (a failed or interrupted download
//! never poisons the cache). Readers re-hash blobs before use, and a corrupt blob is removed.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use kiln_core::digest::{self, Sha256Writer};

/// A cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// Opens (creating if needed) the cache at `root`.
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        for sub in ["sha256", "index", "tmp"] {
            std::fs::create_dir_all(root.join(sub)).with_context(|| {
                format!("creating cache directory {}", root.join(sub).display())
            })?;
        }
        Ok(Cache {
            root: root.to_owned(),
        })
    }

    /// The default cache: `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`.
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("kiln");
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
        PathBuf::from(home).join(".cache/kiln")
    }

    /// Where the blob with `hex` digest lives (whether or not it is there).
    pub fn blob_path(&self, hex: &str) -> PathBuf {
        self.root.join("sha256").join(hex.to_ascii_lowercase())
    }

    /// The blob with digest `hex`, re-hashed first; a blob whose contents no longer match is
    /// removed and reported as absent.
    pub fn get_verified(&self, hex: &str) -> anyhow::Result<Option<PathBuf>> {
        let path = self.blob_path(hex);
        if !path.exists() {
            return Ok(None);
        }
        if digest::sha256_file(&path)? == hex.to_ascii_lowercase() {
            return Ok(Some(path));
        }
        tracing::warn!(blob = %path.display(), "cached blob is corrupt; removing it");
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        Ok(None)
    }

    /// A writer for a new blob; see [`BlobWriter::finish`].
    pub fn writer(&self) -> anyhow::Result<BlobWriter> {
        let temp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(self.root.join("tmp"))
            .context("creating a temporary file in the cache")?;
        Ok(BlobWriter {
            cache: self.clone(),
            temp: Sha256Writer::new(temp),
        })
    }

    /// Stores `bytes` as a blob (verified against `expected` if given); returns its digest.
    pub fn insert_bytes(&self, bytes: &[u8], expected: Option<&str>) -> anyhow::Result<String> {
        let mut writer = self.writer()?;
        writer.write_all(bytes).context("writing to the cache")?;
        Ok(writer.finish(expected)?.0)
    }

    /// The digest recorded for `key` by an earlier build, if any.
    pub fn index_get(&self, key: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.index_path(key)).ok()?;
        let (recorded_key, hex) = text.split_once('\n')?;
        let hex = hex.trim();
        (recorded_key == key && digest::is_sha256_hex(hex)).then(|| hex.to_owned())
    }

    /// Records that `key` resolved to digest `hex`.
    pub fn index_put(&self, key: &str, hex: &str) -> anyhow::Result<()> {
        let record = format!("{key}\n{hex}\n");
        kiln_core::fsutil::write_atomic(&self.index_path(key), record.as_bytes(), 0o644)
            .context("writing the cache index")
    }

    /// Forgets what `key` resolved to (the blob stays; it is still a verified blob).
    pub fn index_remove(&self, key: &str) -> anyhow::Result<()> {
        match std::fs::remove_file(self.index_path(key)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).context("removing a cache index entry")
            }
            _ => Ok(()),
        }
    }

    fn index_path(&self, key: &str) -> PathBuf {
        self.root
            .join("index")
            .join(digest::sha256_hex(key.as_bytes()))
    }
}

/// A blob being written: hashes what passes through and enters the cache only when verified.
pub struct BlobWriter {
    cache: Cache,
    temp: Sha256Writer<tempfile::NamedTempFile>,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.temp.written()
    }

    /// Checks the digest against `expected` (when given), syncs, and moves the blob into the
    /// cache; returns its digest and path. On a mismatch the temporary file is removed and the
    /// error names both digests.
    pub fn finish(self, expected: Option<&str>) -> anyhow::Result<(String, PathBuf)> {
        let (temp, actual) = self.temp.finish();
        if let Some(expected) = expected {
            if !actual.eq_ignore_ascii_case(expected) {
                anyhow::bail!("SHA-256 mismatch: expected {expected}, got {actual}");
            }
        }
        let path = self.cache.blob_path(&actual);
        let file: &File = temp.as_file();
        file.sync_all().context("syncing a cache blob")?;
        temp.persist(&path)
            .with_context(|| format!("moving a blob to {}", path.display()))?;
        Ok((actual, path))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.temp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.temp.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_blobs_enter_mismatches_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let good = digest::sha256_hex(b"hello");
        assert_eq!(cache.insert_bytes(b"hello", Some(&good)).unwrap(), good);
        assert!(cache.get_verified(&good).unwrap().is_some());

        let wrong = digest::sha256_hex(b"other");
        let err = cache.insert_bytes(b"hello!", Some(&wrong)).unwrap_err();
        assert!(err.to_string().contains("mismatch"), "{err}");
        assert!(cache.get_verified(&wrong).unwrap().is_none());
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn corrupt_blobs_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let hex = cache.insert_bytes(b"data", None).unwrap();
        std::fs::write(cache.blob_path(&hex), b"tampered").unwrap();
        assert!(cache.get_verified(&hex).unwrap().is_none());
        assert!(!cache.blob_path(&hex).exists());
    }

    #[test]
    fn index_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let hex = digest::sha256_hex(b"x");
        assert_eq!(cache.index_get("https://a/b"), None);
        cache.index_put("https://a/b", &hex).unwrap();
        assert_eq!(cache.index_get("https://a/b"), Some(hex));
    }
}
