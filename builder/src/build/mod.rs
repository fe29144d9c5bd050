//! `kiln build`: turning a recipe into node images.
//!
//! - [`disk`]: bootable immutable disk images (raw, qcow2) and PXE artifacts from a content tree.

pub mod disk;
