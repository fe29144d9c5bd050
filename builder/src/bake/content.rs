//! Where things live in the content tree (the `usr/...` tree the sysext, /opt tree and disk
//! image share), for the modules that make it and those that read it back.

/// Where the image store lives in the tree (firstboot imports from `/usr/share/kiln/images`).
pub const IMAGE_DIR: &str = "usr/share/kiln/images";
/// Where the manifest of baked inputs lives in the tree.
pub const MANIFEST: &str = "usr/share/kiln/manifest.json";
