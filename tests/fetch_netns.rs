//! `kiln-firstboot fetch` with its real default address: a fake metadata service on
//! 169.254.169.254:80 inside a network namespace each test creates (deleted on drop), and
//! kiln-firstboot run inside it with `ip netns exec`. Covers DMI detection with the default URL,
//! the link-local probe, a service that comes up late, and a probe that finds nothing in time.
//! Nothing here can reach the host's own link-local network.

mod support_fetch;

use std::time::{Duration, Instant};

use support_fetch::providers::{provider, Opts};
use support_fetch::server::{Fault, Netns, Server};
use support_fetch::{firstboot, Run, SysRoot};

const USER_DATA: &[u8] = b"#cloud-config\nhostname: from-imds\n";

/// Serves `name`'s protocol on 169.254.169.254:80 inside `ns`.
fn serve(ns: &Netns, name: &str) -> Server {
    let opts = Opts {
        user_data: Some(USER_DATA.to_vec()),
        ..Opts::default()
    };
    Server::start(
        ns.listen("169.254.169.254:80"),
        (provider(name).handler)(opts),
        Fault::None,
        0,
    )
}

fn fetch(ns: &Netns, root: &SysRoot, timeout: &str) -> Run {
    firstboot(
        Some(&ns.name),
        &[
            "fetch",
            "--sys-root",
            root.path(),
            "--timeout",
            timeout,
            "--request-timeout",
            "1",
        ],
    )
}

#[test]
fn dmi_identity_with_the_default_address() {
    for name in [
        "ec2",
        "gce",
        "azure",
        "openstack",
        "digitalocean",
        "hetzner",
    ] {
        let ns = Netns::new(&format!("dmi-{name}"));
        let _server = serve(&ns, name);
        let root = SysRoot::new();
        let p = provider(name);
        root.dmi(p.dmi.0, p.dmi.1, p.dmi.2);
        let run = fetch(&ns, &root, "10");
        assert!(run.ok, "{name}: {}", run.stderr);
        assert_eq!(run.json()["instance_id"], p.instance_id);
        assert!(run.stderr.contains("chosen: DMI"), "{}", run.stderr);
    }
}

#[test]
fn probe_identifies_the_service_when_dmi_says_nothing() {
    for name in [
        "ec2",
        "openstack",
        "digitalocean",
        "hetzner",
        "gce",
        "azure",
    ] {
        let ns = Netns::new(&format!("probe-{name}"));
        let _server = serve(&ns, name);
        let run = fetch(&ns, &SysRoot::new(), "10");
        assert!(run.ok, "{name}: {}", run.stderr);
        assert_eq!(run.json()["platform"], name);
        assert!(
            run.stderr.contains("answered the link-local probe"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn service_that_comes_up_late_is_waited_for() {
    let ns = Netns::new("late");
    let listener_ns = Netns {
        name: ns.name.clone(),
    };
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let s = serve(&listener_ns, "ec2");
        std::mem::forget(listener_ns); // the outer guard deletes the namespace
        s
    });
    let root = SysRoot::new();
    root.dmi("Amazon EC2", "m5.large", "");
    let run = fetch(&ns, &root, "10");
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.json()["platform"], "ec2");
    drop(late.join());
}

#[test]
fn probe_that_finds_nothing_fails_within_its_bound() {
    let ns = Netns::new("empty");
    let start = Instant::now();
    let run = fetch(&ns, &SysRoot::new(), "2");
    run.assert_error(&["no datasource found", "link-local probe"]);
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "probe not bounded: {:?}",
        start.elapsed()
    );
}
