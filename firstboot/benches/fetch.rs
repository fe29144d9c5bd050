//! Benchmark: detection + fetch time of `kiln-firstboot fetch` for a NoCloud ISO on a loop device
//! and for an EC2-protocol metadata service (IMDSv2) on 127.0.0.1, both in process (library:
//! `detect` then `fetch`) and as the whole command (process start included). Prints a table; run
//! with `cargo bench -p kiln-firstboot` as root (loop devices).

#[path = "../../tests/support_fetch/mod.rs"]
mod support_fetch;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use kiln_firstboot::datasource::http::{Http, HttpConfig};
use kiln_firstboot::datasource::{detect, Env};
use support_fetch::providers::{provider, Opts};
use support_fetch::server::{Fault, Server};
use support_fetch::{firstboot, make_iso, Loop, SysRoot};

const ROUNDS_LIB: usize = 200;
const ROUNDS_CMD: usize = 30;

fn env(root: &SysRoot, metadata_url: &str) -> Env {
    Env {
        sys_root: root.dir.path().into(),
        http: Http::new(HttpConfig {
            deadline: Instant::now() + Duration::from_secs(10),
            request_timeout: Duration::from_secs(2),
            max_body: 16 << 20,
        }),
        metadata_url: Some(metadata_url.into()),
        wait_online: false,
    }
}

/// Median and worst of `rounds` runs of `f`.
fn time(rounds: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[rounds / 2], times[rounds - 1])
}

fn measure(name: &str, root: &SysRoot, url: &str, platform: &str) {
    let lib = time(ROUNDS_LIB, || {
        let env = env(root, url);
        let choice = detect(&env).unwrap();
        let fetched = choice.source.fetch(&env).unwrap();
        assert_eq!(fetched.metadata.platform, platform);
    });
    let args = ["fetch", "--sys-root", root.path(), "--metadata-url", url];
    let cmd = time(ROUNDS_CMD, || assert!(firstboot(None, &args).ok));
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    println!(
        "| {name} | {} | {} | {} | {} |",
        ms(lib.0),
        ms(lib.1),
        ms(cmd.0),
        ms(cmd.1)
    );
}

fn main() {
    println!(
        "| source | in process, median | in process, worst | command, median | command, worst |"
    );
    println!("|---|---|---|---|---|");

    let work = tempfile::tempdir().unwrap();
    let iso = work.path().join("seed.iso");
    let user_data = vec![b'#'; 8 << 10];
    let files: &[(&str, &[u8])] = &[
        ("meta-data", b"instance-id: iid-bench\n"),
        ("user-data", &user_data),
    ];
    make_iso(&iso, "cidata", files, true);
    let dev = Loop::attach(&iso);
    let root = SysRoot::new();
    root.block_device(&dev.device);
    measure(
        "NoCloud ISO (8 KiB user-data), loop device found by probing labels",
        &root,
        "http://127.0.0.1:9",
        "nocloud",
    );

    let opts = Opts {
        user_data: Some(user_data),
        ..Opts::default()
    };
    let server = Server::start(
        TcpListener::bind("127.0.0.1:0").unwrap(),
        (provider("ec2").handler)(opts),
        Fault::None,
        0,
    );
    let root = SysRoot::new();
    root.dmi("Amazon EC2", "m5.large", "Amazon EC2");
    measure(
        "EC2 IMDSv2 on 127.0.0.1 (5 requests), found by DMI",
        &root,
        &server.url(),
        "ec2",
    );
}
