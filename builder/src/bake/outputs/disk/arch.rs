//! What a disk image differs in per architecture: Debian's name, the kernel package, systemd-boot's
//! EFI binary and its removable-media name, the Discoverable Partitions types, the serial
//! console, the QEMU that boots it and the names of the outputs.
//!
//! A recipe's `[rootfs]` and `[disk]` are written once for every architecture: a kernel package
//! (`linux-image-amd64` or `linux-image-arm64`) in `rootfs.packages` and a serial console
//! (`console=ttyS0` or `console=ttyAMA0`) in `disk.cmdline` are taken as "the kernel" and "the
//! serial console", and become each architecture's own ([`DiskArch::packages`],
//! [`DiskArch::cmdline`]).

use crate::bake::arch::Arch;

/// The per-architecture facts of a bootable disk image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskArch {
    /// The architecture.
    pub arch: Arch,
    /// The kernel package (`linux-image-arm64`).
    pub kernel_package: &'static str,
    /// systemd-boot's file in `/usr/lib/systemd/boot/efi` (package systemd-boot-efi).
    pub systemd_boot: &'static str,
    /// Where the firmware looks for a loader on removable media (`EFI/BOOT/BOOTAA64.EFI`).
    pub removable_loader: &'static str,
    /// The first serial port's device (`ttyAMA0` on QEMU's `virt` and most arm64 servers).
    pub serial_console: &'static str,
    /// The QEMU system emulator that boots it.
    pub qemu_system: &'static str,
}

const AMD64: DiskArch = DiskArch {
    arch: Arch::Amd64,
    kernel_package: "linux-image-amd64",
    systemd_boot: "systemd-bootx64.efi",
    removable_loader: "EFI/BOOT/BOOTX64.EFI",
    serial_console: "ttyS0",
    qemu_system: "qemu-system-x86_64",
};

const ARM64: DiskArch = DiskArch {
    arch: Arch::Arm64,
    kernel_package: "linux-image-arm64",
    systemd_boot: "systemd-bootaa64.efi",
    removable_loader: "EFI/BOOT/BOOTAA64.EFI",
    serial_console: "ttyAMA0",
    qemu_system: "qemu-system-aarch64",
};

/// Every architecture kiln builds disk images for.
pub const ALL: [DiskArch; 2] = [AMD64, ARM64];

impl DiskArch {
    /// The facts of `arch`.
    pub fn of(arch: Arch) -> DiskArch {
        match arch {
            Arch::Amd64 => AMD64,
            Arch::Arm64 => ARM64,
        }
    }

    /// Whether `package` is a kernel package of some architecture ("the kernel" in a recipe).
    pub fn is_kernel_package(package: &str) -> bool {
        ALL.iter().any(|a| a.kernel_package == package)
    }

    /// The recipe's packages with its kernel package replaced by this architecture's.
    pub fn packages(self, packages: &[String]) -> Vec<String> {
        packages
            .iter()
            .map(|p| match Self::is_kernel_package(p) {
                true => self.kernel_package.to_owned(),
                false => p.clone(),
            })
            .collect()
    }

    /// The recipe's command line with a serial console (`console=ttyS0,115200`) on this
    /// architecture's serial port (`console=ttyAMA0,115200`).
    pub fn cmdline(self, cmdline: &[String]) -> Vec<String> {
        cmdline
            .iter()
            .map(|arg| {
                let serial = ALL.iter().find_map(|a| {
                    let rest = arg
                        .strip_prefix("console=")?
                        .strip_prefix(a.serial_console)?;
                    (rest.is_empty() || rest.starts_with(',')).then_some(rest)
                });
                match serial {
                    Some(rest) => format!("console={}{rest}", self.serial_console),
                    None => arg.clone(),
                }
            })
            .collect()
    }

    /// The systemd-repart `Type=` of the partition `role` (`usr`, `usr-verity`, `root`): the
    /// Discoverable Partitions Specification type of this architecture (`usr-x86-64`,
    /// `usr-arm64-verity`, `root-arm64`).
    pub fn partition_type(self, role: &str) -> String {
        let arch = self.arch.systemd();
        match role.split_once('-') {
            Some((base, suffix)) => format!("{base}-{arch}-{suffix}"),
            None => format!("{role}-{arch}"),
        }
    }

    /// The name of the disk output `name` (`disk.raw`, `disk-gce.tar.gz`, `pxe`) for this
    /// architecture: amd64's keep their names, others carry the architecture
    /// (`disk-arm64.raw`, `disk-arm64-gce.tar.gz`, `pxe-arm64`).
    pub fn output_name(self, name: &str) -> String {
        if self.arch == Arch::Amd64 {
            return name.to_owned();
        }
        match name.strip_prefix("disk") {
            Some(rest) => format!("disk-{}{rest}", self.arch.kube()),
            None => format!("{name}-{}", self.arch.kube()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_kernel_and_serial_console_become_the_architectures_own() {
        let arm = DiskArch::of(Arch::Arm64);
        let packages = strings(&["systemd", "linux-image-amd64", "kmod"]);
        assert_eq!(
            arm.packages(&packages),
            ["systemd", "linux-image-arm64", "kmod"]
        );
        assert_eq!(DiskArch::of(Arch::Amd64).packages(&packages), packages);
        let cmdline = strings(&["console=tty0", "console=ttyS0,115200", "console=ttyS10"]);
        assert_eq!(
            arm.cmdline(&cmdline),
            ["console=tty0", "console=ttyAMA0,115200", "console=ttyS10"]
        );
        let back = DiskArch::of(Arch::Amd64).cmdline(&strings(&["console=ttyAMA0"]));
        assert_eq!(back, ["console=ttyS0"]);
    }

    #[test]
    fn partition_types_are_systemds_names_of_the_architecture() {
        let (amd, arm) = (DiskArch::of(Arch::Amd64), DiskArch::of(Arch::Arm64));
        assert_eq!(amd.partition_type("usr"), "usr-x86-64");
        assert_eq!(amd.partition_type("usr-verity"), "usr-x86-64-verity");
        assert_eq!(arm.partition_type("root"), "root-arm64");
        assert_eq!(arm.partition_type("usr-verity"), "usr-arm64-verity");
    }

    #[test]
    fn outputs_of_other_architectures_carry_its_name() {
        let arm = DiskArch::of(Arch::Arm64);
        assert_eq!(arm.output_name("disk.raw"), "disk-arm64.raw");
        assert_eq!(arm.output_name("disk-gce.tar.gz"), "disk-arm64-gce.tar.gz");
        assert_eq!(arm.output_name("pxe"), "pxe-arm64");
        assert_eq!(
            DiskArch::of(Arch::Amd64).output_name("disk.vhd"),
            "disk.vhd"
        );
    }
}
