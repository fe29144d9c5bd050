//! `kiln-firstboot fetch` against fake metadata services on 127.0.0.1 that speak each provider's
//! protocol, with the platform found from a fake DMI identity: the normal answer, no user-data,
//! and the faults a booting network shows (refused connections, 500s, slow and truncated
//! answers), plus oversized user-data, malformed metadata and an exhausted deadline.

mod support_fetch;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use support_fetch::providers::{provider, Opts, Provider};
use support_fetch::server::{free_port, Fault, Server};
use support_fetch::{firstboot, make_iso, Loop, Run, SysRoot};

const USER_DATA: &[u8] =
    b"## template: jinja\n#cloud-config\nruncmd: [\"echo s3cr3t-j0in-t0ken\"]\n";

fn opts(user_data: Option<&[u8]>) -> Opts {
    Opts {
        user_data: user_data.map(<[u8]>::to_vec),
        ..Opts::default()
    }
}

/// Starts a fake `p` service with `fault` on its first `count` requests.
fn serve(p: &Provider, o: Opts, fault: Fault, count: u32) -> Server {
    Server::start(
        TcpListener::bind("127.0.0.1:0").unwrap(),
        (p.handler)(o),
        fault,
        count,
    )
}

/// Runs `fetch` on a machine whose DMI says `p`, against `url`, with short deadlines.
fn fetch(p: &Provider, url: &str, out: Option<&std::path::Path>, extra: &[&str]) -> Run {
    let root = SysRoot::new();
    root.dmi(p.dmi.0, p.dmi.1, p.dmi.2);
    let mut args = vec![
        "fetch",
        "--sys-root",
        root.path(),
        "--metadata-url",
        url,
        "--request-timeout",
        "0.5",
    ];
    if !extra.contains(&"--timeout") {
        args.extend(["--timeout", "10"]);
    }
    if let Some(out) = out {
        args.extend(["--out", out.to_str().unwrap()]);
    }
    args.extend_from_slice(extra);
    firstboot(None, &args)
}

fn assert_fetched(p: &Provider, run: &Run, user_data: Option<&[u8]>) {
    assert!(run.ok, "{}: {}", p.name, run.stderr);
    let json = run.json();
    assert_eq!(json["platform"], p.name);
    assert_eq!(json["instance_id"], p.instance_id, "{json}");
    assert!(json["meta_data"].is_object());
    assert!(
        run.stderr
            .contains(&format!("datasource {} chosen: DMI", p.name)),
        "{}",
        run.stderr
    );
    let says = if user_data.is_some() {
        "bytes of user-data"
    } else {
        "no user-data"
    };
    assert!(run.stderr.contains(says), "{}", run.stderr);
    assert!(
        !run.stderr.contains("s3cr3t") && !run.stdout.contains("s3cr3t"),
        "user-data leaked"
    );
}

/// Normal answer written to --out, and an instance without user-data.
fn normal_and_empty(p: &Provider) {
    let server = serve(p, opts(Some(USER_DATA)), Fault::None, 0);
    let out = tempfile::tempdir().unwrap();
    let run = fetch(p, &server.url(), Some(out.path()), &[]);
    assert!(run.ok, "{}: {}", p.name, run.stderr);
    assert_eq!(
        std::fs::read(out.path().join("user-data")).unwrap(),
        USER_DATA
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("metadata.json")).unwrap()).unwrap();
    assert_eq!(meta["platform"], p.name);
    for f in ["user-data", "metadata.json"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.path().join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    assert_fetched(p, &fetch(p, &server.url(), None, &[]), Some(USER_DATA));

    let server = serve(p, opts(None), Fault::None, 0);
    assert_fetched(p, &fetch(p, &server.url(), None, &[]), None);
}

/// 500s, slow answers and truncated bodies are retried until the real answer comes.
fn transient_faults(p: &Provider) {
    for (fault, count) in [
        (Fault::ServerError, 3),
        (Fault::Slow(Duration::from_secs(2)), 1),
        (Fault::Truncate, 2),
    ] {
        let server = serve(p, opts(Some(USER_DATA)), fault, count);
        let run = fetch(p, &server.url(), None, &[]);
        assert_fetched(p, &run, Some(USER_DATA));
        assert!(
            server.count() > count as usize,
            "{} {fault:?}: no retry seen",
            p.name
        );
    }
}

/// Connections are refused for the first second: the server comes up late.
fn refused_at_first(p: &Provider) {
    let port = free_port();
    let handler = (p.handler)(opts(Some(USER_DATA)));
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        Server::start(
            TcpListener::bind(("127.0.0.1", port)).unwrap(),
            handler,
            Fault::None,
            0,
        )
    });
    let start = Instant::now();
    let run = fetch(p, &format!("http://127.0.0.1:{port}"), None, &[]);
    assert_fetched(p, &run, Some(USER_DATA));
    assert!(start.elapsed() >= Duration::from_secs(1));
    drop(late.join());
}

