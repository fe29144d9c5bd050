//! `kiln build --signing-key/--certificate --gpg-key` against the stand-in release on 127.0.0.1
//! (tests/support/release.rs; no images, so the build takes seconds): the sysext is a DDI that
//! the real systemd-dissect reads as root + root-verity + root-verity-sig with a `signed` root,
//! whose hash tree the real `veritysetup verify` accepts (and rejects after a one-byte change),
//! whose signature is a PKCS#7 by the test key over the root hash (openssl), which the real
//! systemd-sysext accepts with the test certificate in verity.d and refuses with another one,
//! and whose SHA256SUMS.gpg `gpgv` verifies with the test key. Bad signing input stops the build
//! before any download and leaves nothing at --out.
//!
//! What this host cannot show: its kernel has no device-mapper, so no systemd here can activate
//! the verity device; systemd-sysext's signature check runs before that and is asserted from its
//! debug log (accepted: "Userspace PKCS#7 validation succeeded", then activation fails for want
//! of device-mapper; refused: "Userspace PKCS#7 validation failed").

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine as _;
use support::release::{self, Server};
use support::{cargo_bin, cert_sha256, pkcs7_verifies, sh, Run};

/// Test keys: an X.509 signing pair, a second pair, an OpenPGP key in its own GnuPG home.
struct Keys {
    dir: tempfile::TempDir,
    gpg_fpr: String,
}

impl Keys {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn gpg_home(&self) -> PathBuf {
        self.path("gnupg")
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        // gpg starts an agent per home directory; stop the test's own.
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.gpg_home())
            .args(["--kill", "all"])
            .status();
    }
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    sh(&format!(
        "cd {d} && for n in signer other; do openssl req -x509 -newkey rsa:2048 -nodes \
         -keyout $n.key -out $n.crt -days 2 -subj /CN=kiln-$n \
         -addext keyUsage=digitalSignature 2>/dev/null; done && \
         openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
         -subj /CN=kiln-ca -addext keyUsage=keyCertSign 2>/dev/null && \
         mkdir -m 700 gnupg && gpg --batch --homedir gnupg --passphrase '' \
         --quick-gen-key 'kiln test <kiln@example.invalid>' ed25519 sign 1d 2>/dev/null"
    ));
    let listing = sh(&format!(
        "gpg --batch --homedir {d}/gnupg --with-colons --list-secret-keys"
    ));
    let gpg_fpr = listing
        .lines()
        .find_map(|l| l.strip_prefix("fpr:::::::::"))
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    Keys { dir, gpg_fpr }
}

/// A stand-in release server of the test's own (its request count is the test's).
fn server() -> Server {
    static FILES: OnceLock<std::collections::BTreeMap<String, Vec<u8>>> = OnceLock::new();
    let files = FILES.get_or_init(|| release::files(&cargo_bin("kiln-standins", "kubeadm")));
    Server::start(files.clone())
}

fn build(server: &Server, dir: &Path, out: &Path, extra: &[&str]) -> Run {
    kiln_build(server, dir, out, extra, None)
}

/// `kiln build` with `tool` replaced by /dev/null in a private mount namespace.
fn build_hiding(server: &Server, dir: &Path, out: &Path, extra: &[String], tool: &str) -> Run {
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    kiln_build(server, dir, out, &extra, Some(tool))
}

fn kiln_build(server: &Server, dir: &Path, out: &Path, extra: &[&str], hide: Option<&str>) -> Run {
    let recipe = dir.join("recipe.toml");
    std::fs::write(
        &recipe,
        release::recipe(
            "[images]\nkubeadm = \"none\"\n\
             [outputs]\nsysupdate_url = \"https://example.invalid/sysext/\"\n",
        ),
    )
    .unwrap();
    let mut args: Vec<String> = vec![
        "build".into(),
        recipe.display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--cache".into(),
        dir.join("cache").display().to_string(),
        "--firstboot".into(),
        cargo_bin("kiln-firstboot", "kiln-firstboot")
            .display()
            .to_string(),
    ];
    args.extend(release::mirror_args(&server.base));
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut cmd = match hide {
        None => Command::new(env!("CARGO_BIN_EXE_kiln")),
        Some(tool) => {
            let mut cmd = Command::new("unshare");
            cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg("mount --bind /dev/null \"$0\" && exec \"$@\"")
                .arg(tool)
                .arg(env!("CARGO_BIN_EXE_kiln"));
            cmd
        }
    };
    cmd.args(&args).output().expect("running kiln").into()
}

fn signing_args(keys: &Keys) -> Vec<String> {
    [
        "--signing-key",
        keys.path("signer.key").to_str().unwrap(),
        "--certificate",
        keys.path("signer.crt").to_str().unwrap(),
        "--gpg-key",
        &keys.gpg_fpr,
        "--gpg-homedir",
        keys.gpg_home().to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The partitions of the GPT image `image` (sfdisk's JSON): (name, start byte, size bytes).
fn partitions(image: &Path) -> Vec<(String, u64, u64)> {
    let json = sh(&format!("sfdisk --json {}", image.display()));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["start"].as_u64().unwrap() * 512,
                p["size"].as_u64().unwrap() * 512,
            )
        })
        .collect()
}

