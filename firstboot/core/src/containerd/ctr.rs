//! containerd's image store through its own client, `ctr`, in the namespace kubelet's CRI uses
//! (`k8s.io`): importing image archives (unpacked with containerd's default snapshotter, the one
//! its CRI uses), pinning the sandbox image, and checking what the store holds
//! (`ctr images check`: the image's target digest, whether all its content is present, whether
//! it is unpacked).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::command::Run;

/// The containerd namespace kubelet's CRI uses.
pub const NAMESPACE: &str = "k8s.io";

/// The label containerd's CRI reads to report an image as pinned (kubelet's image garbage
/// collection never removes it; containerd 1.7+ and 1.6 releases with the backport).
pub const PINNED_LABEL: &str = "io.cri-containerd.pinned=pinned";

/// The longest one `ctr` call may take (an import of a large image included).
const TIMEOUT: Duration = Duration::from_secs(300);

/// `ctr --address ADDRESS --namespace k8s.io ARGS`; its stdout, or an error with its stderr.
pub fn ctr(address: &Path, args: &[&str]) -> anyhow::Result<String> {
    let mut cmd = Command::new("ctr");
    cmd.arg("--address")
        .arg(address)
        .args(["--namespace", NAMESPACE])
        .args(args);
    let done = Run::new(&mut cmd, format!("ctr {}", args.join(" ")))
        .timeout(TIMEOUT)
        .run()?;
    Ok(String::from_utf8_lossy(&done.stdout).into_owned())
}

/// Reads the `ctr` binary `PATH` names once, so that its first run finds it in the page cache
/// rather than waiting for the disk (on a disk image: /usr's erofs and dm-verity); done while
/// containerd starts. How many bytes were read (`None`: no `ctr` on `PATH` or unreadable).
pub fn prefetch() -> Option<u64> {
    read_through(&crate::command::which("ctr")?)
}

/// Reads the file `bin` to its end; the bytes read.
fn read_through(bin: &Path) -> Option<u64> {
    let mut file = std::fs::File::open(bin).ok()?;
    std::io::copy(&mut file, &mut std::io::sink()).ok()
}

/// Imports the image archive `archive` (OCI layout or docker-archive tar) and unpacks it.
pub fn import(address: &Path, archive: &Path) -> anyhow::Result<()> {
    let path = archive
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("{}: not a UTF-8 path", archive.display()))?;
    ctr(address, &["images", "import", path])
        .map_err(|e| e.context(format!("importing {}", archive.display())))?;
    Ok(())
}

/// Labels image `name` pinned.
pub fn pin(address: &Path, name: &str) -> anyhow::Result<()> {
    ctr(address, &["images", "label", name, PINNED_LABEL])
        .map_err(|e| e.context(format!("pinning the sandbox image {name}")))?;
    Ok(())
}

/// Gives image `from` the further name `to` (same content, nothing copied).
pub fn tag(address: &Path, from: &str, to: &str) -> anyhow::Result<()> {
    ctr(address, &["images", "tag", "--force", from, to])
        .map_err(|e| e.context(format!("naming {from} also {to}")))?;
    Ok(())
}

/// One image of the store as `ctr images check` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its name (`registry.k8s.io/pause:3.10`).
    pub name: String,
    /// The digest it points at (`sha256:<hex>`: the index or manifest).
    pub digest: String,
    /// Whether every blob it needs is in the content store.
    pub complete: bool,
    /// Whether it is unpacked into the default snapshotter.
    pub unpacked: bool,
}

impl Stored {
    /// Whether the CRI can run it as it is: all content present and unpacked.
    pub fn usable(&self) -> bool {
        self.complete && self.unpacked
    }
}

/// Every image in the store, checked.
pub fn check(address: &Path) -> anyhow::Result<Vec<Stored>> {
    Ok(parse_check(&ctr(address, &["images", "check"])?))
}

/// Parses `ctr images check` (`REF TYPE DIGEST STATUS SIZE UNPACKED`, where STATUS is
/// `complete (3/3)` or `incomplete (1/3)` and SIZE has spaces: the last field is UNPACKED).
pub fn parse_check(text: &str) -> Vec<Stored> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (name, digest, status) = (fields.first()?, fields.get(2)?, fields.get(3)?);
            Some(Stored {
                name: (*name).to_owned(),
                digest: (*digest).to_owned(),
                complete: *status == "complete",
                unpacked: fields.last() == Some(&"true"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_reads_the_whole_binary() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("ctr"), "12345").unwrap();
        assert_eq!(read_through(&tmp.path().join("ctr")), Some(5));
        assert_eq!(read_through(&tmp.path().join("missing")), None);
    }

    #[test]
    fn check_output_is_read_by_first_and_last_fields() {
        let text = "REF                        TYPE                                      DIGEST                                                                  STATUS         SIZE                UNPACKED \n\
registry.k8s.io/pause:3.10 application/vnd.oci.image.index.v1+json sha256:aaaa complete (3/3) 1.2 KiB/1.2 KiB true\n\
registry.k8s.io/etcd:3.5   application/vnd.oci.image.manifest.v1+json sha256:bbbb incomplete (1/3) 10.0 B/1.2 KiB false\n";
        let stored = parse_check(text);
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0].name, "registry.k8s.io/pause:3.10");
        assert_eq!(stored[0].digest, "sha256:aaaa");
        assert!(stored[0].usable());
        assert!(!stored[1].complete && !stored[1].unpacked && !stored[1].usable());
        assert!(parse_check("").is_empty());
    }
}