/// Oversized user-data, malformed metadata and a server that never recovers: one error line.
fn final_errors(p: &Provider) {
    let big = vec![b'x'; 64 * 1024];
    let server = serve(p, opts(Some(&big)), Fault::None, 0);
    // Azure's base64 body is 4/3 larger; the cap is still far below it and above the metadata.
    fetch(p, &server.url(), None, &["--max-size", "16384"])
        .assert_error(&[p.name, "larger than the limit of 16384 bytes"]);

    let server = serve(
        p,
        Opts {
            malformed: true,
            ..opts(Some(USER_DATA))
        },
        Fault::None,
        0,
    );
    fetch(p, &server.url(), None, &[]).assert_error(&[p.name, "malformed metadata", &server.url()]);

    let server = serve(p, opts(Some(USER_DATA)), Fault::ServerError, u32::MAX);
    let start = Instant::now();
    fetch(p, &server.url(), None, &["--timeout", "1.5"]).assert_error(&[
        p.name,
        "no answer within the deadline",
        "HTTP status 500",
    ]);
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "deadline not kept"
    );
}

fn check(name: &str) {
    let p = provider(name);
    normal_and_empty(p);
    transient_faults(p);
    refused_at_first(p);
    final_errors(p);
}

#[test]
fn ec2() {
    check("ec2");
}

#[test]
fn gce() {
    check("gce");
}

#[test]
fn azure() {
    check("azure");
}

#[test]
fn openstack() {
    check("openstack");
}

#[test]
fn digitalocean() {
    check("digitalocean");
}

#[test]
fn hetzner() {
    check("hetzner");
}

#[test]
fn ec2_imdsv1_only_when_the_token_is_refused_with_403_404_405() {
    let p = provider("ec2");
    for status in [403, 404, 405] {
        let server = serve(
            p,
            Opts {
                token_status: Some(status),
                ..opts(Some(USER_DATA))
            },
            Fault::None,
            0,
        );
        let run = fetch(p, &server.url(), None, &[]);
        assert_fetched(p, &run, Some(USER_DATA));
        assert!(
            run.stderr.contains("falling back to IMDSv1"),
            "{}",
            run.stderr
        );
        let reqs = server.requests.lock().unwrap();
        assert!(reqs
            .iter()
            .all(|r| r.header("x-aws-ec2-metadata-token").is_none()));
    }
    let server = serve(
        p,
        Opts {
            token_status: Some(400),
            ..opts(Some(USER_DATA))
        },
        Fault::None,
        0,
    );
    fetch(p, &server.url(), None, &[]).assert_error(&[
        "ec2",
        "/latest/api/token",
        "HTTP status 400",
    ]);
}

#[test]
fn imdsv2_token_is_sent_with_every_get() {
    let p = provider("ec2");
    let server = serve(p, opts(Some(USER_DATA)), Fault::None, 0);
    assert!(fetch(p, &server.url(), None, &["--datasource", "ec2"]).ok);
    let reqs = server.requests.lock().unwrap();
    assert_eq!(reqs[0].method, "PUT");
    assert_eq!(
        reqs[0].header("x-aws-ec2-metadata-token-ttl-seconds"),
        Some("21600")
    );
    assert!(reqs[1..]
        .iter()
        .all(|r| r.header("x-aws-ec2-metadata-token") == Some("AQAEAtoken==")));
}

#[test]
fn azure_custom_data_from_the_provisioning_medium_when_imds_has_no_user_data() {
    use base64::Engine;
    let p = provider("azure");
    let b64 = base64::engine::general_purpose::STANDARD.encode(USER_DATA);
    let xml = include_str!("fixtures/azure/ovf-env.xml").replace("@CUSTOM_DATA@", &b64);
    let work = tempfile::tempdir().unwrap();
    let iso = work.path().join("ovf.iso");
    make_iso(
        &iso,
        "rd_rdfe_stable.20261124-1200",
        &[("ovf-env.xml", xml.as_bytes())],
        true,
    );
    let dev = Loop::attach(&iso);
    let root = SysRoot::new();
    root.dmi(p.dmi.0, p.dmi.1, p.dmi.2)
        .block_device(&dev.device);
    let server = serve(p, opts(None), Fault::None, 0);
    let out = work.path().join("out");
    let args = [
        "fetch",
        "--sys-root",
        root.path(),
        "--metadata-url",
        &server.url(),
        "--out",
        out.to_str().unwrap(),
    ];
    let run = firstboot(None, &args);
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stderr.contains("reading customData from"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(out.join("user-data")).unwrap(), USER_DATA);
    // IMDS userData wins over customData.
    let server = serve(p, opts(Some(b"#cloud-config\n")), Fault::None, 0);
    let args = [
        "fetch",
        "--sys-root",
        root.path(),
        "--metadata-url",
        &server.url(),
        "--out",
        out.to_str().unwrap(),
    ];
    assert!(firstboot(None, &args).ok);
    assert_eq!(
        std::fs::read(out.join("user-data")).unwrap(),
        b"#cloud-config\n"
    );
}