/// Copies each partition of `image` into `DIR/NAME.img`.
fn extract(image: &Path, dir: &Path) {
    let bytes = std::fs::read(image).unwrap();
    for (name, start, size) in partitions(image) {
        let part = &bytes[start as usize..(start + size) as usize];
        std::fs::write(dir.join(format!("{name}.img")), part).unwrap();
    }
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The debug log of systemd-sysext merging `image` into a scratch root, in a mount namespace of
/// its own whose /run is a new tmpfs with `trusted` as /run/verity.d/test.crt (one of the
/// directories systemd reads trusted verity certificates from); nothing reaches the host.
fn sysext_merge_log(image: &Path, trusted: &Path) -> String {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("usr/lib")).unwrap();
    std::fs::create_dir_all(r.join("var/lib/extensions")).unwrap();
    std::fs::write(r.join("usr/lib/os-release"), "ID=debian\nVERSION_ID=12\n").unwrap();
    std::fs::copy(image, r.join("var/lib/extensions/kubernetes.raw")).unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t tmpfs none /run && mkdir /run/verity.d && cp \"$0\" /run/verity.d/test.crt \
             && SYSTEMD_LOG_LEVEL=debug systemd-sysext --root=\"$1\" merge",
        )
        .arg(trusted)
        .arg(r)
        .output()
        .expect("unshare, systemd-sysext");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn signed_sysext_and_sums_verify_with_the_fields_tools() {
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let report = dir.path().join("report.json");
    let mut extra = signing_args(&keys);
    extra.extend(["--report".into(), report.display().to_string()]);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let run = build(&server(), dir.path(), &out, &extra);
    assert!(run.ok, "{}", run.stderr);
    let name = format!("kubernetes-{}-x86-64.raw", release::KUBE);
    let image = out.join(&name);

    // systemd-dissect sees a DDI: root (squashfs, signed verity), root-verity, root-verity-sig.
    let json = run_ok(
        Command::new("systemd-dissect")
            .arg("--json=short")
            .arg(&image),
    );
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mounts: Vec<(String, String, String)> = value["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
            (s("designator"), s("fstype"), s("verity"))
        })
        .collect();
    assert_eq!(
        mounts,
        [
            ("root".into(), "squashfs".into(), "signed".into()),
            ("root-verity".into(), "DM_verity_hash".into(), String::new()),
            (
                "root-verity-sig".into(),
                "verity_hash_signature".into(),
                String::new()
            )
        ],
        "{json}"
    );

    let parts = tempfile::tempdir().unwrap();
    let p = parts.path();
    extract(&image, p);
    // The signature partition: JSON, padded with NULs.
    let sig_part = std::fs::read(p.join("root-x86-64-verity-sig.img")).unwrap();
    let sig_json = sig_part.split(|&b| b == 0).next().unwrap();
    let sig: serde_json::Value = serde_json::from_slice(sig_json).unwrap();
    let root_hash = sig["rootHash"].as_str().unwrap().to_owned();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["verity_root_hashes"][&name], root_hash.as_str());

    // The hash tree verifies the usr partition, and catches one changed byte.
    let verify = |data: &Path| {
        Command::new("veritysetup")
            .arg("verify")
            .arg(data)
            .arg(p.join("root-x86-64-verity.img"))
            .arg(&root_hash)
            .output()
            .expect("veritysetup (cryptsetup-bin, installed by .ci/setup)")
            .status
            .success()
    };
    assert!(verify(&p.join("root-x86-64.img")));
    let mut bytes = std::fs::read(p.join("root-x86-64.img")).unwrap();
    bytes[100] ^= 1;
    std::fs::write(p.join("tampered.img"), bytes).unwrap();
    assert!(!verify(&p.join("tampered.img")));

    // The root partition holds the content tree, with the extension-release file.
    let release = run_ok(
        Command::new("unsquashfs")
            .arg("-cat")
            .arg(p.join("root-x86-64.img"))
            .arg("usr/lib/extension-release.d/extension-release.kubernetes"),
    );
    assert!(release.contains("ARCHITECTURE=x86-64"), "{release}");

    // The signature: PKCS#7 over the root hash by the test key, refused with another cert.
    let der = base64::engine::general_purpose::STANDARD
        .decode(sig["signature"].as_str().unwrap())
        .unwrap();
    std::fs::write(p.join("sig.der"), der).unwrap();
    std::fs::write(p.join("roothash"), &root_hash).unwrap();
    let (sig, content) = (p.join("sig.der"), p.join("roothash"));
    assert!(pkcs7_verifies(&sig, &content, &keys.path("signer.crt")));
    assert!(!pkcs7_verifies(&sig, &content, &keys.path("other.crt")));

    // systemd-sysext checks the signature against verity.d before it activates the image.
    let log = sysext_merge_log(&image, &keys.path("signer.crt"));
    assert!(
        log.contains("Userspace PKCS#7 validation succeeded") || log.contains("Merged extensions"),
        "{log}"
    );
    assert!(!log.contains("PKCS#7 validation failed"), "{log}");
    let log = sysext_merge_log(&image, &keys.path("other.crt"));
    assert!(
        log.contains("Userspace PKCS#7 validation failed")
            && log.contains("worked neither via the kernel nor in userspace"),
        "{log}"
    );
    assert!(!log.contains("Merged extensions"), "{log}");
    let fingerprint = cert_sha256(&keys.path("signer.crt"));
    assert_eq!(manifest["signing_certificate_sha256"], fingerprint.as_str());

    // SHA256SUMS.gpg: gpgv with the exported public key; a changed SHA256SUMS fails.
    let pubring = p.join("pub.gpg");
    run_ok(
        Command::new("gpg")
            .args(["--batch", "--homedir"])
            .arg(keys.gpg_home())
            .arg("--output")
            .arg(&pubring)
            .args(["--export", &keys.gpg_fpr]),
    );
    let gpgv = |sums: &Path| {
        Command::new("gpgv")
            .arg("--keyring")
            .arg(&pubring)
            .arg(out.join("SHA256SUMS.gpg"))
            .arg(sums)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(gpgv(&out.join("SHA256SUMS")));
    let mut sums = std::fs::read(out.join("SHA256SUMS")).unwrap();
    sums[0] ^= 1;
    std::fs::write(p.join("SHA256SUMS"), sums).unwrap();
    assert!(!gpgv(&p.join("SHA256SUMS")));
    assert_eq!(manifest["sha256sums_gpg_key"], keys.gpg_fpr.as_str());
    let conf = std::fs::read_to_string(out.join("kubernetes.conf")).unwrap();
    assert!(conf.contains("\nVerify=yes\n"), "{conf}");
    sh(&format!(
        "cd {} && sha256sum --check --strict SHA256SUMS",
        out.display()
    ));

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    eprintln!("signed build phases: {}", report["phases"]);
    assert_eq!(report["signing_certificate_sha256"], fingerprint.as_str());
    assert_eq!(report["sha256sums_gpg_key"], keys.gpg_fpr.as_str());
    let formats: Vec<&str> = report["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["format"].as_str().unwrap())
        .collect();
    assert!(formats.contains(&"sha256sums-signature"), "{formats:?}");
}

#[test]
fn bad_signing_input_is_refused_before_any_download() {
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let server = server();
    let k = |n: &str| keys.path(n).display().to_string();
    let home = keys.gpg_home().display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--signing-key".into(),
                k("missing.key"),
                "--certificate".into(),
                k("signer.crt"),
            ],
            "missing.key",
        ),
        (
            vec![
                "--signing-key".into(),
                k("other.key"),
                "--certificate".into(),
                k("signer.crt"),
            ],
            "does not match",
        ),
        (
            vec![
                "--signing-key".into(),
                k("ca.key"),
                "--certificate".into(),
                k("ca.crt"),
            ],
            "cannot sign",
        ),
        (
            vec![
                "--signing-key".into(),
                k("signer.crt"),
                "--certificate".into(),
                k("signer.crt"),
            ],
            "private key",
        ),
        (
            vec![
                "--gpg-key".into(),
                "nobody@example.invalid".into(),
                "--gpg-homedir".into(),
                home,
            ],
            "--gpg-key nobody@example.invalid",
        ),
    ];
    let secret = std::fs::read_to_string(keys.path("signer.key")).unwrap();
    let secret_line = secret.lines().nth(1).unwrap().to_owned();
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = build(&server, dir.path(), &out, &args);
        assert!(!run.ok, "{args:?} should fail");
        assert!(run.stderr.contains(needle), "{needle:?} in {}", run.stderr);
        assert_eq!(run.stderr.matches("error:").count(), 1, "{}", run.stderr);
        assert!(!run.stderr.contains(&secret_line), "{}", run.stderr);
        assert!(!out.exists());
    }
    // A host whose systemd-repart cannot run (hidden by /dev/null in a mount namespace).
    let mut args = vec![
        "--signing-key".to_owned(),
        k("signer.key"),
        "--certificate".to_owned(),
        k("signer.crt"),
    ];
    let run = build_hiding(&server, dir.path(), &out, &args, "/usr/bin/systemd-repart");
    assert!(
        !run.ok && run.stderr.contains("systemd-repart"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.matches("error:").count(), 1, "{}", run.stderr);
    assert!(!out.exists());
    // --dry-run says who signs.
    args.push("--dry-run".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = build(&server, dir.path(), &out, &args);
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("signing: sysext verity root hash with CN=kiln-signer"),
        "{}",
        run.stdout
    );
    // Half a pair is a command-line error (exit 2).
    let run = build(
        &server,
        dir.path(),
        &out,
        &["--signing-key", &k("signer.key")],
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(server.request_count(), 0);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".kiln"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
