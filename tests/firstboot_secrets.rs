//! Secrets and forged lines in `kiln-firstboot`'s errors and logs: decoders never quote the
//! value of a field, shadow tools' errors never show password hashes, and the error line
//! escapes control characters.

#[path = "firstboot/mod.rs"]
mod firstboot;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use firstboot::*;

const TOKEN: &str = "abcdef.0123456789abcdef";

fn write(path: &Path, text: &str) -> String {
    fs::write(path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn render_never_prints_a_secret_put_in_the_wrong_field() {
    let tmp = tempfile::tempdir().unwrap();
    let key = "c0ffee".repeat(10) + "abcd";
    for (name, line) in [
        (
            "token",
            format!("unsafe_skip_ca_verification = \"{TOKEN}\""),
        ),
        ("key", format!("pod_subnets = \"{key}\"")),
    ] {
        let node = write(
            &tmp.path().join(format!("{name}.toml")),
            &format!("role = \"join\"\ncontrol_plane_endpoint = \"lb:6443\"\n{line}\n"),
        );
        let out = firstboot(&[
            "render",
            "--node-config",
            &node,
            "--kubeadm-version",
            "v1.30.4",
        ]);
        assert!(!out.ok, "accepted: {}", out.stdout);
        assert!(
            !out.stderr.contains(TOKEN) && !out.stderr.contains(&key),
            "the value was printed: {}",
            out.stderr
        );
        let field = line.split(' ').next().unwrap();
        assert!(
            out.stderr.contains(field) && out.stderr.contains("line 3"),
            "the field and line are named: {}",
            out.stderr
        );
    }
}

#[test]
fn shadow_tool_errors_never_show_password_hashes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    seed_root(&root);
    // A useradd that fails echoing its arguments, as a tool rejecting a hash might.
    let bin = tmp.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let useradd = bin.join("useradd");
    fs::write(
        &useradd,
        "#!/bin/sh\necho \"useradd: invalid arguments: $*\" >&2\nexit 3\n",
    )
    .unwrap();
    fs::set_permissions(&useradd, fs::Permissions::from_mode(0o755)).unwrap();
    let hash = "$6$kilnsalt$9f8e7d6c5b4a39281706f5e4d3c2b1a0";
    let ud = write(
        &tmp.path().join("ud"),
        &format!("#cloud-config\nusers:\n  - name: ops\n    passwd: {hash}\n"),
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = firstboot_with_env(
        &[
            "apply",
            "--root",
            root.to_str().unwrap(),
            "--user-data",
            &ud,
        ],
        &[("PATH", &path)],
    );
    assert!(!out.ok, "the failing useradd went unnoticed");
    assert!(
        out.stderr.contains("useradd: invalid arguments"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains(hash) && !out.stderr.contains("9f8e7d6c5b4a"),
        "the hash was printed: {}",
        out.stderr
    );
}

#[test]
fn the_error_line_escapes_control_characters() {
    let tmp = tempfile::tempdir().unwrap();
    let forged = tmp.path().join("x\n ERROR forged line");
    let out = firstboot(&["render", "--node-config", forged.to_str().unwrap()]);
    assert!(!out.ok);
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {}", out.stderr));
    assert!(line.contains(r"x\n ERROR forged line"), "{}", out.stderr);
    assert!(
        !out.stderr.lines().any(|l| l.starts_with(" ERROR forged")),
        "{}",
        out.stderr
    );
}
