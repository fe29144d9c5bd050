//! Verified downloads: every artifact's expected SHA-256 is known (pinned, or from the published
//! checksum file) before its bytes are fetched, the bytes stream into the cache and enter it only
//! when they match, and a cache hit makes no network request. Downloads run in parallel with a
//! progress display.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use kiln_core::retry::{self, Attempt, Policy};
use kiln_core::url::redact;

use super::cache::Cache;
use super::http::{Client, Failure};
use super::mirror::Mirrors;
use super::plan::{Artifact, Checksum};
use super::pool;
use super::transfer::{self, CopyError};

/// Parallel downloads at a time.
const PARALLEL: usize = 4;
/// Attempts per URL for transient failures (a checksum mismatch is never retried).
const ATTEMPTS: u32 = 3;
/// The pause after the first failed attempt; each next one is [`BACKOFF_FACTOR`] times longer.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const BACKOFF_FACTOR: u32 = 4;

/// A verified artifact in the cache.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Its SHA-256.
    pub sha256: String,
    /// The verified blob.
    pub path: PathBuf,
    /// Bytes.
    pub size: u64,
    /// Whether it came from the cache without a download.
    pub cached: bool,
}

/// Fetches every artifact (in parallel), in the order given. The first failure stops the
/// build; whatever was verified before stays in the cache, nothing unverified does.
pub fn fetch_all(
    artifacts: &[Artifact],
    client: &Client,
    mirrors: &Mirrors,
    cache: &Cache,
    progress: &MultiProgress,
) -> anyhow::Result<Vec<Fetched>> {
    pool::all(artifacts, PARALLEL, |artifact| {
        fetch_one(artifact, client, mirrors, cache, progress).with_context(|| {
            format!(
                "{} {} ({})",
                artifact.name,
                artifact.version,
                artifact.arch.kube()
            )
        })
    })
}

/// Resolves the expected digest, then serves from the cache or downloads and verifies.
fn fetch_one(
    artifact: &Artifact,
    client: &Client,
    mirrors: &Mirrors,
    cache: &Cache,
    progress: &MultiProgress,
) -> anyhow::Result<Fetched> {
    let expected = expected_digest(artifact, client, mirrors, cache)?;
    let result = fetch_verified(artifact, &expected.hex, client, mirrors, cache, progress);
    match (&result, &expected.sums) {
        // Remember the checksum file only once an artifact matched it: a wrong or garbled
        // checksum file must not stay in the cache.
        (Ok(_), Some(Sums::Fetched { url, text })) => {
            let hex = cache.insert_bytes(text.as_bytes(), None)?;
            cache.index_put(url, &hex)?;
        }
        (Err(_), Some(Sums::Cached { url })) => cache.index_remove(url)?,
        _ => {}
    }
    result
}

fn fetch_verified(
    artifact: &Artifact,
    expected: &str,
    client: &Client,
    mirrors: &Mirrors,
    cache: &Cache,
    progress: &MultiProgress,
) -> anyhow::Result<Fetched> {
    if let Some(path) = cache.get_verified(expected)? {
        let size = std::fs::metadata(&path)?.len();
        tracing::debug!(artifact = artifact.name, "cache hit");
        return Ok(Fetched {
            sha256: expected.to_owned(),
            path,
            size,
            cached: true,
        });
    }
    let url = mirrors.rewrite_url(&artifact.url);
    let bar = progress.add(ProgressBar::no_length());
    bar.set_style(bar_style());
    bar.set_message(format!("{} {}", artifact.name, artifact.arch.kube()));
    let result = download_verified(&url, expected, client, cache, &bar);
    bar.finish_and_clear();
    let (path, size) = result?;
    Ok(Fetched {
        sha256: expected.to_owned(),
        path,
        size,
        cached: false,
    })
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg:>18} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// An artifact's expected digest and the checksum file it came from.
struct Expected {
    hex: String,
    sums: Option<Sums>,
}

/// Where a published checksum was read.
enum Sums {
    /// Downloaded now (recorded in the cache once the artifact matches).
    Fetched { url: String, text: String },
    /// Read from the cache (forgotten if the artifact does not match).
    Cached { url: String },
}

/// The artifact's expected SHA-256: pinned, or read from its published checksum file (cached
/// by URL once an artifact matched it: release checksum files are immutable).
fn expected_digest(
    artifact: &Artifact,
    client: &Client,
    mirrors: &Mirrors,
    cache: &Cache,
) -> anyhow::Result<Expected> {
    let (sums_url, file_name) = match &artifact.checksum {
        Checksum::Pinned(hex) => {
            return Ok(Expected {
                hex: hex.clone(),
                sums: None,
            })
        }
        Checksum::Published { url, file_name } => (mirrors.rewrite_url(url), file_name),
    };
    let (text, sums) = match cached_text(cache, &sums_url)? {
        Some(text) => (
            text,
            Sums::Cached {
                url: sums_url.clone(),
            },
        ),
        None => {
            let body = with_retries(&sums_url, || client.get_small(&sums_url))?;
            let text = String::from_utf8(body)
                .map_err(|_| anyhow::anyhow!("{}: checksum file is not text", redact(&sums_url)))?;
            (
                text.clone(),
                Sums::Fetched {
                    url: sums_url.clone(),
                    text,
                },
            )
        }
    };
    let hex = parse_checksum(&text, file_name)
        .with_context(|| format!("checksum file {}", redact(&sums_url)))?;
    Ok(Expected {
        hex,
        sums: Some(sums),
    })
}

