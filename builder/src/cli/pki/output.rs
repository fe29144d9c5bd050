//! How commands publish what they planned: write it, or with `--dry-run` only list it.

use std::path::Path;

use kiln_core::fsutil::FileTree;

/// Prints the planned files (path, mode, size; never contents) under `dest` to stdout.
pub fn print_plan(dest: &Path, tree: &FileTree) {
    for (rel, file) in tree.iter() {
        println!(
            "{:o} {:>6} {}",
            file.mode,
            file.contents.len(),
            dest.join(rel).display()
        );
    }
}
