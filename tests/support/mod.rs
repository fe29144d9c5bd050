//! Helpers shared by the integration tests: run the `kiln` binary, run openssl, read files.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The result of running a command: exit status and captured output as text.
pub struct Run {
    pub ok: bool,
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            ok: o.status.success(),
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `kiln ARGS` (the binary built for this test run).
pub fn kiln(args: &[&str]) -> Run {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("running kiln")
        .into()
}

/// Runs `kiln ARGS` and panics with its stderr unless it succeeds.
pub fn kiln_ok(args: &[&str]) -> Run {
    let run = kiln(args);
    assert!(run.ok, "kiln {args:?} failed:\n{}", run.stderr);
    run
}

/// Runs `openssl ARGS` and returns stdout; panics with stderr on failure.
pub fn openssl(args: &[&str]) -> String {
    let run: Run = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running openssl (apt-get install openssl)")
        .into();
    assert!(run.ok, "openssl {args:?} failed:\n{}", run.stderr);
    run.stdout
}

/// Runs a shell pipeline and returns stdout; panics with stderr on failure.
pub fn sh(script: &str) -> String {
    let run: Run = Command::new("sh")
        .args(["-c", script])
        .output()
        .expect("running sh")
        .into();
    assert!(run.ok, "sh -c {script:?} failed:\n{}", run.stderr);
    run.stdout
}

/// The SHA-256 fingerprint of a certificate file as lower-case hex without colons (what
/// manifest.json and systemd's verity signature JSON record), from `openssl x509`.
pub fn cert_sha256(cert: &Path) -> String {
    let out = openssl(&[
        "x509",
        "-noout",
        "-fingerprint",
        "-sha256",
        "-in",
        path_str(cert),
    ]);
    out.trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "")
        .to_ascii_lowercase()
}

/// systemd's userspace check of a verity signature (`validate_signature_userspace`:
/// PKCS7_verify with the certificates of /etc/verity.d, NOINTERN|NOVERIFY): whether the DER
/// PKCS#7 `sig_der` signs the file `content` with the certificate `trusted`.
pub fn pkcs7_verifies(sig_der: &Path, content: &Path, trusted: &Path) -> bool {
    Command::new("openssl")
        .args(["smime", "-verify", "-binary", "-inform", "DER"])
        .args(["-nointern", "-noverify", "-in"])
        .arg(sig_der)
        .arg("-content")
        .arg(content)
        .arg("-certfile")
        .arg(trusted)
        .args(["-out", "/dev/null"])
        .output()
        .unwrap()
        .status
        .success()
}

/// `openssl x509 -text` of a certificate file.
pub fn x509_text(cert: &Path) -> String {
    openssl(&["x509", "-noout", "-text", "-in", path_str(cert)])
}

/// The text of the X.509v3 extension `name` (the line after its header), trimmed.
pub fn extension(text: &str, name: &str) -> String {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with(name) {
            return lines.next().unwrap_or_default().trim().to_owned();
        }
    }
    panic!("no extension {name:?} in:\n{text}")
}

/// Unix permission bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Every file below `dir`, relative, sorted.
pub fn list_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

pub mod oci;
pub mod release;

#[allow(unused_imports)] // each test binary uses some of them
pub use kiln_testsupport::sha256_hex;

/// Builds `bin` of workspace package `package` with the `cargo` running the tests (Cargo sets
/// `CARGO_BIN_EXE_*` only for a package's own binaries) and returns its path. Optimised when
/// the caller is (a benchmark measures the binaries users run: a release kiln-firstboot is
/// 19 MB to the debug build's 46, read through /usr's dm-verity at boot).
pub fn cargo_bin(package: &str, bin: &str) -> std::path::PathBuf {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "-p", package, "--bin", bin]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let out = cmd
        .arg("--message-format=json")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("running cargo build");
    assert!(out.status.success(), "building {package}/{bin} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"executable\":"))
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let exe = v["executable"].as_str()?;
            exe.ends_with(&format!("/{bin}")).then(|| exe.into())
        })
        .unwrap_or_else(|| panic!("cargo reported no executable for {package}/{bin}"))
}