fn cached_text(cache: &Cache, key: &str) -> anyhow::Result<Option<String>> {
    let Some(hex) = cache.index_get(key) else {
        return Ok(None);
    };
    let Some(path) = cache.get_verified(&hex)? else {
        return Ok(None);
    };
    Ok(std::fs::read_to_string(path).ok())
}

/// The digest for `file_name` in a checksum file: a bare digest, or sha256sum lines
/// (`HEX  NAME`, `HEX *NAME`).
pub fn parse_checksum(text: &str, file_name: &str) -> anyhow::Result<String> {
    let sums = kiln_core::digest::parse_sums(text);
    let listed = |line: &&kiln_core::digest::SumLine| {
        line.name.as_deref().is_some_and(|name| {
            let name = name.trim_start_matches("./");
            name.rsplit('/').next().unwrap_or(name) == file_name
        })
    };
    sums.iter()
        .find(listed)
        .or_else(|| sums.iter().rev().find(|l| l.name.is_none()))
        .map(|l| l.hex.clone())
        .ok_or_else(|| anyhow::anyhow!("no SHA-256 for {file_name} in it"))
}

/// Downloads `url` into the cache, verified against `expected`; retries transient failures.
fn download_verified(
    url: &str,
    expected: &str,
    client: &Client,
    cache: &Cache,
    bar: &ProgressBar,
) -> anyhow::Result<(PathBuf, u64)> {
    with_retries(url, || {
        bar.set_position(0);
        let (mut body, length) = client.get_stream(url)?;
        if let Some(length) = length {
            bar.set_length(length);
        }
        let mut writer = cache.writer().map_err(Attempt::Fail)?;
        transfer::copy_with_progress(&mut body, &mut writer, &|n| bar.inc(n)).map_err(
            |e| match e {
                CopyError::Read(e) if kiln_core::http::is_transient_io(&e) => {
                    Attempt::Retry(format!("reading the body: {e}"))
                }
                CopyError::Read(e) => {
                    Attempt::Fail(anyhow::Error::new(e).context("reading the body"))
                }
                CopyError::Write(e) => {
                    Attempt::Fail(anyhow::Error::new(e).context("writing to the cache"))
                }
            },
        )?;
        if let Some(length) = length {
            if writer.written() != length {
                return Err(Attempt::Retry(format!(
                    "body ended after {} of {length} bytes",
                    writer.written()
                )));
            }
        }
        let size = writer.written();
        let (_, path) = writer.finish(Some(expected)).map_err(|e| {
            Attempt::Fail(e.context(format!(
                "{}: the download does not match its checksum; not using it",
                redact(url)
            )))
        })?;
        Ok((path, size))
    })
}

/// Runs `attempt` under the download policy: [`ATTEMPTS`] tries, transient failures retried.
fn with_retries<T>(
    url: &str,
    mut attempt: impl FnMut() -> Result<T, Failure>,
) -> anyhow::Result<T> {
    Policy::attempts(ATTEMPTS, FIRST_BACKOFF)
        .factor(BACKOFF_FACTOR)
        .run(
            |_| attempt(),
            |reason, pause| tracing::warn!("{}: {reason}; retrying in {pause:?}", redact(url)),
        )
        .map_err(|e| match e {
            retry::Error::Final(err) => err,
            retry::Error::GaveUp { attempts, last } => {
                anyhow::anyhow!(
                    "{}: {last} (gave up after {attempts} attempts)",
                    redact(url)
                )
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_files_in_both_formats() {
        let a = "a".repeat(64);
        let b = "B".repeat(64);
        assert_eq!(parse_checksum(&format!("{a}\n"), "kubeadm").unwrap(), a);
        let list = format!("{a}  runc.amd64\n{b} *runc.arm64\n");
        assert_eq!(parse_checksum(&list, "runc.arm64").unwrap(), "b".repeat(64));
        let err = parse_checksum(&list, "runc.s390x").unwrap_err();
        assert!(err.to_string().contains("runc.s390x"));
        assert!(parse_checksum("not a digest\n", "x").is_err());
        let nested = format!("{a}  ./bin/cni.tgz\n");
        assert_eq!(parse_checksum(&nested, "cni.tgz").unwrap(), a);
    }
}
