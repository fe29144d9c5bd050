//! The GPT disk, laid out by systemd-repart: partition definitions (Discoverable Partitions types
//! for the plan's architecture, fixed sizes, UUIDs from the build's seed or the verity root hash,
//! contents by `CopyBlocks=`), `--seed` for the disk's own GUID, `--empty=create --size=` for a
//! new image file. The root filesystem is written into its partition by kiln afterwards, sparse
//! (repart's block copy would write out every zero of the mostly empty root image).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use super::arch::DiskArch;
use super::layout::Uuids;

/// One partition of the disk, in disk order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The repart `Type=` (`esp`, `usr-x86-64`, `usr-x86-64-verity`, `root-x86-64`).
    pub kind: String,
    /// The GPT partition name (`esp`, `usr`, `usr-verity`, `root`).
    pub label: &'static str,
    /// The partition UUID.
    pub uuid: String,
    /// Its size in bytes; for the last partition the least size (it takes the rest).
    pub size: u64,
    /// The image copied in by repart (`CopyBlocks=`), if any.
    pub copy_blocks: Option<PathBuf>,
    /// Read-only flag (bit 60) of the Discoverable Partitions Specification.
    pub read_only: bool,
}

/// An image and the size of the partition it goes into.
#[derive(Debug, Clone)]
pub struct Sized {
    /// The image file.
    pub image: PathBuf,
    /// The partition's size in bytes.
    pub size: u64,
}

impl Sized {
    /// The same image in a partition of `size` bytes.
    pub fn sized(self, size: u64) -> Sized {
        Sized { size, ..self }
    }
}

impl Partition {
    /// A partition of `kind` (a repart type name) named `label`, filled with `image` by repart.
    fn new(
        kind: String,
        label: &'static str,
        uuid: &str,
        image: Option<&Sized>,
        size: u64,
    ) -> Self {
        Partition {
            kind,
            label,
            uuid: uuid.to_owned(),
            size,
            copy_blocks: image.map(|i| i.image.clone()),
            read_only: false,
        }
    }

    fn read_only(self) -> Self {
        Partition {
            read_only: true,
            ..self
        }
    }
}

/// The partitions in disk order for the architecture `arch` (its partition types): the ESP,
/// /usr, with dm-verity (`verity`: the root hash and the hash tree) the `usr-verity` partition —
/// both with the UUIDs the root hash gives them — and, when signed, the `usr-verity-sig`
/// partition (`signature`), the root (written by kiln afterwards).
pub fn layout(
    arch: DiskArch,
    uuids: &Uuids,
    (esp, usr): (&Sized, &Sized),
    verity: Option<(&str, &Sized)>,
    signature: Option<&Sized>,
    root_size: u64,
) -> anyhow::Result<Vec<Partition>> {
    let esp = Partition::new("esp".into(), "esp", &uuids.esp, Some(esp), esp.size);
    let usr_image = |role, uuid: &str, image: &Sized| {
        let kind = arch.partition_type(role);
        Partition::new(kind, role, uuid, Some(image), image.size).read_only()
    };
    let mut parts = vec![esp];
    match (verity, &uuids.usr) {
        (Some((root_hash, hash)), _) => {
            let (data_uuid, hash_uuid) = super::verity::partition_uuids(root_hash);
            parts.push(usr_image("usr", &data_uuid, usr));
            parts.push(usr_image("usr-verity", &hash_uuid, hash));
        }
        (None, Some(uuid)) => parts.push(usr_image("usr", uuid, usr)),
        (None, None) => anyhow::bail!("/usr has neither a partition UUID nor a verity root hash"),
    }
    match (signature, verity) {
        (Some(sig), Some((root_hash, _))) => {
            let uuid = super::verity::signature_uuid(root_hash);
            parts.push(usr_image("usr-verity-sig", &uuid, sig));
        }
        (Some(_), None) => anyhow::bail!("a /usr signature without dm-verity"),
        (None, _) => {}
    }
    let root_kind = arch.partition_type("root");
    parts.push(Partition::new(
        root_kind,
        "root",
        &uuids.root,
        None,
        root_size,
    ));
    Ok(parts)
}

/// The `repart.d` definition of `p`; `last` takes what is left of the disk.
pub fn definition(p: &Partition, last: bool) -> String {
    let mut d = format!(
        "# kiln: {label}\n[Partition]\nType={kind}\nLabel={label}\nUUID={uuid}\nSizeMinBytes={size}\n",
        label = p.label,
        kind = p.kind,
        uuid = p.uuid,
        size = p.size
    );
    if !last {
        let _ = writeln!(d, "SizeMaxBytes={}", p.size);
    }
    if let Some(image) = &p.copy_blocks {
        let _ = writeln!(d, "CopyBlocks={}", image.display());
    }
    if p.read_only {
        d.push_str("ReadOnly=yes\n");
    }
    d
}

