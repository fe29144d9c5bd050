//! Unbounded work (issue #12, class 4): a few hundred kilobytes of user-data that would need
//! gigabytes of memory or run for ever. `kiln-firstboot apply` runs with its address space capped
//! at 1 GiB; each case must fail quickly with one error naming the budget and how to raise it,
//! and write nothing.

#[path = "firstboot/mod.rs"]
mod firstboot;

use std::fs;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::prelude::{Engine, BASE64_STANDARD};
use firstboot::*;

/// The address-space cap of every run (KiB, for `ulimit -v`).
const ADDRESS_SPACE_KIB: u64 = 1 << 20;

/// How long a refusal may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// 250 MiB of zeros as 250 gzip members of 1 MiB each (about 250 KB; gzip readers read
/// concatenated members as one stream), as base64.
fn bomb_base64() -> &'static str {
    static BOMB: OnceLock<String> = OnceLock::new();
    BOMB.get_or_init(|| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![0u8; 1 << 20]).unwrap();
        let member = e.finish().unwrap();
        BASE64_STANDARD.encode(member.repeat(250))
    })
}

/// Output of a capped run.
struct Capped {
    ok: bool,
    stderr: String,
    elapsed: Duration,
}

/// Runs `kiln-firstboot ARGS` under the address-space cap, killed after [`DEADLINE`].
fn capped(args: &[&str]) -> Capped {
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_kiln-firstboot"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running kiln-firstboot under sh");
    let mut stderr_pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Capped {
        ok: status.is_some_and(|s| s.success()),
        stderr: reader.join().unwrap(),
        elapsed: started.elapsed(),
    }
}

/// Applies `user_data` to a fresh root with `extra` arguments; returns the run and whether the
/// root is unchanged.
fn apply(name: &str, user_data: impl AsRef<[u8]>, extra: &[&str]) -> (Capped, bool) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    seed_root(&root);
    let ud = tmp.path().join("ud");
    fs::write(&ud, user_data).unwrap();
    let before = snapshot(&root, &[]);
    let mut args = vec![
        "apply",
        "--root",
        root.to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let run = capped(&args);
    eprintln!("{name}: {:?}", run.elapsed);
    let unchanged = before == snapshot(&root, &[]);
    (run, unchanged)
}

/// The run is refused within [`DEADLINE`] by one error naming `budget`, and wrote nothing.
fn refused(name: &str, user_data: &str, budget: &str) {
    refused_bytes(name, user_data.as_bytes(), budget);
}

fn refused_bytes(name: &str, user_data: &[u8], budget: &str) {
    let (run, unchanged) = apply(name, user_data, &[]);
    assert!(
        run.elapsed < DEADLINE,
        "{name}: still running after {DEADLINE:?}"
    );
    assert!(!run.ok, "{name}: accepted");
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .collect();
    assert_eq!(errors.len(), 1, "{name}: {}", run.stderr);
    let needle = format!("{budget} budget");
    let raise = format!("--userdata-limit {budget}=");
    assert!(
        errors[0].contains(&needle) && errors[0].contains(&raise),
        "{name}: {:?} lacks {needle:?} and {raise:?}",
        errors[0]
    );
    assert!(unchanged, "{name}: the root changed");
}

#[test]
fn yaml_aliases_of_one_gzipped_write_files_entry() {
    let aliases = "  - *bomb\n".repeat(999);
    let ud = format!(
        "#cloud-config\nwrite_files:\n  - &bomb {{path: /etc/bomb, encoding: gz+b64, content: {}}}\n{aliases}",
        bomb_base64()
    );
    refused("aliased write_files", &ud, "yaml-alias-bytes");
}

#[test]
fn gzipped_write_files_entries_add_up() {
    let entries: String = (0..12)
        .map(|i| {
            format!(
                "  - {{path: /etc/bomb{i}, encoding: gz+b64, content: {}}}\n",
                bomb_base64()
            )
        })
        .collect();
    refused(
        "write_files bombs",
        &format!("#cloud-config\nwrite_files:\n{entries}"),
        "decoded-bytes",
    );
}

#[test]
fn a_dozen_data_url_gzip_bombs_in_one_ignition_config() {
    let files: Vec<String> = (0..12)
        .map(|i| {
            format!(
                r#"{{"path":"/etc/bomb{i}","contents":{{"source":"data:;base64,{}","compression":"gzip"}}}}"#,
                bomb_base64()
            )
        })
        .collect();
    let ud = format!(
        r#"{{"ignition":{{"version":"3.3.0"}},"storage":{{"files":[{}]}}}}"#,
        files.join(",")
    );
    refused("ignition bombs", &ud, "decoded-bytes");
}

#[test]
fn a_gzipped_mime_message_of_millions_of_empty_parts() {
    let mime = format!(
        "Content-Type: multipart/mixed; boundary=\"B\"\nMIME-Version: 1.0\n\n{}--B--\n",
        "--B\n\n".repeat(5_000_000)
    );
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(mime.as_bytes()).unwrap();
    refused_bytes("MIME parts", &e.finish().unwrap(), "mime-parts");
}

#[test]
fn a_big_yaml_string_aliased_thousands_of_times() {
    let big = "x".repeat(1 << 20);
    let aliases = "  - *big\n".repeat(5000);
    let ud = format!("#cloud-config\nbootcmd:\n  - &big {big}\nruncmd:\n{aliases}");
    refused("aliased string", &ud, "yaml-alias-bytes");
}

#[test]
fn runaway_jinja_templates() {
    let loops = "## template: jinja\n#cloud-config\n{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}\n";
    refused("nested loops", loops, "jinja-fuel");
    let doubling = "## template: jinja\n#cloud-config\n{% set s = namespace(v='x') %}{% for i in range(48) %}{% set s.v = s.v ~ s.v %}{% endfor %}# {{ s.v }}\n";
    refused("string doubling", doubling, "jinja-fuel");
}

#[test]
fn the_option_raises_and_lowers_a_budget() {
    let ud = format!(
        "#cloud-config\nwrite_files:\n  - {{path: /etc/big, encoding: b64, content: {}}}\n",
        BASE64_STANDARD.encode(vec![b'x'; 4096])
    );
    let (run, unchanged) = apply("lowered", &ud, &["--userdata-limit", "decoded-bytes=1KiB"]);
    assert!(!run.ok && unchanged, "lowered: {}", run.stderr);
    assert!(
        run.stderr.contains(
            "write_files[0].content: user-data exceeds the decoded-bytes budget of 1024 bytes (1 KiB)"
        ),
        "{}",
        run.stderr
    );
    let (run, _) = apply("default", &ud, &[]);
    assert!(run.ok, "default: {}", run.stderr);
    let (run, _) = apply("bad option", &ud, &["--userdata-limit", "bytes=1"]);
    assert!(
        !run.ok && run.stderr.contains("unknown budget \"bytes\""),
        "{}",
        run.stderr
    );
}

#[test]
fn memory_cap_leaves_room_for_ordinary_user_data() {
    // The cap itself must not be what refuses the cases above.
    let ud = "#cloud-config\nwrite_files:\n  - {path: /etc/motd, content: hello}\n";
    let (run, unchanged) = apply("ordinary", ud, &[]);
    assert!(run.ok && !unchanged, "{}", run.stderr);
}
