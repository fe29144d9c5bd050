//! The output formats a build packs its content trees into: the sysext image (`sysext`), the
//! /opt tree and tar (`opt`), the bootable disk image (`disk`) and PXE artifacts (`pxe`), the
//! systemd-sysupdate transfer file (`sysupdate`), `manifest.json` and `SHA256SUMS`
//! (`manifest`). Each knows its format only; `bake::pack` decides which to write.

pub mod disk;
pub mod manifest;
pub mod opt;
pub mod pxe;
pub mod sysext;
pub mod sysupdate;
