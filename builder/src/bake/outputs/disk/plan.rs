//! The recipe's `[rootfs]` and `[disk]` sections ([`DiskPlan`]), read from the recipe file and
//! checked before any long work starts.

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};

use super::arch::DiskArch;
use super::formats::Format;
use crate::bake::arch::Arch;

/// How the disk image is made: the Debian root and the disk around it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DiskPlan {
    /// The `[rootfs]` section: the operating system root built with mmdebstrap.
    pub rootfs: Rootfs,
    /// The `[disk]` section: partitions, kernel command line, outputs.
    pub disk: Disk,
    /// The architecture built ([`DiskPlan::for_arch`]); amd64 as read from the recipe.
    #[serde(skip, default = "amd64")]
    pub arch: Arch,
}

/// The `[rootfs]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rootfs {
    /// Debian suite, e.g. `bookworm`.
    pub suite: String,
    /// The Debian mirror (a full suite mirror: `dists/SUITE/...`); `--mirror` can replace it.
    pub mirror: String,
    /// Archive components.
    #[serde(default = "default_components")]
    pub components: Vec<String>,
    /// mmdebstrap variant (`minbase`, `important`, ...).
    #[serde(default = "default_variant")]
    pub variant: String,
    /// Packages installed on top of the variant.
    pub packages: Vec<String>,
    /// Units enabled in the image besides kiln-firstboot.service.
    #[serde(default)]
    pub enable: Vec<String>,
}

/// The `[disk]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    /// Size of the raw image, e.g. `"3G"`; the root/var partition takes what the ESP and /usr
    /// leave, and grows to fill a larger disk on first boot.
    pub size: String,
    /// Size of the EFI system partition.
    #[serde(default = "default_esp_size")]
    pub esp_size: String,
    /// The read-only /usr filesystem: `erofs` or `squashfs`.
    #[serde(default = "default_usr_fs")]
    pub usr_filesystem: String,
    /// dm-verity for /usr: a `usr-verity` hash partition beside /usr, the root hash as
    /// `usrhash=` on the kernel command line (boot entry and PXE); the initrd opens
    /// `/dev/mapper/usr` verified and the node mounts it as /usr.
    #[serde(default)]
    pub verity: bool,
    /// Kernel command line arguments besides root= and the image's own.
    #[serde(default)]
    pub cmdline: Vec<String>,
    /// The disk outputs: `raw`, `qcow2`, `vhd`, `vhdx`, `vmdk`, `gce` (see [`Format`]);
    /// default `["raw", "qcow2"]`.
    #[serde(default)]
    pub formats: Option<Vec<String>>,
    /// Older form: `qcow2 = false` is `formats = ["raw"]` (not allowed with `formats`).
    #[serde(default)]
    pub qcow2: Option<bool>,
    /// Also write PXE artifacts (kernel, initrd, iPXE script).
    #[serde(default = "yes")]
    pub pxe: bool,
}

fn default_components() -> Vec<String> {
    vec!["main".into()]
}
fn default_variant() -> String {
    "minbase".into()
}
fn default_esp_size() -> String {
    "128M".into()
}
fn default_usr_fs() -> String {
    "erofs".into()
}
fn yes() -> bool {
    true
}
fn amd64() -> Arch {
    Arch::Amd64
}

/// Packages the image cannot boot without, with the reason given when one is missing.
const REQUIRED_PACKAGES: &[(&str, &str)] = &[
    (
        "systemd-boot-efi",
        "the UEFI boot loader (systemd-boot) is taken from it",
    ),
    (
        "initramfs-tools",
        "the initrd that mounts the read-only /usr",
    ),
    ("systemd-sysv", "systemd as init"),
];

/// The smallest root/var partition accepted before the content size is known.
const MIN_ROOT_BYTES: u64 = 256 << 20;

impl DiskPlan {
    /// The plan for a recipe's `[rootfs]` and `[disk]` sections, checked.
    pub fn new(rootfs: Rootfs, disk: Disk) -> anyhow::Result<Self> {
        let plan = DiskPlan {
            rootfs,
            disk,
            arch: Arch::Amd64,
        };
        plan.check()?;
        Ok(plan)
    }

