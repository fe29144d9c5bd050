//! How commands publish what they planned: write it, replace a whole set at once, or with
//! `--dry-run` only list it.

use std::fs;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::Path;

use kiln_core::fsutil::{publish, FileTree, Replace};
use kiln_core::{Error, Result};

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

/// Replaces the files of `tree` in the existing directory `dest` all at once: a copy of `dest`
/// with the new files (and every other file it holds, carried over) is built beside it and
/// swapped in with one `RENAME_EXCHANGE`, so `dest` holds either the old set or the new one,
/// never a mix (a CA beside a service-account key of another run). `dest` may be relative
/// (`.`, `pki/`), but not the working directory or one above it, which would be swapped away
/// under the caller's shell.
pub fn replace_set(tree: &FileTree, dest: &Path) -> Result<()> {
    let dest = &fs::canonicalize(dest).map_err(|e| Error::io(dest, e))?;
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    if cwd.starts_with(dest) || dest.parent().is_none() {
        return Err(Error::invalid(format!(
            "{}: --force replaces this directory as a whole; run kiln from outside it",
            dest.display()
        )));
    }
    let mode = fs::metadata(dest)
        .map_err(|e| Error::io(dest, e))?
        .permissions()
        .mode();
    publish(dest, Replace::Existing, |staging| {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(staging)
            .map_err(|e| Error::io(staging, e))?;
        carry_over(dest, staging, Path::new(""), tree)?;
        tree.write_into(staging, true)?;
        fs::set_permissions(staging, fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| Error::io(staging, e))
    })
}

/// Copies what `from/rel` holds to `to/rel`, except the paths `tree` plans (they are replaced):
/// contents, modes and symlinks; the copies belong to the user kiln runs as.
fn carry_over(from: &Path, to: &Path, rel: &Path, tree: &FileTree) -> Result<()> {
    let dir = from.join(rel);
    for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let rel = rel.join(entry.file_name());
        if tree.get(&rel).is_some() {
            continue;
        }
        let (src, dst) = (from.join(&rel), to.join(&rel));
        let meta = fs::symlink_metadata(&src).map_err(|e| Error::io(&src, e))?;
        if meta.is_dir() {
            fs::DirBuilder::new()
                .mode(meta.permissions().mode() & 0o7777)
                .create(&dst)
                .map_err(|e| Error::io(&dst, e))?;
            carry_over(from, to, &rel, tree)?;
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&src).map_err(|e| Error::io(&src, e))?;
            std::os::unix::fs::symlink(target, &dst).map_err(|e| Error::io(&dst, e))?;
        } else if meta.is_file() {
            fs::copy(&src, &dst).map_err(|e| Error::io(&dst, e))?;
        } else {
            // A FIFO or device would block or mean something else once copied.
            return Err(Error::invalid(format!(
                "{}: not a regular file, directory or symlink; --force cannot carry it over, move it away first",
                src.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_set_swaps_the_whole_directory_and_refuses_special_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("pki");
        fs::create_dir_all(dest.join("etcd")).unwrap();
        fs::write(dest.join("ca.crt"), "old").unwrap();
        fs::write(dest.join("etcd/ca.crt"), "kept").unwrap();
        let mut tree = FileTree::new();
        tree.add("ca.crt", "new", 0o644);
        replace_set(&tree, &dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join("ca.crt")).unwrap(), "new");
        assert_eq!(
            fs::read_to_string(dest.join("etcd/ca.crt")).unwrap(),
            "kept"
        );

        nix::unistd::mkfifo(&dest.join("pipe"), nix::sys::stat::Mode::S_IRUSR).unwrap();
        tree.add("ca.crt", "newer", 0o644);
        let err = replace_set(&tree, &dest).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        assert_eq!(fs::read_to_string(dest.join("ca.crt")).unwrap(), "new");
        let leftovers: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "the staging copy was removed");
    }
}
