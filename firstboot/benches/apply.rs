//! Benchmark: applying a 200-file Ignition config with `kiln-firstboot apply` and with the real
//! Ignition (Debian's `ignition`, stages fetch + files) into fresh scratch roots, measured in the
//! same run. Prints a table with the ratio; run with `cargo bench -p kiln-firstboot`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const KILN: &str = env!("CARGO_BIN_EXE_kiln-firstboot");
const IGNITION: &str = "/usr/lib/dracut/modules.d/30ignition/ignition";
const FILES: usize = 200;
const ROUNDS: usize = 5;

fn config() -> String {
    let files: Vec<String> = (0..FILES)
        .map(|i| {
            format!(
                r#"{{"path":"/etc/kiln-bench/d{}/file-{i}.conf","contents":{{"source":"data:;base64,{}"}},"mode":420}}"#,
                i % 10,
                "a2lsbiBiZW5jaG1hcmsgY29udGVudHMK".repeat(8)
            )
        })
        .collect();
    format!(
        r#"{{"ignition":{{"version":"3.3.0"}},"storage":{{"files":[{}]}}}}"#,
        files.join(",")
    )
}

fn seed(root: &Path) {
    std::fs::create_dir_all(root.join("etc/selinux")).unwrap();
    std::fs::write(root.join("etc/selinux/config"), "SELINUX=disabled\n").unwrap();
}

fn time_kiln(dir: &Path, cfg: &Path, round: usize) -> Duration {
    let root = dir.join(format!("kiln-{round}"));
    seed(&root);
    let start = Instant::now();
    let out = Command::new(KILN)
        .args(["apply", "--root"])
        .arg(&root)
        .arg("--user-data")
        .arg(cfg)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn time_ignition(dir: &Path, cfg: &Path, round: usize) -> Duration {
    let root = dir.join(format!("ignition-{round}"));
    seed(&root);
    let start = Instant::now();
    for stage in ["fetch", "files"] {
        Command::new(IGNITION)
            .args(["-platform", "file", "-stage", stage, "-log-to-stdout"])
            .arg("-root")
            .arg(&root)
            .arg("-config-cache")
            .arg(dir.join(format!("cache-{round}.json")))
            .arg("-state-file")
            .arg(dir.join(format!("state-{round}")))
            .env("IGNITION_CONFIG_FILE", cfg)
            .output()
            .unwrap();
    }
    let elapsed = start.elapsed();
    let written = std::fs::read_dir(root.join("etc/kiln-bench/d0"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(written, FILES / 10, "real Ignition did not write the files");
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    assert!(Path::new(IGNITION).exists(), "apt-get install ignition");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bench.ign");
    std::fs::write(&cfg, config()).unwrap();
    let kiln = median(
        (0..ROUNDS)
            .map(|r| time_kiln(dir.path(), &cfg, r))
            .collect(),
    );
    let ignition = median(
        (0..ROUNDS)
            .map(|r| time_ignition(dir.path(), &cfg, r))
            .collect(),
    );
    println!("apply a {FILES}-file Ignition config (median of {ROUNDS}, fresh root each)");
    println!("{:<28} {:>10}", "tool", "ms");
    println!(
        "{:<28} {:>10.1}",
        "kiln-firstboot apply",
        kiln.as_secs_f64() * 1e3
    );
    println!(
        "{:<28} {:>10.1}",
        "ignition fetch+files (real)",
        ignition.as_secs_f64() * 1e3
    );
    println!(
        "ratio ignition/kiln: {:.2}x",
        ignition.as_secs_f64() / kiln.as_secs_f64()
    );
}