    /// The plan for `arch`: its kernel package and serial console (see [`super::arch`]).
    pub fn for_arch(&self, arch: Arch) -> DiskPlan {
        let facts = DiskArch::of(arch);
        let mut plan = self.clone();
        plan.arch = arch;
        plan.rootfs.packages = facts.packages(&self.rootfs.packages);
        plan.disk.cmdline = facts.cmdline(&self.disk.cmdline);
        plan
    }

    /// The facts of the architecture built.
    pub fn facts(&self) -> DiskArch {
        DiskArch::of(self.arch)
    }

    /// Checks what can be checked without building: required packages, sizes, filesystem.
    pub fn check(&self) -> anyhow::Result<()> {
        for (package, why) in REQUIRED_PACKAGES {
            if !self.rootfs.packages.iter().any(|p| p == package) {
                bail!("rootfs.packages: add {package:?} ({why})");
            }
        }
        if !self
            .rootfs
            .packages
            .iter()
            .any(|p| DiskArch::is_kernel_package(p))
        {
            bail!("rootfs.packages: add \"linux-image-amd64\" (the kernel; kiln installs linux-image-arm64 for arm64)");
        }
        for p in &self.rootfs.packages {
            if p.is_empty() || p.starts_with('-') || p.contains(char::is_whitespace) {
                bail!("rootfs.packages: {p:?} is not a package name");
            }
        }
        match self.disk.usr_filesystem.as_str() {
            "erofs" | "squashfs" => {}
            other => bail!(
                "disk.usr_filesystem: {other:?} is not supported; use \"erofs\" or \"squashfs\""
            ),
        }
        for arg in &self.disk.cmdline {
            if ["root=", "usrhash=", "mount.usr="]
                .iter()
                .any(|k| arg.starts_with(k))
            {
                bail!(
                    "disk.cmdline: {arg:?} is set by kiln (root= names the root partition, usrhash= the /usr dm-verity root hash with disk.verity); remove it"
                );
            }
        }
        self.formats()?;
        let size = self.size()?;
        let esp = self.esp_size()?;
        if esp < 32 << 20 {
            bail!(
                "disk.esp_size: {} is too small for the kernel and initrd; use at least 32M",
                self.disk.esp_size
            );
        }
        if size < esp + MIN_ROOT_BYTES + (1 << 20) {
            bail!(
                "disk.size: {} is too small: the ESP ({}) and a root/var partition of at least 256M do not fit",
                self.disk.size, self.disk.esp_size
            );
        }
        Ok(())
    }

    /// The disk formats to write, in [`super::formats::ALL`] order, without repeats.
    pub fn formats(&self) -> anyhow::Result<Vec<Format>> {
        let mut formats = match (&self.disk.formats, self.disk.qcow2) {
            (Some(_), Some(_)) => bail!(
                "disk.qcow2 and disk.formats: use only disk.formats (qcow2 = true is formats = [\"raw\", \"qcow2\"])"
            ),
            (Some(names), None) => names
                .iter()
                .map(|name| Format::parse(name))
                .collect::<anyhow::Result<Vec<_>>>()?,
            (None, qcow2) => match qcow2 {
                Some(false) => vec![Format::Raw],
                _ => vec![Format::Raw, Format::Qcow2],
            },
        };
        if formats.is_empty() {
            bail!("disk.formats: empty; list at least one of raw, qcow2, vhd, vhdx, vmdk, gce");
        }
        formats.sort();
        formats.dedup();
        Ok(formats)
    }

    /// `disk.size` in bytes.
    pub fn size(&self) -> anyhow::Result<u64> {
        parse_size(&self.disk.size).context("disk.size")
    }

    /// `disk.esp_size` in bytes.
    pub fn esp_size(&self) -> anyhow::Result<u64> {
        parse_size(&self.disk.esp_size).context("disk.esp_size")
    }
}

