//! Benchmark: the join service under a burst of 1,000 join requests (500 EC2 PKCS#7 documents,
//! 500 GCE identity tokens, all valid and distinct) sent by 50 concurrent clients over TLS to the
//! real `kiln-firstboot join-service` on 127.0.0.1, which creates every token's Secret through
//! the kube crate in a fake API server. Prints tokens issued per second and the service's memory
//! (resident before, peak after). Run with `cargo bench -p kiln-firstboot --bench join_service`.

#[path = "../../tests/support_join/mod.rs"]
mod support_join;

use std::sync::Arc;
use std::time::Instant;

use kiln_firstboot::joinsvc::identity::Proof;
use support_join::*;

const REQUESTS: usize = 1000;
const CLIENTS: usize = 50;

/// `VmRSS` and `VmHWM` of `pid` in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn proofs(aws: &Signer, google: &Signer, url: &str) -> Vec<String> {
    (0..REQUESTS)
        .map(|i| {
            let proof = if i % 2 == 0 {
                let document = ec2_document(&format!("i-{i:017x}"), "123456789012", 60);
                Proof::Ec2 {
                    signature: aws.pkcs7(&document, false),
                    document,
                }
            } else {
                Proof::Gce {
                    token: google.jwt("g1", &gce_claims(url, "p1", &i.to_string(), 3600, 0)),
                }
            };
            serde_json::to_string(&proof).unwrap()
        })
        .collect()
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api_port = listener.local_addr().unwrap().port();
    let cluster = Cluster::new(tmp.path(), api_port);
    let api = FakeApi::start(&cluster, listener);
    let (aws, google) = (Signer::new("aws-bench"), Signer::new("google-bench"));
    std::fs::write(tmp.path().join("aws.pem"), aws.cert_pem()).unwrap();
    std::fs::write(tmp.path().join("google.json"), google.jwks("g1")).unwrap();
    let port = kiln_testsupport::free_port();
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\nurl = \"https://127.0.0.1:{port}\"\ncontrol_plane_endpoint = \"127.0.0.1:{api_port}\"\n\
         rate_per_second = 100000\nburst = {REQUESTS}\naws_certificates = \"{d}/aws.pem\"\ngoogle_keys = \"{d}/google.json\"\n\
         [[rule]]\nname = \"ec2\"\nplatform = \"ec2\"\naccounts = [\"123456789012\"]\nmax_launch_age = \"15m\"\n\
         [[rule]]\nname = \"gce\"\nplatform = \"gce\"\naccounts = [\"p1\"]\n",
        d = tmp.path().display()
    );
    let service = JoinService::start(&cluster, &config, port, None);
    eprintln!("signing {REQUESTS} identities with openssl...");
    let bodies = Arc::new(proofs(&aws, &google, &service.url));
    let (rss_before, _) = memory(service.child.id());
    let ca = cluster.ca.cert_der().to_vec();
    let url = format!("{}/join", service.url);
    let start = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (bodies, url, ca) = (bodies.clone(), url.clone(), ca.clone());
            std::thread::spawn(move || {
                let agent = kiln_core::http::Options {
                    ca: Some(ca),
                    ..kiln_core::http::Options::new("bench")
                }
                .agent();
                (c..REQUESTS)
                    .step_by(CLIENTS)
                    .filter(|i| {
                        agent
                            .post(&url)
                            .send(&bodies[*i])
                            .is_ok_and(|r| r.status() == 200)
                    })
                    .count()
            })
        })
        .collect();
    let issued: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let took = start.elapsed();
    let (rss_after, peak) = memory(service.child.id());
    assert_eq!(api.tokens().len(), issued);
    println!(
        "| requests | clients | issued | seconds | tokens/s | RSS before | RSS after | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {REQUESTS} | {CLIENTS} | {issued} | {:.2} | {:.0} | {} KiB | {} KiB | {} KiB |",
        took.as_secs_f64(),
        issued as f64 / took.as_secs_f64(),
        rss_before,
        rss_after,
        peak
    );
}
