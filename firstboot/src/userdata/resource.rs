//! Resources user-data points at: `data:` URLs (plain and base64) handled here, remote URLs
//! through a [`Fetcher`]; then verified (`sha256-`/`sha512-` hashes) and decompressed (gzip).
//! Every decoded byte is charged to the run's [`Budget`].

use std::io::Read;

use aws_lc_rs::digest;

use super::budget::{Budget, Limit};
use super::error::{Result, UserDataError};

/// Upper bound for one decompressed resource, so a small gzip bomb cannot fill the disk; the
/// run's `decoded-bytes` budget bounds them all together.
pub const MAX_RESOURCE_BYTES: u64 = 256 * 1024 * 1024;

/// Fetches remote resources (`http`, `https`, ...). The boot-time run supplies a retrying HTTP
/// client; `apply` without network supplies [`NoNetwork`].
pub trait Fetcher {
    /// The bytes at `url`; `field` names the user-data field for errors.
    fn fetch(&self, url: &str, field: &str) -> Result<Vec<u8>>;
}

/// A fetcher that refuses every remote URL.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoNetwork;

impl Fetcher for NoNetwork {
    fn fetch(&self, url: &str, field: &str) -> Result<Vec<u8>> {
        let scheme = url.split(':').next().unwrap_or_default();
        Err(UserDataError::new(
            field,
            format!("cannot fetch {scheme}: URLs here (no network fetcher); inline the contents as a data: URL"),
        ))
    }
}

/// A resource as user-data describes it.
#[derive(Debug, Clone, Copy)]
pub struct ResourceRef<'a> {
    /// The URL.
    pub source: &'a str,
    /// `gzip` or none.
    pub compression: Option<&'a str>,
    /// `sha256-<hex>` or `sha512-<hex>` of the decompressed contents.
    pub hash: Option<&'a str>,
}

/// Resolves a resource to its verified, decompressed bytes, charging them to `budget`.
pub fn resolve(
    res: ResourceRef<'_>,
    fetcher: &dyn Fetcher,
    budget: &Budget,
    field: &str,
) -> Result<Vec<u8>> {
    let source_field = format!("{field}.source");
    let raw = if res.source.starts_with("data:") {
        decode_data_url(res.source, &source_field)?
    } else {
        fetcher.fetch(res.source, &source_field)?
    };
    budget.charge(Limit::DecodedBytes, raw.len() as u64, &source_field)?;
    let bytes = match res.compression {
        None | Some("") => raw,
        Some("gzip") => gunzip(&raw, budget, &format!("{field}.compression"))?,
        Some(other) => {
            return Err(UserDataError::new(
                format!("{field}.compression"),
                format!("unsupported compression {other:?}; use \"gzip\" or none"),
            ))
        }
    };
    if let Some(hash) = res.hash {
        verify_hash(&bytes, hash, &format!("{field}.verification.hash"))?;
    }
    Ok(bytes)
}

/// Decodes an RFC 2397 `data:` URL (percent-encoded or base64).
pub fn decode_data_url(url: &str, field: &str) -> Result<Vec<u8>> {
    let parsed = data_url::DataUrl::process(url)
        .map_err(|e| UserDataError::new(field, format!("malformed data: URL ({e:?})")))?;
    let (body, _) = parsed
        .decode_to_vec()
        .map_err(|_| UserDataError::new(field, "data: URL has invalid base64"))?;
    Ok(body)
}

/// Decompresses gzip data, refusing output over [`MAX_RESOURCE_BYTES`] or over what is left of
/// the `decoded-bytes` budget (it stops there, so a bomb never grows past either).
pub fn gunzip(data: &[u8], budget: &Budget, field: &str) -> Result<Vec<u8>> {
    let allowed = MAX_RESOURCE_BYTES.min(budget.left(Limit::DecodedBytes));
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .take(allowed + 1)
        .read_to_end(&mut out)
        .map_err(|e| UserDataError::new(field, format!("invalid gzip data ({e})")))?;
    if out.len() as u64 > MAX_RESOURCE_BYTES {
        return Err(UserDataError::new(
            field,
            "decompressed data is larger than 256 MiB",
        ));
    }
    budget.charge(Limit::DecodedBytes, out.len() as u64, field)?;
    Ok(out)
}

