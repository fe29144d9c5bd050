//! The /opt layout, for systems without systemd-sysext: the sysext content tree re-rooted
//! (`usr/bin` → `opt/bin`, `usr/libexec/cni` → `opt/cni/bin`, `usr/lib/systemd/system` →
//! `etc/systemd/system`, `usr/share/kiln` → `opt/kiln`), unit files pointed at the new paths,
//! written as a directory and as a reproducible tar (sorted entries, owner 0:0, mtime epoch).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::sysext::{normalise_tree, EXTENSION_RELEASE_DIR};
use kiln_core::fsutil::{publish, Replace};

/// Where a sysext tree path (relative, e.g. `usr/bin/kubelet`) goes in the /opt layout; `None`
/// for what only a sysext needs (the extension-release file). Unknown paths are an error, so
/// nothing lands on a node where no unit or tool looks.
pub fn opt_path(rel: &Path) -> anyhow::Result<Option<PathBuf>> {
    const MAP: &[(&str, &str)] = &[
        ("usr/bin", "opt/bin"),
        ("usr/libexec/cni", "opt/cni/bin"),
        ("usr/lib/systemd/system", "etc/systemd/system"),
        ("usr/share/kiln", "opt/kiln"),
        ("usr/lib/sysctl.d", "etc/sysctl.d"),
        ("usr/lib/modules-load.d", "etc/modules-load.d"),
        ("usr/lib/tmpfiles.d", "etc/tmpfiles.d"),
        ("usr/lib/sysusers.d", "etc/sysusers.d"),
    ];
    if rel.starts_with(EXTENSION_RELEASE_DIR) {
        return Ok(None);
    }
    // `usr`, `usr/lib`, …: directories above the mapped ones are recreated as parents.
    if MAP
        .iter()
        .any(|(from, _)| Path::new(from).starts_with(rel) && Path::new(from) != rel)
    {
        return Ok(None);
    }
    for (from, to) in MAP {
        if let Ok(rest) = rel.strip_prefix(from) {
            return Ok(Some(Path::new(to).join(rest)));
        }
    }
    anyhow::bail!(
        "{}: no place for it in the /opt layout (known: usr/bin, usr/libexec/cni, \
         usr/lib/systemd/system, usr/share/kiln, usr/lib/{{sysctl,modules-load,tmpfiles,sysusers}}.d)",
        rel.display()
    )
}

/// Unit settings whose values name programs or paths to rewrite.
const PATH_KEYS: &[&str] = &[
    "ExecStart",
    "ExecStartPre",
    "ExecStartPost",
    "ExecStop",
    "ExecStopPost",
    "ExecReload",
    "ExecCondition",
    "ConditionPathExists",
    "ConditionFileIsExecutable",
    "AssertPathExists",
    "AssertFileIsExecutable",
];

/// Rewrites the unit text's paths that kiln ships (`moved`: `/usr/bin/kubelet` →
/// `/opt/bin/kubelet`, …) in the settings of [`PATH_KEYS`] only. A word is rewritten when it is
/// exactly a moved path, after systemd's exec prefixes (`-@:+!|`), or after `=` (`--flag=PATH`);
/// host tools such as `/usr/bin/mkdir` stay, and nothing else in the unit changes.
pub fn rewrite_unit(text: &str, moved: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let Some((key, value)) = line.split_once('=') else {
            out.push_str(line);
            continue;
        };
        if !PATH_KEYS.contains(&key.trim()) {
            out.push_str(line);
            continue;
        }
        out.push_str(key);
        out.push('=');
        let mut rest = value;
        while !rest.is_empty() {
            let start = rest
                .find(|c: char| !c.is_whitespace())
                .unwrap_or(rest.len());
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push_str(&rewrite_word(&rest[..end], moved));
            rest = &rest[end..];
        }
    }
    out
}

fn rewrite_word(word: &str, moved: &BTreeMap<String, String>) -> String {
    let body = word.trim_start_matches(['-', '@', ':', '+', '!', '|']);
    let prefix = &word[..word.len() - body.len()];
    if let Some(new) = moved.get(body) {
        return format!("{prefix}{new}");
    }
    if let Some((flag, path)) = body.split_once('=') {
        if let Some(new) = moved.get(path) {
            return format!("{prefix}{flag}={new}");
        }
    }
    word.to_owned()
}

