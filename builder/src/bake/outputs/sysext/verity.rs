//! The signed sysext: a Discoverable Disk Image (DDI) that systemd-sysext opens with dm-verity.
//! The squashfs/erofs of the content tree (`usr/…`, as the unsigned sysext) becomes a `root`
//! partition, systemd-repart computes its `root-verity` hash tree and writes `root-verity-sig`:
//! the root hash and a PKCS#7 signature of it (UAPI.2 Discoverable Partitions Specification;
//! repart.d(5) `Verity=data|hash|signature`, `--private-key`, `--certificate`, all in systemd
//! 252, Debian 12's; bookworm-backports' 254 is not needed).
//!
//! Why `root` and not `usr` partitions: systemd 252 looks for a signature partition of the
//! designator it opens and, for an extension with no `root` partition, opens `usr` unverified
//! (tried here: systemd-sysext 252 merged a `usr`/`usr-verity`/`usr-verity-sig` image without
//! touching its signature), while with `root` partitions it insists on the signature: a key it
//! does not trust stops the merge ("Activation of signed Verity volume worked neither via the
//! kernel nor in userspace"). systemd-sysext accepts both layouts.
//!
//! systemd-repart 252 has no `Minimize=` (253), so kiln sizes the partitions: the data partition
//! exactly the filesystem image (`CopyBlocks=`), the hash partition the tree repart makes for
//! it: SHA-256 with a superblock, data and hash blocks of the image's sector size, 512 bytes
//! (repart 252 passes the sector size to libcryptsetup as both block sizes; its debug log says
//! "data blocks 91136" for 44.5 MiB). Partition and disk UUIDs follow `--seed` and the root
//! hash, but repart 252 picks a random verity salt, so the root hash (and the bytes) of a signed
//! sysext differ from build to build; the unsigned sysext stays bit-identical.
//!
//! repart computes the hash tree through a loop device: building needs root and
//! `/dev/loop-control`. A node trusts the signature when the certificate is in the kernel's
//! keyring or in `/etc/verity.d/*.crt` (systemd ≥ 252 checks there in userspace, with
//! `PKCS7_verify`, when the kernel does not know the key).

use std::ffi::OsString;
use std::path::Path;

use anyhow::Context as _;
use kiln_core::fsutil::{publish, Replace};

use crate::bake::arch::Arch;
use crate::bake::repart;
use crate::bake::signing::VeritySigner;

/// Partition sizes are multiples of this (repart's grain).
const BLOCK: u64 = 4096;
/// dm-verity data and hash block size systemd-repart 252 uses: the image's sector size.
const VERITY_BLOCK: u64 = 512;
/// Room for the signature partition (repart sizes it), the GPT and repart's alignment of the
/// first partition (1 MiB once the image is larger than a few MiB).
const SLACK: u64 = 2 << 20;

/// Bytes of the dm-verity hash partition for `data` bytes, rounded up to [`BLOCK`]: a superblock
/// block plus every level of the tree (SHA-256 digests of 32 bytes, [`VERITY_BLOCK`]-byte
/// blocks) up to the single top block, as `veritysetup format` lays it out.
pub fn hash_size(data: u64) -> u64 {
    let mut blocks = data.div_ceil(VERITY_BLOCK);
    let mut total = 1;
    loop {
        blocks = blocks.div_ceil(VERITY_BLOCK / 32);
        total += blocks;
        if blocks <= 1 {
            return (total * VERITY_BLOCK).div_ceil(BLOCK) * BLOCK;
        }
    }
}

/// The repart.d definitions of the three partitions for `arch`, as (file name, text).
pub fn definitions(fs_image: &Path, fs_size: u64, arch: Arch) -> Vec<(String, String)> {
    let a = arch.systemd();
    let data = fs_size.div_ceil(BLOCK) * BLOCK;
    let hash = hash_size(data);
    let part = |ty: &str, verity: &str, extra: String| {
        format!("[Partition]\nType={ty}\nVerity={verity}\nVerityMatchKey=root\n{extra}")
    };
    vec![
        (
            "10-root.conf".into(),
            part(
                &format!("root-{a}"),
                "data",
                format!(
                    "CopyBlocks={}\nSizeMinBytes={data}\nSizeMaxBytes={data}\n",
                    fs_image.display()
                ),
            ),
        ),
        (
            "20-root-verity.conf".into(),
            part(
                &format!("root-{a}-verity"),
                "hash",
                format!("SizeMinBytes={hash}\nSizeMaxBytes={hash}\n"),
            ),
        ),
        (
            "30-root-verity-sig.conf".into(),
            part(&format!("root-{a}-verity-sig"), "signature", String::new()),
        ),
    ]
}