/// Checks `sha256-<hex>` / `sha512-<hex>` against `data`.
pub fn verify_hash(data: &[u8], expected: &str, field: &str) -> Result<()> {
    let (algorithm, hex_value) = expected.split_once('-').ok_or_else(|| {
        UserDataError::new(
            field,
            format!("{expected:?} is not TYPE-HEX (sha256-... or sha512-...)"),
        )
    })?;
    let alg = match algorithm {
        "sha256" => &digest::SHA256,
        "sha512" => &digest::SHA512,
        other => {
            return Err(UserDataError::new(
                field,
                format!("unsupported hash type {other:?}; use sha256 or sha512"),
            ))
        }
    };
    let actual = hex::encode(digest::digest(alg, data));
    if !actual.eq_ignore_ascii_case(hex_value) {
        return Err(UserDataError::new(
            field,
            format!("hash mismatch: expected {algorithm}-{hex_value}, got {algorithm}-{actual}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userdata::budget::Limits;

    fn gz(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn unlimited() -> Budget {
        Budget::new(Limits::default())
    }

    #[test]
    fn data_urls_plain_and_base64() {
        assert_eq!(
            decode_data_url("data:,hello%20world", "f").unwrap(),
            b"hello world"
        );
        assert_eq!(decode_data_url("data:;base64,aGk=", "f").unwrap(), b"hi");
        assert_eq!(
            decode_data_url("data:text/plain;charset=utf-8;base64,aGk=", "f").unwrap(),
            b"hi"
        );
        let err = decode_data_url("data:;base64,!!!", "x.source")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.source: "), "{err}");
    }

    #[test]
    fn gzip_and_hash_of_decompressed_contents() {
        use base64::prelude::{Engine, BASE64_STANDARD};
        let url = format!("data:;base64,{}", BASE64_STANDARD.encode(gz(b"payload")));
        let sha = hex::encode(digest::digest(&digest::SHA512, b"payload"));
        let hash = format!("sha512-{sha}");
        let res = ResourceRef {
            source: &url,
            compression: Some("gzip"),
            hash: Some(&hash),
        };
        assert_eq!(
            resolve(res, &NoNetwork, &unlimited(), "f").unwrap(),
            b"payload"
        );
        let bad = ResourceRef {
            hash: Some("sha512-00"),
            ..res
        };
        let err = resolve(bad, &NoNetwork, &unlimited(), "storage.files[0].contents")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("storage.files[0].contents.verification.hash: hash mismatch"),
            "{err}"
        );
        let not_gz = ResourceRef {
            source: "data:,plain",
            compression: Some("gzip"),
            hash: None,
        };
        assert!(resolve(not_gz, &NoNetwork, &unlimited(), "f")
            .unwrap_err()
            .to_string()
            .contains("invalid gzip"));
    }

    #[test]
    fn remote_sources_need_a_fetcher() {
        let res = ResourceRef {
            source: "https://example.invalid/x",
            compression: None,
            hash: None,
        };
        let err = resolve(res, &NoNetwork, &unlimited(), "f")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f.source: cannot fetch https"), "{err}");
    }

    #[test]
    fn decoded_bytes_add_up_over_resources() {
        use base64::prelude::{Engine, BASE64_STANDARD};
        let bomb = gz(&vec![0; 3 << 20]);
        let url = format!("data:;base64,{}", BASE64_STANDARD.encode(&bomb));
        let res = ResourceRef {
            source: &url,
            compression: Some("gzip"),
            hash: None,
        };
        let mut limits = Limits::default();
        limits.set(Limit::DecodedBytes, 8 << 20);
        let budget = Budget::new(limits);
        resolve(res, &NoNetwork, &budget, "storage.files[0].contents").unwrap();
        resolve(res, &NoNetwork, &budget, "storage.files[1].contents").unwrap();
        let err = resolve(res, &NoNetwork, &budget, "storage.files[2].contents").unwrap_err();
        assert_eq!(err.field, "storage.files[2].contents.compression");
        assert!(
            err.message
                .contains("decoded-bytes budget of 8388608 bytes (8 MiB)"),
            "{}",
            err.message
        );
    }
}
