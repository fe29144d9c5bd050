//! Image archives: one OCI image-layout tar per image (`oci-layout`, `index.json`,
//! `blobs/sha256/<hex>`) plus a `SHA256SUMS` listing them, the form kiln-firstboot checks and
//! imports with `ctr -n k8s.io images import`.
//!
//! `index.json` has one entry per name the image gets (`repo:tag` and `repo@<digest>`, as
//! containerd's CRI names a pulled image), each pointing at the pulled index or manifest, with
//! `io.containerd.image.name` (what containerd names the image after on import) and
//! `org.opencontainers.image.ref.name` (used by other tools, and by containerd when the first is
//! missing) both set to the full name. Of a multi-arch image the archive holds the index, every
//! manifest it lists (containerd reads each manifest its platform matcher accepts on import, and
//! on arm64 that includes linux/arm/v7), and the config and layers of the chosen platform only.
//!
//! The archives are reproducible: entries in sorted order, ustar headers with mtime
//! `source_date_epoch`, uid/gid 0, no user or group names, modes 0755/0644.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use kiln_core::digest::{write_sums, Sha256Reader, Sha256Writer};
use kiln_core::fsutil::{publish, Replace};

use crate::bake::cache::Cache;

use super::PulledImage;

/// Writes one archive per image into `dir` (created if missing) and `SHA256SUMS` (`<hex>  <name>`
/// lines, sorted); returns `(file name, sha256 hex)` per image in the order given. Every blob is
/// re-hashed while it is copied. On an error the archives written by this call are removed.
pub fn write_archives(
    images: &[PulledImage],
    cache: &Cache,
    dir: &Path,
    source_date_epoch: u64,
) -> anyhow::Result<Vec<(String, String)>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written: Vec<PathBuf> = Vec::new();
    let result = (|| {
        let mut sums = Vec::new();
        for image in images {
            let name = image.reference.archive_name();
            if sums.iter().any(|(n, _)| n == &name) {
                anyhow::bail!("two images map to the archive name {name}");
            }
            let path = dir.join(&name);
            let hex = write_archive(image, cache, &path, source_date_epoch)
                .with_context(|| format!("writing {} for {}", path.display(), image.reference))?;
            written.push(path);
            sums.push((name, hex));
        }
        let text = write_sums(sums.iter().map(|(n, h)| (n, h)));
        kiln_core::fsutil::write_atomic(&dir.join("SHA256SUMS"), text.as_bytes(), 0o644)
            .context("writing SHA256SUMS")?;
        Ok(sums)
    })();
    if result.is_err() {
        for path in written {
            let _ = std::fs::remove_file(path);
        }
    }
    result
}

/// One archive at `path` (written under a temporary name, fsynced, renamed); returns its SHA-256.
fn write_archive(
    image: &PulledImage,
    cache: &Cache,
    path: &Path,
    mtime: u64,
) -> anyhow::Result<String> {
    let mut hex = String::new();
    publish(path, Replace::Existing, |tmp| -> anyhow::Result<()> {
        // 0644 like SHA256SUMS beside it (a bare temp file would be 0600).
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        let mut out = Sha256Writer::new(BufWriter::new(file));
        write_tar(&mut out, image, cache, mtime)?;
        let (mut inner, digest) = out.finish();
        inner.flush()?;
        hex = digest;
        Ok(())
    })?;
    Ok(hex)
}

/// The OCI layout of `image` as a tar stream into `out`.
fn write_tar(
    out: &mut impl Write,
    image: &PulledImage,
    cache: &Cache,
    mtime: u64,
) -> anyhow::Result<()> {
    {
        let mut tar = tar::Builder::new(out);
        append_dir(&mut tar, "blobs/", mtime)?;
        append_dir(&mut tar, "blobs/sha256/", mtime)?;
        let mut blobs = image.blobs.clone();
        blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
        blobs.dedup_by(|a, b| a.digest == b.digest);
        for blob in &blobs {
            let blob_path = cache.blob_path(blob.hex());
            let file = File::open(&blob_path)
                .with_context(|| format!("{} is not in the cache", blob.digest))?;
            let len = file.metadata()?.len();
            anyhow::ensure!(
                len == blob.size,
                "cached {} has {len} bytes, expected {}",
                blob.digest,
                blob.size
            );
            let mut reader = Sha256Reader::new(file);
            let header = file_header(&format!("blobs/sha256/{}", blob.hex()), len, mtime)?;
            tar.append(&header, &mut reader)?;
            let actual = reader.finish().1;
            anyhow::ensure!(
                actual == blob.hex(),
                "cached {} is corrupt (SHA-256 {actual}); run the build again to re-fetch it",
                blob.digest
            );
        }
        let index = index_json(image);
        tar.append(
            &file_header("index.json", index.len() as u64, mtime)?,
            &index[..],
        )?;
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        tar.append(
            &file_header("oci-layout", layout.len() as u64, mtime)?,
            &layout[..],
        )?;
        tar.finish()?;
    }
    Ok(())
}

