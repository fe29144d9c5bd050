//! A root built from arbitrary bytes, and the checks that `apply` stayed inside it: shared by the
//! `apply_root` fuzz target (firstboot/fuzz) and the fast test that replays pseudo-random inputs
//! (tests/firstboot_confine.rs).
//!
//! The bytes are read three at a time as operations on a fixed set of paths the plans touch:
//! make a directory, a file (one of a few fixed contents), a symlink (out of the root, absolute,
//! relative, looping, to `/dev/zero`) or a FIFO. Beside the root, `outside/` holds a secret and a
//! user database naming `fuzzowner` (uid 4242), both owned by 4242. After applying fixed plans,
//! nothing outside may have changed, no file in the root may hold the secret, nothing in the
//! root may be owned by 4242, and the plan naming `fuzzowner` must have been refused.
//!
//! Setting the root up never goes through a symlink, so only `apply` could write outside. Run
//! the fuzz target in a throwaway machine: a bug it finds may write through a link to the host.
#![allow(dead_code)] // the fuzz target and the test use different parts

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use kiln_firstboot::apply::{apply, Options, Root};
use kiln_firstboot::plan::Plan;
use kiln_firstboot::userdata::{compile, resource::NoNetwork, Inputs};

/// What `outside/secret` holds; it must never show up in the root.
pub const SECRET: &str = "HOST-SECRET-9c1e";
/// The owner of everything outside, and the uid of `fuzzowner` in `outside/passwd`.
pub const OUTSIDE_ID: u32 = 4242;

/// The paths (relative to the root) operations act on: those the plans write, their parents,
/// and the databases they read.
const PATHS: &[&str] = &[
    "etc",
    "etc/motd",
    "etc/passwd",
    "etc/group",
    "etc/shadow",
    "etc/app",
    "etc/app/conf",
    "etc/link",
    "etc/hostname",
    "etc/owned",
    "var",
    "var/lib",
    "var/lib/app",
    "root",
    "root/.ssh",
    "root/.ssh/authorized_keys",
    "usr",
    "usr/etc",
];

/// Contents a file operation may write (none names `fuzzowner`).
const CONTENTS: &[&str] = &[
    "",
    "root:x:0:0:root:/root:/bin/sh\n",
    "root:x:0:\n",
    "ssh-ed25519 OLD kept\n",
];

/// Plans applied to every root: Ignition (append, owner by name, directory, a link without
/// owner), cloud-config (append to authorized_keys, the host name), and one naming a user only
/// `outside/passwd` knows, which must be refused.
const PLANS: &[&str] = &[
    r#"{"ignition":{"version":"3.3.0"},"storage":{
        "files":[{"path":"/etc/motd","append":[{"source":"data:,fuzz%0A"}]},
                 {"path":"/etc/app/conf","overwrite":true,"contents":{"source":"data:,x"},
                  "user":{"name":"root"},"group":{"name":"root"}}],
        "directories":[{"path":"/var/lib/app","overwrite":true}],
        "links":[{"path":"/etc/link","target":"/etc/passwd","overwrite":true}]}}"#,
    "#cloud-config\nhostname: fuzz\nwrite_files:\n  - path: /root/.ssh/authorized_keys\n    append: true\n    content: \"ssh-ed25519 NEW\\n\"\n",
    "#cloud-config\nwrite_files:\n  - path: /etc/owned\n    owner: fuzzowner:fuzzowner\n    content: x\n",
];

/// A scratch directory holding `root/` (built from `data`) and `outside/`.
pub struct Scene {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub outside: PathBuf,
}

