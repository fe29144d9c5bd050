//! Running the external tools the disk build needs: checked up front, run with their stderr
//! kept for the error message (and streamed as progress for the long ones).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};

/// Host programs the build runs, with the Debian package that provides each.
pub const REQUIRED: &[(&str, &str)] = &[
    ("mmdebstrap", "mmdebstrap"),
    ("mkfs.erofs", "erofs-utils"),
    ("mksquashfs", "squashfs-tools"),
    ("mke2fs", "e2fsprogs"),
    ("mkfs.vfat", "dosfstools"),
    ("mcopy", "mtools"),
    ("mmd", "mtools"),
    ("sfdisk", "fdisk"),
    ("qemu-img", "qemu-utils"),
    ("systemctl", "systemd"),
];

/// Fails naming every missing program and its package.
pub fn check_host() -> anyhow::Result<()> {
    let missing: Vec<String> = REQUIRED
        .iter()
        .filter(|(prog, _)| which(prog).is_none())
        .map(|(prog, pkg)| format!("{prog} (package {pkg})"))
        .collect();
    if !missing.is_empty() {
        bail!(
            "missing build tools: {}; install them (e.g. with .ci/setup)",
            missing.join(", ")
        );
    }
    Ok(())
}

/// The full path of `prog` on PATH (plus the sbin directories).
pub fn which(prog: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|dir| std::path::Path::new(dir).join(prog))
        .find(|p| p.is_file());
    found
}

/// Runs `cmd` quietly; an error carries the exit status and the last lines of stderr.
pub fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("{what}: starting {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 15)
        );
    }
    Ok(())
}

/// Runs `cmd`, streaming its stderr lines as progress (prefixed with `what`); an error carries
/// the exit status and the stderr lines `pick` selects (else the last ones).
pub fn run_streaming(
    cmd: &mut Command,
    what: &str,
    pick: impl Fn(&str) -> bool,
) -> anyhow::Result<()> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{what}: starting {:?}", cmd.get_program()))?;
    let mut lines = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("  {what}: {line}");
            lines.push(line);
        }
    }
    let status = child.wait()?;
    if !status.success() {
        let picked: Vec<&str> = lines
            .iter()
            .map(String::as_str)
            .filter(|l| pick(l))
            .collect();
        let detail = if picked.is_empty() {
            tail(&lines.join("\n"), 15)
        } else {
            picked.join("; ")
        };
        bail!("{what} failed ({status}): {detail}");
    }
    Ok(())
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