/// `"3G"`, `"512M"`, `"64K"` or plain bytes (binary units).
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let (digits, shift) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 30),
        Some('T' | 't') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let n: u64 = digits
        .parse()
        .with_context(|| format!("{text:?} is not a size such as \"3G\", \"512M\" or bytes"))?;
    n.checked_mul(1 << shift)
        .with_context(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[rootfs]
suite = "bookworm"
mirror = "http://deb.debian.org/debian"
packages = ["systemd-sysv", "linux-image-amd64", "initramfs-tools", "systemd-boot-efi"]
[disk]
size = "3G"
"#;

    fn from_toml(text: &str) -> anyhow::Result<DiskPlan> {
        let plan: DiskPlan = toml::from_str(text)?;
        DiskPlan::new(plan.rootfs, plan.disk)
    }

    #[test]
    fn reads_its_sections() {
        let plan = from_toml(GOOD).unwrap();
        assert_eq!(plan.size().unwrap(), 3 << 30);
        assert_eq!(plan.disk.usr_filesystem, "erofs");
    }

    #[test]
    fn unknown_fields_missing_packages_and_small_disks_are_refused() {
        let e = from_toml(&GOOD.replace("size = \"3G\"", "size = \"3G\"\nsise = 1")).unwrap_err();
        assert!(format!("{e:#}").contains("sise"), "{e:#}");
        let e = from_toml(&GOOD.replace("\"systemd-boot-efi\"", "\"bash\"")).unwrap_err();
        assert!(format!("{e:#}").contains("systemd-boot-efi"), "{e:#}");
        let e = from_toml(&GOOD.replace("\"linux-image-amd64\", ", "")).unwrap_err();
        assert!(format!("{e:#}").contains("linux-image-amd64"), "{e:#}");
        let e = from_toml(&GOOD.replace("3G", "200M")).unwrap_err();
        assert!(format!("{e:#}").contains("disk.size"), "{e:#}");
    }

    #[test]
    fn formats_default_old_key_and_bad_names() {
        use Format::*;
        assert_eq!(from_toml(GOOD).unwrap().formats().unwrap(), [Raw, Qcow2]);
        let old = GOOD.replace("size = \"3G\"", "size = \"3G\"\nqcow2 = false");
        assert_eq!(from_toml(&old).unwrap().formats().unwrap(), [Raw]);
        let all = GOOD.replace(
            "size = \"3G\"",
            "size = \"3G\"\nformats = [\"gce\", \"vmdk\", \"vhdx\", \"vhd\", \"qcow2\", \"raw\", \"vhd\"]",
        );
        let plan = from_toml(&all).unwrap();
        assert_eq!(plan.formats().unwrap(), [Raw, Qcow2, Vhd, Vhdx, Vmdk, Gce]);
        let bad = GOOD.replace(
            "size = \"3G\"",
            "size = \"3G\"\nformats = [\"raw\", \"vdi\"]",
        );
        let e = format!("{:#}", from_toml(&bad).unwrap_err());
        assert!(
            e.contains("disk.formats: \"vdi\" is not a disk format"),
            "{e}"
        );
        let both = GOOD.replace(
            "size = \"3G\"",
            "size = \"3G\"\nqcow2 = true\nformats = [\"raw\"]",
        );
        let e = format!("{:#}", from_toml(&both).unwrap_err());
        assert!(e.contains("use only disk.formats"), "{e}");
        let empty = GOOD.replace("size = \"3G\"", "size = \"3G\"\nformats = []");
        let e = format!("{:#}", from_toml(&empty).unwrap_err());
        assert!(e.contains("disk.formats: empty"), "{e}");
    }

    #[test]
    fn the_plan_for_arm64_has_its_kernel_and_console() {
        let text = GOOD.replace(
            "size = \"3G\"",
            "size = \"3G\"\ncmdline = [\"console=ttyS0,115200\"]",
        );
        let plan = from_toml(&text).unwrap().for_arch(Arch::Arm64);
        assert!(plan
            .rootfs
            .packages
            .contains(&"linux-image-arm64".to_owned()));
        assert_eq!(plan.disk.cmdline, ["console=ttyAMA0,115200"]);
        assert_eq!(plan.facts().systemd_boot, "systemd-bootaa64.efi");
        plan.check().unwrap();
    }

    #[test]
    fn verity_is_off_unless_asked_and_kiln_owns_root_and_usrhash() {
        assert!(!from_toml(GOOD).unwrap().disk.verity);
        let on = GOOD.replace("size = \"3G\"", "size = \"3G\"\nverity = true");
        assert!(from_toml(&on).unwrap().disk.verity);
        let own = GOOD.replace("size = \"3G\"", "size = \"3G\"\ncmdline = [\"usrhash=ab\"]");
        let e = format!("{:#}", from_toml(&own).unwrap_err());
        assert!(e.contains("disk.cmdline: \"usrhash=ab\""), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
    }
}