/// `index.json`: one entry per image name, each pointing at the pulled index or manifest.
fn index_json(image: &PulledImage) -> Vec<u8> {
    let manifests: Vec<serde_json::Value> = image
        .image_names()
        .into_iter()
        .map(|name| {
            serde_json::json!({
                "mediaType": image.target.media_type,
                "digest": image.target.digest,
                "size": image.target.size,
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name,
                },
            })
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    // serde_json's maps are sorted (no preserve_order): the bytes are deterministic.
    serde_json::to_vec(&index).expect("JSON values serialize")
}

fn base_header(path: &str, mtime: u64) -> anyhow::Result<tar::Header> {
    let mut header = tar::Header::new_ustar();
    header.set_path(path)?;
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    header.set_username("")?;
    header.set_groupname("")?;
    Ok(header)
}

fn file_header(path: &str, size: u64, mtime: u64) -> anyhow::Result<tar::Header> {
    let mut header = base_header(path, mtime)?;
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(size);
    header.set_cksum();
    Ok(header)
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str, mtime: u64) -> anyhow::Result<()> {
    let mut header = base_header(path, mtime)?;
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    header.set_cksum();
    tar.append(&header, std::io::empty())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bake::oci::Blob;

    fn image(cache: &Cache) -> PulledImage {
        let mut blobs = Vec::new();
        for (t, bytes) in [
            (
                "application/vnd.oci.image.manifest.v1+json",
                &b"{\"m\":1}"[..],
            ),
            ("application/vnd.oci.image.config.v1+json", b"{}"),
            ("application/vnd.oci.image.layer.v1.tar", b"layer"),
        ] {
            let hex = cache.insert_bytes(bytes, None).unwrap();
            blobs.push(Blob {
                media_type: t.into(),
                digest: format!("sha256:{hex}"),
                size: bytes.len() as u64,
            });
        }
        PulledImage {
            reference: "registry.k8s.io/pause:3.10".parse().unwrap(),
            target: blobs[0].clone(),
            manifest_digest: blobs[0].digest.clone(),
            size: blobs.iter().map(|b| b.size).sum(),
            blobs,
        }
    }

    #[test]
    fn archives_are_reproducible_and_sorted() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(&tmp.path().join("cache")).unwrap();
        let img = image(&cache);
        let a =
            write_archives(std::slice::from_ref(&img), &cache, &tmp.path().join("a"), 7).unwrap();
        let b = write_archives(&[img], &cache, &tmp.path().join("b"), 7).unwrap();
        assert_eq!(a, b);
        assert_eq!(a[0].0, "registry.k8s.io_pause_3.10.tar");
        let bytes = std::fs::read(tmp.path().join("a").join(&a[0].0)).unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let h = entry.header();
            assert_eq!(
                (h.mtime().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
                (7, 0, 0)
            );
            assert_eq!(h.username().unwrap(), Some(""));
            names.push(entry.path().unwrap().display().to_string());
        }
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(names.len(), 7);
        let sums = std::fs::read_to_string(tmp.path().join("a/SHA256SUMS")).unwrap();
        assert_eq!(sums, format!("{}  {}\n", a[0].1, a[0].0));
    }

    #[test]
    fn a_corrupt_cache_blob_leaves_no_archive() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(&tmp.path().join("cache")).unwrap();
        let img = image(&cache);
        std::fs::write(cache.blob_path(img.blobs[2].hex()), b"LAYER").unwrap();
        let out = tmp.path().join("out");
        let err = write_archives(&[img], &cache, &out, 0).unwrap_err();
        assert!(format!("{err:#}").contains("corrupt"), "{err:#}");
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    }
}