impl Scene {
    /// Builds the scene for `data`.
    pub fn new(data: &[u8]) -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("secret"), format!("{SECRET}\n")).unwrap();
        fs::write(
            outside.join("passwd"),
            format!("fuzzowner:x:{OUTSIDE_ID}:{OUTSIDE_ID}::/:/bin/sh\n"),
        )
        .unwrap();
        fs::write(
            outside.join("group"),
            format!("fuzzowner:x:{OUTSIDE_ID}:\n"),
        )
        .unwrap();
        for entry in ["", "secret", "passwd", "group"] {
            let p = outside.join(entry);
            std::os::unix::fs::lchown(&p, Some(OUTSIDE_ID), Some(OUTSIDE_ID)).unwrap();
        }
        let scene = Scene { dir, root, outside };
        for op in data.chunks_exact(3) {
            scene.operate(op[0], PATHS[op[1] as usize % PATHS.len()], op[2]);
        }
        scene
    }

    /// Where symlinks may point: everywhere that matters.
    fn targets(&self) -> Vec<String> {
        let out = self.outside.display();
        let mut t: Vec<String> = [
            "/",
            "..",
            "../..",
            "../../..",
            "../outside",
            "../../outside/secret",
            "../../../outside/passwd",
            "/dev/zero",
            "/etc",
            "/etc/passwd",
            "/usr/etc",
            "/usr/etc/passwd",
            "passwd",
            "link",
            "motd",
            "/proc/self/root",
        ]
        .map(String::from)
        .to_vec();
        t.extend([
            format!("{out}"),
            format!("{out}/secret"),
            format!("{out}/passwd"),
        ]);
        t
    }

    /// One operation: `kind` picks what to make at `rel`, `arg` its contents or target.
    fn operate(&self, kind: u8, rel: &str, arg: u8) {
        if !self.make_parents(rel) {
            return;
        }
        let path = self.root.join(rel);
        if path.symlink_metadata().is_ok() {
            return;
        }
        let _ = match kind % 4 {
            0 => fs::create_dir(&path),
            1 => fs::write(&path, CONTENTS[arg as usize % CONTENTS.len()]),
            2 => {
                let targets = self.targets();
                std::os::unix::fs::symlink(&targets[arg as usize % targets.len()], &path)
            }
            _ => nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o644))
                .map_err(std::io::Error::from),
        };
    }

    /// Creates the missing parents of `rel` as directories; false if one is something else (a
    /// symlink would lead the setup itself out of the root).
    fn make_parents(&self, rel: &str) -> bool {
        let mut dir = self.root.clone();
        let parts: Vec<&str> = rel.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            dir.push(part);
            match dir.symlink_metadata() {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return false,
                Err(_) => {
                    if fs::create_dir(&dir).is_err() {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Applies every plan (errors are fine; escapes are not) and checks the scene.
    pub fn apply_and_check(&self) {
        let before = tree(&self.outside);
        let root = Root::new(&self.root).unwrap();
        let mut results = Vec::new();
        for text in PLANS {
            results.push(apply(&plan(text), &root, &Options::default()).is_ok());
        }
        assert_eq!(
            tree(&self.outside),
            before,
            "something outside the root changed"
        );
        assert!(!results[2], "a user known only outside the root was found");
        for (rel, (uid, gid, contents)) in tree(&self.root) {
            assert!(
                uid != OUTSIDE_ID && gid != OUTSIDE_ID,
                "{rel}: owned by {uid}:{gid}, an owner read outside the root"
            );
            assert!(
                !String::from_utf8_lossy(&contents).contains(SECRET),
                "{rel}: holds the secret from outside the root"
            );
        }
    }
}

/// The plan of the user-data `text`.
fn plan(text: &str) -> Plan {
    let metadata = serde_json::json!({});
    let inputs = Inputs {
        metadata: &metadata,
        fetcher: &NoNetwork,
        root_has: &|_| false,
        limits: Default::default(),
    };
    compile(text.as_bytes(), &inputs).expect("the fixed plans compile")
}

/// Every entry below `dir` without following links: owner and, for regular files, contents
/// (FIFOs are never opened).
fn tree(dir: &Path) -> BTreeMap<String, (u32, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let m = path.symlink_metadata().unwrap();
            let contents = match m.is_file() {
                true => fs::read(&path).unwrap(),
                false => Vec::new(),
            };
            if m.is_dir() {
                pending.push(path.clone());
            }
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            out.insert(rel, (m.uid(), m.gid(), contents));
        }
    }
    out
}
