//! Benchmark: `kiln pki etcd` for 3 and 100 members against the procedure operators run by hand
//! today, openssl per certificate as the kubeadm HA-etcd guide's manual equivalent (a key, a CSR
//! and a CA signature for each of the 4 certificates of each member), measured in the same run on
//! the same machine, both using all cores. Prints a table; run with `cargo bench -p kiln`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KILN: &str = env!("CARGO_BIN_EXE_kiln");

fn run(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("starting a benchmark command");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn members(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            (
                format!("etcd-{i}"),
                format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256 + 1),
            )
        })
        .collect()
}

fn time_kiln(dir: &Path, n: usize, key_type: &str) -> Duration {
    let out = dir.join(format!("kiln-{n}-{key_type}"));
    let mut cmd = Command::new(KILN);
    cmd.args(["pki", "etcd", "--ca-dir"])
        .arg(dir.join(format!("pki-{key_type}")))
        .arg("--out")
        .arg(&out);
    cmd.args(["--key-type", key_type]).env("RUST_LOG", "warn");
    for (name, ip) in members(n) {
        cmd.arg("--member").arg(format!("{name}={ip}"));
    }
    let start = Instant::now();
    run(&mut cmd);
    start.elapsed()
}

/// One shell script per member, run `nproc` at a time: the guide's four certificates by openssl.
fn time_openssl(dir: &Path, n: usize, key_type: &str) -> Duration {
    let ca = dir.join(format!("pki-{key_type}/etcd"));
    let newkey = if key_type == "rsa-2048" {
        "rsa:2048"
    } else {
        "ec -pkeyopt ec_paramgen_curve:P-256"
    };
    let root = dir.join(format!("openssl-{n}-{key_type}"));
    let mut scripts = String::new();
    for (name, ip) in members(n) {
        let m = root.join(&name);
        let mut s = format!("set -e; mkdir -p {m}/etcd; cd {m}\n", m = m.display());
        let sans = format!("DNS:{name},DNS:localhost,IP:{ip},IP:127.0.0.1,IP:::1");
        for (file, cn, eku, san) in [
            (
                "etcd/server",
                name.as_str(),
                "serverAuth,clientAuth",
                Some(&sans),
            ),
            (
                "etcd/peer",
                name.as_str(),
                "serverAuth,clientAuth",
                Some(&sans),
            ),
            (
                "etcd/healthcheck-client",
                "kube-etcd-healthcheck-client",
                "clientAuth",
                None,
            ),
            (
                "apiserver-etcd-client",
                "kube-apiserver-etcd-client",
                "clientAuth",
                None,
            ),
        ] {
            let mut ext = format!("keyUsage=critical,digitalSignature,keyEncipherment\\nextendedKeyUsage={eku}\\nbasicConstraints=critical,CA:FALSE");
            if let Some(san) = san {
                write!(ext, "\\nsubjectAltName={san}").unwrap();
            }
            writeln!(
                s,
                "openssl req -new -newkey {newkey} -nodes -keyout {file}.key -subj /CN={cn} -out {file}.csr 2>/dev/null\n\
                 printf '{ext}\\n' > {file}.ext\n\
                 openssl x509 -req -in {file}.csr -CA {ca}/ca.crt -CAkey {ca}/ca.key -set_serial 0x$(openssl rand -hex 8) -days 365 -extfile {file}.ext -out {file}.crt 2>/dev/null",
                ca = ca.display()
            )
            .unwrap();
        }
        let path = dir.join(format!("member-{n}-{key_type}-{name}.sh"));
        std::fs::write(&path, s).unwrap();
        writeln!(scripts, "{}", path.display()).unwrap();
    }
    let list = dir.join(format!("scripts-{n}-{key_type}"));
    std::fs::write(&list, scripts).unwrap();
    let start = Instant::now();
    run(Command::new("sh")
        .arg("-c")
        .arg(format!("xargs -P $(nproc) -n 1 sh < {}", list.display())));
    start.elapsed()
}

fn main() {
    // `cargo bench` passes --bench; ignore arguments.
    let dir = tempfile::tempdir().expect("temp dir");
    for key_type in ["rsa-2048", "ecdsa-p256"] {
        let pki = dir.path().join(format!("pki-{key_type}"));
        run(Command::new(KILN)
            .args(["pki", "init", "--key-type", key_type, "--out"])
            .arg(&pki)
            .env("RUST_LOG", "warn"));
    }
    println!(
        "kiln pki etcd vs openssl by hand (4 certificates per member), {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<11} {:>8} {:>10} {:>12} {:>14}",
        "key type", "members", "kiln (s)", "openssl (s)", "openssl/kiln"
    );
    for key_type in ["rsa-2048", "ecdsa-p256"] {
        for n in [3, 100] {
            let kiln = time_kiln(dir.path(), n, key_type);
            let openssl = time_openssl(dir.path(), n, key_type);
            println!(
                "{:<11} {:>8} {:>10.3} {:>12.3} {:>13.1}x",
                key_type,
                n,
                kiln.as_secs_f64(),
                openssl.as_secs_f64(),
                openssl.as_secs_f64() / kiln.as_secs_f64()
            );
        }
    }
}