/// Makes the signed DDI `out` from the filesystem image `fs_image` (of the content tree) for
/// `arch`, its UUIDs derived from `seed` (a UUID). Returns the verity root hash (hex).
pub fn make_image(
    signer: &VeritySigner,
    fs_image: &Path,
    out: &Path,
    arch: Arch,
    seed: &str,
) -> anyhow::Result<String> {
    let fs_size = std::fs::metadata(fs_image)
        .with_context(|| format!("{}", fs_image.display()))?
        .len();
    let defs = tempfile::tempdir().context("making a temporary directory")?;
    for (name, text) in definitions(fs_image, fs_size, arch) {
        std::fs::write(defs.path().join(name), text)?;
    }
    let data = fs_size.div_ceil(BLOCK) * BLOCK;
    let size = data + hash_size(data) + SLACK;
    let mut json = String::new();
    publish(out, Replace::Existing, |tmp| {
        json = run_repart(signer, defs.path(), tmp, size, seed)?;
        anyhow::Ok(())
    })
    .with_context(|| format!("making the signed sysext {}", out.display()))?;
    root_hash(&json)
}

/// Runs systemd-repart on a new image file `image` of `size` bytes, signing with `signer`;
/// returns its JSON report.
fn run_repart(
    signer: &VeritySigner,
    defs: &Path,
    image: &Path,
    size: u64,
    seed: &str,
) -> anyhow::Result<String> {
    let mut keys = Vec::new();
    for (flag, path) in [
        ("--private-key=", &signer.key),
        ("--certificate=", &signer.certificate),
    ] {
        let mut arg = OsString::from(flag);
        arg.push(path);
        keys.push(arg);
    }
    let json = repart::create(&signer.repart, defs, image, size, seed, &keys)?;
    Ok(String::from_utf8_lossy(&json).into_owned())
}

/// The root hash in systemd-repart's `--json` report (on the data and hash partitions).
fn root_hash(json: &str) -> anyhow::Result<String> {
    let parts: Vec<serde_json::Value> =
        serde_json::from_str(json).context("reading systemd-repart's JSON report")?;
    parts
        .iter()
        .filter_map(|p| p.get("roothash").and_then(|h| h.as_str()))
        .find(|h| h.len() >= 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("systemd-repart reported no verity root hash"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_size_counts_superblock_and_every_level() {
        // Up to 16 data blocks: superblock + one hash block, in one 4 KiB unit.
        assert_eq!(hash_size(512), 4096);
        assert_eq!(hash_size(16 * 512), 4096);
        // What systemd-repart 252 asked libcryptsetup for 44.5 MiB (91136 blocks, 5 levels):
        // "Hash device size required: 3112448 bytes".
        assert_eq!(hash_size(46_661_632), 3_112_448_u64.div_ceil(4096) * 4096);
    }

    #[test]
    fn definitions_name_the_architecture_and_pin_the_sizes() {
        let defs = definitions(Path::new("/w/fs.img"), 5000, Arch::Arm64);
        let names: Vec<&str> = defs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "10-root.conf",
                "20-root-verity.conf",
                "30-root-verity-sig.conf"
            ]
        );
        assert!(defs[0].1.contains("Type=root-arm64\nVerity=data\n"));
        assert!(defs[0]
            .1
            .contains("CopyBlocks=/w/fs.img\nSizeMinBytes=8192\nSizeMaxBytes=8192\n"));
        assert!(defs[1].1.contains("Type=root-arm64-verity\nVerity=hash\n"));
        assert!(defs[2]
            .1
            .contains("Type=root-arm64-verity-sig\nVerity=signature\n"));
        assert!(defs
            .iter()
            .all(|(_, t)| t.contains("VerityMatchKey=root\n")));
    }

    #[test]
    fn the_root_hash_comes_from_the_report() {
        let json = r#"[{"type":"root-x86-64","roothash":"ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12"},{"roothash":null}]"#;
        assert_eq!(root_hash(json).unwrap(), "ab12".repeat(16));
        assert!(root_hash(r#"[{"roothash":null}]"#).is_err());
    }
}
