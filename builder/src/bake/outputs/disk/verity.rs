//! dm-verity for the read-only /usr image: the hash tree made with `veritysetup format` (salt and
//! superblock UUID derived from the build's seed, so the root hash is a function of the image),
//! and the partition UUIDs systemd expects for a `usrhash=` (the Discoverable Partitions
//! Specification: the data partition's UUID is the root hash's first 128 bits, the hash
//! partition's its last 128 bits).
//!
//! Why not systemd-repart's `Verity=`: Debian 12's systemd-repart (252) formats the hash
//! partition with a random salt and verity UUID and 512-byte blocks, so two builds of the same
//! /usr would get different root hashes; repart still lays the partitions out (see
//! [`super::repart`]).

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use kiln_core::command::Run;

/// Block size of data and hash tree (erofs and squashfs images are multiples of 4 KiB).
const BLOCK: &str = "4096";

/// Writes the hash tree of `data` to `hash` and returns the root hash (hex). `salt` is 64 hex
/// characters, `uuid` the verity superblock's UUID.
pub fn format(data: &Path, hash: &Path, salt: &str, uuid: &str) -> anyhow::Result<String> {
    let out = Run::new(
        Command::new("veritysetup")
            .arg("format")
            .arg(format!("--data-block-size={BLOCK}"))
            .arg(format!("--hash-block-size={BLOCK}"))
            .arg(format!("--salt={salt}"))
            .arg(format!("--uuid={uuid}"))
            .arg(data)
            .arg(hash),
        "veritysetup format (the /usr hash tree)",
    )
    .run()?;
    root_hash(&String::from_utf8_lossy(&out.stdout))
}

/// The `Root hash:` line of `veritysetup format`'s report.
fn root_hash(report: &str) -> anyhow::Result<String> {
    let hash = report
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .map(str::trim)
        .context("veritysetup format printed no root hash")?;
    anyhow::ensure!(
        hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "veritysetup format printed an unexpected root hash {hash:?}"
    );
    Ok(hash.to_ascii_lowercase())
}

/// The partition UUIDs of the /usr data and hash partitions for `root_hash` (64 hex
/// characters): `(data, hash)`, as systemd-veritysetup-generator looks them up for `usrhash=`.
pub fn partition_uuids(root_hash: &str) -> (String, String) {
    let tail = &root_hash[root_hash.len() - 32..];
    (uuid_of(&root_hash[..32]), uuid_of(tail))
}

/// The partition UUID of the /usr signature partition for `root_hash`: derived from it (the
/// specification fixes none; systemd finds the partition by its type).
pub fn signature_uuid(root_hash: &str) -> String {
    let hash = kiln_core::digest::sha256_hex(format!("usr-verity-sig\n{root_hash}").as_bytes());
    uuid_of(&hash[..32])
}

/// 32 hex characters as a UUID (8-4-4-4-12).
fn uuid_of(hex: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_uuids_are_the_halves_of_the_root_hash() {
        let hash = "597d7083690cfe5626cea4ed44c923dd122e36a0e597de09c89802cb18f5360e";
        assert_eq!(
            partition_uuids(hash),
            (
                "597d7083-690c-fe56-26ce-a4ed44c923dd".to_owned(),
                "122e36a0-e597-de09-c898-02cb18f5360e".to_owned()
            )
        );
    }

    #[test]
    fn the_root_hash_line_is_read_and_checked() {
        let report = "VERITY header information for usr-verity.img\nUUID:            \tx\nRoot hash:      \t597D7083690cfe5626cea4ed44c923dd122e36a0e597de09c89802cb18f5360e\n";
        assert_eq!(
            root_hash(report).unwrap(),
            "597d7083690cfe5626cea4ed44c923dd122e36a0e597de09c89802cb18f5360e"
        );
        assert!(root_hash("Root hash: xyz\n").is_err());
        assert!(root_hash("nothing\n").is_err());
    }
}