/// Every entry under `dir`, relative, sorted by path (directories before their contents).
pub(crate) fn walk_sorted(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        let abs = root.join(rel);
        let mut names: Vec<_> = std::fs::read_dir(&abs)
            .with_context(|| format!("reading {}", abs.display()))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading {}", abs.display()))?;
        names.sort();
        for name in names {
            let child = rel.join(name);
            out.push(child.clone());
            if std::fs::symlink_metadata(root.join(&child))?.is_dir() {
                walk(root, &child, out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, Path::new(""), &mut out)?;
    Ok(out)
}

/// Builds the /opt layout of the sysext content `tree` as the directory `out` (made under a
/// temporary name beside it, then renamed; a previous `out` is swapped out atomically). Every mtime = `epoch`.
pub fn write_tree(tree: &Path, out: &Path, epoch: u64) -> anyhow::Result<()> {
    publish(out, Replace::Existing, |tmp| fill(tree, tmp, epoch))
        .with_context(|| format!("writing the /opt tree {}", out.display()))
}

fn fill(tree: &Path, dest: &Path, epoch: u64) -> anyhow::Result<()> {
    let entries = walk_sorted(tree)?;
    let mut moved = BTreeMap::new();
    let mut plan = Vec::new();
    for rel in &entries {
        if let Some(to) = opt_path(rel)? {
            moved.insert(format!("/{}", rel.display()), format!("/{}", to.display()));
            plan.push((rel, to));
        }
    }
    std::fs::create_dir(dest).with_context(|| format!("creating {}", dest.display()))?;
    for (rel, to) in plan {
        let (src, dst) = (tree.join(rel), dest.join(&to));
        let meta = std::fs::symlink_metadata(&src)?;
        std::fs::create_dir_all(kiln_core::fsutil::parent_dir(&dst))?;
        if meta.is_dir() {
            std::fs::create_dir_all(&dst)?;
            std::fs::set_permissions(&dst, meta.permissions())?;
        } else if meta.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if to.starts_with("etc/systemd/system") {
            let text = std::fs::read_to_string(&src)
                .with_context(|| format!("reading unit {}", src.display()))?;
            write_synced(
                &dst,
                rewrite_unit(&text, &moved).as_bytes(),
                meta.permissions(),
            )?;
        } else {
            std::fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
            File::open(&dst).and_then(|f| f.sync_all())?;
        }
    }
    for dir in ["", "etc", "opt"] {
        let d = dest.join(dir);
        if d.is_dir() {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    normalise_tree(dest, epoch)
}

fn write_synced(path: &Path, data: &[u8], perms: std::fs::Permissions) -> anyhow::Result<()> {
    let mut f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)?;
    f.set_permissions(perms)?;
    f.sync_all()?;
    Ok(())
}

/// Writes the tar of the directory `dir` (e.g. the /opt tree) to `out`: entries sorted by path,
/// owner 0:0 (`root`), mtime `epoch`, permission bits as in `dir`, GNU long names. Written under
/// a temporary name beside `out`, then fsynced and renamed.
pub fn write_tar(dir: &Path, out: &Path, epoch: u64) -> anyhow::Result<()> {
    publish(out, Replace::Existing, |tmp| tar_into(dir, tmp, epoch))
        .with_context(|| format!("writing {}", out.display()))
}

fn tar_into(dir: &Path, out: &Path, epoch: u64) -> anyhow::Result<()> {
    let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    for rel in walk_sorted(dir)? {
        let src = dir.join(&rel);
        let meta = std::fs::symlink_metadata(&src)?;
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_username("root")?;
        h.set_groupname("root")?;
        h.set_mtime(epoch);
        h.set_mode(meta.permissions().mode() & 0o7777);
        if meta.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            // GNU tar's convention: directory names end in '/'.
            let mut name = rel.into_os_string();
            name.push("/");
            tar.append_data(&mut h, name, std::io::empty())?;
        } else if meta.is_symlink() {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            tar.append_link(&mut h, &rel, std::fs::read_link(&src)?)?;
        } else if meta.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            let f = File::open(&src).with_context(|| format!("{}", src.display()))?;
            tar.append_data(&mut h, &rel, f)
                .with_context(|| format!("adding {}", src.display()))?;
        } else {
            anyhow::bail!("{}: not a file, directory or symlink", src.display());
        }
    }
    let file = tar.into_inner()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests;