/// Where repart put a partition.
#[derive(Debug, Clone, Deserialize)]
pub struct Placed {
    /// The GPT partition name.
    pub label: String,
    /// Byte offset in the disk.
    pub offset: u64,
    /// Size in bytes.
    pub raw_size: u64,
}

/// Writes the definitions of `parts` into `dir` (`10-esp.conf`, ...) and has systemd-repart make
/// the disk `out` (`size` bytes, must not exist) with disk GUID seeded by `seed` (a UUID).
pub fn make_disk(
    parts: &[Partition],
    dir: &Path,
    size: u64,
    seed: &str,
    out: &Path,
) -> anyhow::Result<Vec<Placed>> {
    std::fs::create_dir_all(dir)?;
    for (i, p) in parts.iter().enumerate() {
        let name = format!("{}-{}.conf", 10 * (i + 1), p.label);
        let last = i + 1 == parts.len();
        std::fs::write(dir.join(&name), definition(p, last))
            .with_context(|| format!("writing {}", dir.join(&name).display()))?;
    }
    let repart = crate::bake::repart::find("[disk]", false)?;
    let json = crate::bake::repart::create(&repart, dir, out, size, seed, &[])
        .context("systemd-repart (laying out the GPT disk)")?;
    let placed: Vec<Placed> = serde_json::from_slice(&json)
        .context("reading systemd-repart's JSON table of the new disk")?;
    anyhow::ensure!(
        placed.len() == parts.len(),
        "systemd-repart made {} partitions, not {}",
        placed.len(),
        parts.len()
    );
    Ok(placed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bake::arch::Arch;

    fn usr() -> Partition {
        Partition {
            kind: "usr-x86-64".into(),
            label: "usr",
            uuid: "597d7083-690c-fe56-26ce-a4ed44c923dd".into(),
            size: 5 << 20,
            copy_blocks: Some("/s/usr.img".into()),
            read_only: true,
        }
    }

    #[test]
    fn the_layout_follows_the_architecture_and_the_root_hash() {
        let uuids = Uuids {
            esp: "e".into(),
            usr: None,
            root: "r".into(),
        };
        let img = |name: &str, size| Sized {
            image: format!("/s/{name}").into(),
            size,
        };
        let hash = "597d7083690cfe5626cea4ed44c923dd122e36a0e597de09c89802cb18f5360e";
        let (esp, usr, tree) = (
            img("esp.img", 1),
            img("usr.img", 2),
            img("usr-verity.img", 3),
        );
        let arm = DiskArch::of(Arch::Arm64);
        let amd = DiskArch::of(Arch::Amd64);
        let parts = layout(arm, &uuids, (&esp, &usr), Some((hash, &tree)), None, 4).unwrap();
        let kinds: Vec<_> = parts
            .iter()
            .map(|p| (p.kind.as_str(), p.uuid.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("esp", "e"),
                ("usr-arm64", "597d7083-690c-fe56-26ce-a4ed44c923dd"),
                ("usr-arm64-verity", "122e36a0-e597-de09-c898-02cb18f5360e"),
                ("root-arm64", "r")
            ]
        );
        assert!(parts[1].read_only && parts[2].read_only && !parts[3].read_only);
        assert!(parts[3].copy_blocks.is_none());
        assert!(layout(amd, &uuids, (&esp, &usr), None, None, 4).is_err());
        let sig = img("usr-verity-sig.img", 5);
        let signed = layout(
            amd,
            &uuids,
            (&esp, &usr),
            Some((hash, &tree)),
            Some(&sig),
            4,
        )
        .unwrap();
        assert_eq!(
            (
                signed[3].kind.as_str(),
                signed[3].label,
                signed[3].read_only
            ),
            ("usr-x86-64-verity-sig", "usr-verity-sig", true)
        );
        assert_eq!(signed[4].label, "root");
        let plain = Uuids {
            usr: Some("u".into()),
            ..uuids
        };
        let parts = layout(amd, &plain, (&esp, &usr), None, None, 4).unwrap();
        assert!(layout(amd, &plain, (&esp, &usr), None, Some(&sig), 4).is_err());
        assert_eq!(parts.len(), 3);
        assert_eq!(
            (parts[1].kind.as_str(), parts[1].uuid.as_str()),
            ("usr-x86-64", "u")
        );
    }

    #[test]
    fn definitions_fix_size_uuid_and_contents() {
        assert_eq!(
            definition(&usr(), false),
            "# kiln: usr\n[Partition]\nType=usr-x86-64\nLabel=usr\nUUID=597d7083-690c-fe56-26ce-a4ed44c923dd\nSizeMinBytes=5242880\nSizeMaxBytes=5242880\nCopyBlocks=/s/usr.img\nReadOnly=yes\n"
        );
        let root = Partition {
            kind: "root-x86-64".into(),
            label: "root",
            copy_blocks: None,
            read_only: false,
            ..usr()
        };
        let d = definition(&root, true);
        assert!(
            !d.contains("SizeMaxBytes") && !d.contains("CopyBlocks"),
            "{d}"
        );
    }
}
