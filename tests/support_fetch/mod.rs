//! Helpers for the `kiln-firstboot fetch` integration tests: run the binary, fake a machine's
//! identity under a scratch sys-root, build real ISO 9660 and vfat images and attach them to loop
//! devices, fake metadata servers and network namespaces.
#![allow(dead_code)] // each test binary uses a different subset

pub mod providers;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The result of a run: exit status and captured output as text.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The `error:` lines of stderr; a failed run must have exactly one.
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect()
    }

    /// Panics unless the run failed with one `error:` line containing every one of `words`.
    pub fn assert_error(&self, words: &[&str]) {
        assert!(!self.ok, "expected failure, got success:\n{}", self.stderr);
        let lines = self.error_lines();
        assert_eq!(lines.len(), 1, "want one error line:\n{}", self.stderr);
        for w in words {
            assert!(lines[0].contains(w), "error line lacks {w:?}: {}", lines[0]);
        }
    }

    /// The printed metadata JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

/// Runs `kiln-firstboot ARGS` with `RUST_LOG=info`, optionally inside network namespace `netns`.
pub fn firstboot(netns: Option<&str>, args: &[&str]) -> Run {
    let bin = env!("CARGO_BIN_EXE_kiln-firstboot");
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, bin]);
            c
        }
        None => Command::new(bin),
    };
    let out = cmd
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("running kiln-firstboot");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A scratch sys-root: the machine identity kiln-firstboot sees through `--sys-root`.
pub struct SysRoot {
    pub dir: tempfile::TempDir,
}

impl SysRoot {
    pub fn new() -> Self {
        SysRoot {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    /// Writes `contents` at the absolute node path `abs` below the root.
    pub fn file(&self, abs: &str, contents: impl AsRef<[u8]>) -> &Self {
        let p = self.dir.path().join(abs.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
        self
    }

    /// DMI identity: sys_vendor, product_name, chassis_asset_tag.
    pub fn dmi(&self, vendor: &str, product: &str, asset_tag: &str) -> &Self {
        self.file("/sys/class/dmi/id/sys_vendor", format!("{vendor}\n"))
            .file("/sys/class/dmi/id/product_name", format!("{product}\n"))
            .file(
                "/sys/class/dmi/id/chassis_asset_tag",
                format!("{asset_tag}\n"),
            )
            .file(
                "/sys/class/dmi/id/product_uuid",
                "EC2AB1C2-0000-4000-8000-000000000001\n",
            )
    }

    /// Makes `device` (e.g. `/dev/loop3`) visible as a block device, as without udev.
    pub fn block_device(&self, device: &Path) -> &Self {
        let name = device.file_name().unwrap();
        let sys = self.dir.path().join("sys/class/block").join(name);
        std::fs::create_dir_all(sys).unwrap();
        let dev = self.dir.path().join("dev");
        std::fs::create_dir_all(&dev).unwrap();
        std::os::unix::fs::symlink(device, dev.join(name)).unwrap();
        self
    }

    /// Makes `device` visible as `/dev/disk/by-label/LABEL`, as udev does.
    pub fn by_label(&self, label: &str, device: &Path) -> &Self {
        let dir = self.dir.path().join("dev/disk/by-label");
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(device, dir.join(label)).unwrap();
        self
    }
}

/// A file tree to put on an image: (relative path, contents).
pub type Files<'a> = &'a [(&'a str, &'a [u8])];

fn stage(files: Files) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, contents) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }
    dir
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ISO 9660 image labelled `label` with `files` (`joliet`: Joliet names too, as
/// cloud-localds makes them; always Rock Ridge).
pub fn make_iso(out: &Path, label: &str, files: Files, joliet: bool) {
    let src = stage(files);
    let mut args = vec![
        "-as",
        "mkisofs",
        "-quiet",
        "-o",
        out.to_str().unwrap(),
        "-V",
        label,
        "-r",
    ];
    if joliet {
        args.push("-J");
    }
    args.push(src.path().to_str().unwrap());
    run("xorriso", &args);
}

/// A vfat image labelled `label` with `files`, written with mtools (no mount).
pub fn make_vfat(out: &Path, label: &str, files: Files) {
    let img = out.to_str().unwrap();
    let f = std::fs::File::create(out).unwrap();
    f.set_len(4 << 20).unwrap();
    run("mkfs.vfat", &["-n", label, img]);
    let src = stage(files);
    for (rel, _) in files {
        let mut dir = String::new();
        for part in Path::new(rel).parent().unwrap().iter() {
            dir = format!("{dir}/{}", part.to_str().unwrap());
            let _ = Command::new("mmd")
                .args(["-i", img, &format!("::{dir}")])
                .output();
        }
        run(
            "mcopy",
            &[
                "-i",
                img,
                src.path().join(rel).to_str().unwrap(),
                &format!("::/{rel}"),
            ],
        );
    }
}

/// A read-only loop device over an image, detached on drop (also when a test fails).
pub struct Loop {
    pub device: PathBuf,
}

impl Loop {
    pub fn attach(image: &Path) -> Self {
        let out = Command::new("losetup")
            .args(["-f", "--show", "-r", image.to_str().unwrap()])
            .output()
            .expect("losetup");
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let device = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Loop { device }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.device).status();
    }
}

/// The mount table, to check that nothing was left mounted.
pub fn mounts() -> String {
    std::fs::read_to_string("/proc/self/mounts").unwrap()
}
