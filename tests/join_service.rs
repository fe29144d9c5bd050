//! The join service end to end, on 127.0.0.1: the real `kiln-firstboot join-service` (real TLS
//! with a certificate from the cluster CA made by kiln's PKI; tokens created through the kube
//! crate against a fake API server that records the Secrets), fake EC2 and GCE metadata services
//! serving identities signed in the real formats with test keys, and `kiln-firstboot run` on a
//! scratch node whose user-data has only `join_service` and the CA pin, ending with the
//! **stand-in kubeadm** (tests/standins; not the real kubeadm) called with the issued token.
//! Then every bad input: unknown key, expired and future-dated tokens, wrong audience, replay,
//! an account the policy does not list, a malformed body, a flood, a wrong pin, and a service
//! that cannot be reached.

#[path = "firstboot/mod.rs"]
mod firstboot;
mod support_fetch;
mod support_join;

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use firstboot::{fake_node, seed_root, standin_kubeadm, Out};
use kiln_firstboot::joinsvc::identity::Proof;
use kiln_firstboot::node::join_service::{request, Prover};
use support_fetch::providers::{provider, Opts};
use support_fetch::server::{free_port, Fault, Handler, Netns, Req, Resp, Server};
use support_join::*;

const ACCOUNT: &str = "123456789012";
const AZURE_SUBSCRIPTION: &str = "8d10da13-8125-4ba9-a717-bf7490507b3d";

/// A cluster with its fake API server and a running join service trusting `aws` and `google`.
struct World {
    _tmp: tempfile::TempDir,
    cluster: Cluster,
    api: FakeApi,
    service: JoinService,
    aws: Signer,
    google: Signer,
    azure: Arc<Signer>,
}

fn policy(port: u16, api_port: u16, dir: &Path, extra: &str) -> String {
    format!(
        r#"listen = "127.0.0.1:{port}"
url = "https://127.0.0.1:{port}"
control_plane_endpoint = "127.0.0.1:{api_port}"
token_ttl = "15m"
aws_certificates = "{dir}/aws.pem"
google_keys = "{dir}/google.json"
azure_certificates = "{dir}/azure.pem"
{extra}
[[rule]]
name = "ec2-workers"
platform = "ec2"
accounts = ["{ACCOUNT}"]
regions = ["eu-west-1"]
max_launch_age = "15m"
labels = {{ "example.com/pool" = "asg-workers" }}

[[rule]]
name = "gce-workers"
platform = "gce"
accounts = ["p1"]
max_launch_age = "15m"

[[rule]]
name = "azure-workers"
platform = "azure"
accounts = ["{AZURE_SUBSCRIPTION}"]
"#,
        dir = dir.display()
    )
}

impl World {
    fn new(extra: &str) -> World {
        World::start(extra, None)
    }

    /// The world with the API server and the service inside `netns` when given.
    fn start(extra: &str, netns: Option<&Netns>) -> World {
        let tmp = tempfile::tempdir().unwrap();
        let listener = match netns {
            Some(ns) => ns.listen("127.0.0.1:0"),
            None => TcpListener::bind("127.0.0.1:0").unwrap(),
        };
        let api_port = listener.local_addr().unwrap().port();
        let cluster = Cluster::new(tmp.path(), api_port);
        let api = FakeApi::start(&cluster, listener);
        let (aws, google) = (Signer::new("aws-test-region"), Signer::new("google-test"));
        let azure = Arc::new(Signer::azure());
        fs::write(tmp.path().join("aws.pem"), aws.cert_pem()).unwrap();
        fs::write(tmp.path().join("azure.pem"), azure.ca_pem()).unwrap();
        fs::write(tmp.path().join("google.json"), google.jwks("g1")).unwrap();
        let port = free_port();
        let config = policy(port, api_port, tmp.path(), extra);
        let service = JoinService::start(&cluster, &config, port, netns.map(|n| n.name.as_str()));
        World {
            _tmp: tmp,
            cluster,
            api,
            service,
            aws,
            google,
            azure,
        }
    }

    fn ec2_proof(
        &self,
        signer: &Signer,
        instance: &str,
        account: &str,
        launched_ago: i64,
    ) -> Proof {
        let document = ec2_document(instance, account, launched_ago);
        Proof::Ec2 {
            signature: signer.pkcs7(&document, false),
            document,
        }
    }

    fn ask(&self, proof: &Proof) -> Result<kiln_firstboot::joinsvc::Answer, String> {
        ask(&self.service.url, &self.cluster.pin, proof)
    }
}

/// An Azure attested document for `subscription` signed by `signer` with `nonce`.
fn azure_proof(signer: &Signer, nonce: &str, subscription: &str) -> Proof {
    Proof::Azure {
        signature: signer.pkcs7(&azure_document(nonce, subscription), true),
    }
}

/// The node side's request with a ready proof, 5 seconds at most.
fn ask(url: &str, pin: &str, proof: &Proof) -> Result<kiln_firstboot::joinsvc::Answer, String> {
    let prove = |_: Option<&str>| Ok(proof.clone());
    let prover = Prover {
        nonce: false,
        prove: &prove,
    };
    request(
        url,
        &[pin.to_owned()],
        &prover,
        Instant::now() + Duration::from_secs(5),
    )
    .map_err(|e| format!("{e:#}"))
}

impl World {}

/// The fake metadata service of `platform` (tests/support_fetch) serving `user_data`, with the
/// identity endpoints answered by `identity` first.
fn handler(
    platform: &str,
    user_data: String,
    identity: impl Fn(&Req) -> Option<Resp> + Send + Sync + 'static,
) -> Handler {
    let opts = Opts {
        user_data: Some(user_data.into_bytes()),
        ..Opts::default()
    };
    let base = (provider(platform).handler)(opts);
    Arc::new(move |req: &Req| identity(req).unwrap_or_else(|| base(req)))
}

/// [`handler`] served on 127.0.0.1.
fn imds(
    platform: &str,
    user_data: String,
    identity: impl Fn(&Req) -> Option<Resp> + Send + Sync + 'static,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    Server::start(
        listener,
        handler(platform, user_data, identity),
        Fault::None,
        0,
    )
}

/// EC2's identity endpoints (IMDSv2 token required, as the fake service issues it).
fn ec2_identity(
    document: String,
    signature: String,
) -> impl Fn(&Req) -> Option<Resp> + Send + Sync {
    move |r: &Req| {
        let path = r.path.strip_prefix("/latest/dynamic/instance-identity/")?;
        if r.header("x-aws-ec2-metadata-token") != Some("AQAEAtoken==") {
            return Some(Resp::status(401));
        }
        match path {
            "document" => Some(Resp::ok(document.clone())),
            "rsa2048" => Some(Resp::ok(signature.clone())),
            _ => None,
        }
    }
}

/// A scratch node whose user-data carries only the node config below (no token).
fn node_with(root: &Path, join_service: &str, pin: &str) -> String {
    seed_root(root);
    fake_node(root);
    fs::write(root.join("proc/sys/net/ipv4/ip_forward"), "1\n").unwrap();
    fs::create_dir_all(root.join("sys/module/br_netfilter")).unwrap();
    fs::create_dir_all(root.join("usr/share/kiln")).unwrap();
    fs::write(
        root.join("usr/share/kiln/manifest.json"),
        r#"{"kubernetes_version":"v1.31.2"}"#,
    )
    .unwrap();
    format!(
        "#cloud-config\nwrite_files:\n- path: /etc/kiln/node.toml\n  permissions: '0600'\n  content: |\n    role = \"join\"\n    join_service = \"{join_service}\"\n    ca_cert_hashes = [\"{pin}\"]\n"
    )
}

/// `kiln-firstboot run` on `root` against the metadata service at `imds`.
fn run_node(root: &Path, platform: &str, imds: &str, record: &Path, join_timeout: &str) -> Out {
    let args = ["--metadata-url", imds, "--join-timeout", join_timeout];
    let kubeadm = standin_kubeadm();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kiln-firstboot"));
    cmd.args(run_args(root, platform, &kubeadm)).args(args);
    finish(cmd, record)
}

/// `run` on the scratch node `root` with the stand-in kubeadm, `--datasource platform`.
fn run_args(root: &Path, platform: &str, kubeadm: &Path) -> Vec<String> {
    let r = root.to_str().unwrap();
    [
        "run",
        "--root",
        r,
        "--sys-root",
        r,
        "--datasource",
        platform,
        "--timeout",
        "10",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(["--kubeadm".into(), kubeadm.display().to_string()])
    .collect()
}

/// Runs `cmd` with the stand-in kubeadm recording to `record`.
fn finish(mut cmd: std::process::Command, record: &Path) -> Out {
    let o = cmd
        .env("KILN_STANDIN_RECORD", record)
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    Out {
        ok: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn assert_joined_with_issued_token(world: &World, root: &Path, out: &Out, record: &Path) {
    assert!(
        out.ok,
        "{}\n{}\n{}",
        out.stdout,
        out.stderr,
        world.service.audit()
    );
    let tokens = world.api.tokens();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let token = &tokens[0];
    let config = fs::read_to_string(root.join("etc/kiln/kubeadm.yaml")).unwrap();
    assert!(config.contains(&format!("token: {token}")), "{config}");
    assert!(
        config.contains(&format!("apiServerEndpoint: 127.0.0.1:{}", world.api.port)),
        "{config}"
    );
    let saved = fs::metadata(root.join("var/lib/kiln/join-answer.json")).unwrap();
    assert_eq!(
        saved.permissions().mode() & 0o777,
        0o600,
        "the saved answer holds the token"
    );
    let recorded = fs::read_to_string(record).unwrap();
    assert!(
        recorded.contains("- join"),
        "stand-in kubeadm not called to join:\n{recorded}"
    );
    let (id, secret) = token.split_once('.').unwrap();
    let audit = world.service.audit();
    assert!(
        audit.contains("decision=issued") && audit.contains(&format!("token_id={id}")),
        "{audit}"
    );
    let status = fs::read_to_string(root.join("var/lib/kiln/status.json")).unwrap();
    for text in [&out.stdout, &out.stderr, &status, &audit] {
        assert!(!text.contains(secret), "token secret leaked:\n{text}");
    }
}

/// A full run on a scratch node of `platform` whose user-data has only `join_service` and the
/// CA pin, its metadata service answering identities with `identity`: the stand-in kubeadm
/// joins with the issued token, the rule `PLATFORM-workers` decided. Returns the kubeadm config.
fn node_joins(
    world: &World,
    platform: &str,
    identity: impl Fn(&Req) -> Option<Resp> + Send + Sync + 'static,
) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("node");
    let user_data = node_with(&root, &world.service.url, &world.cluster.pin);
    assert!(!user_data.contains("token"));
    let imds = imds(platform, user_data, identity);
    let record = tmp.path().join("kubeadm.record");
    let out = run_node(&root, platform, &imds.url(), &record, "30");
    assert_joined_with_issued_token(world, &root, &out, &record);
    let audit = world.service.audit();
    assert!(
        audit.contains(&format!("rule={platform}-workers")),
        "{audit}"
    );
    fs::read_to_string(root.join("etc/kiln/kubeadm.yaml")).unwrap()
}

#[test]
fn an_ec2_node_joins_with_no_secret_in_its_user_data() {
    let world = World::new("");
    let document = ec2_document("i-0f1e2d3c4b5a69788", ACCOUNT, 60);
    let signature = world.aws.pkcs7(&document, false);
    let config = node_joins(&world, "ec2", ec2_identity(document, signature));
    assert!(
        config.contains("example.com/pool=asg-workers"),
        "rule's labels missing:\n{config}"
    );
    assert!(world
        .service
        .audit()
        .contains("instance=i-0f1e2d3c4b5a69788"));
}

#[test]
fn a_gce_node_joins_with_its_identity_token() {
    let world = World::new("");
    let claims = gce_claims(&world.service.url, "p1", "4520031799277581759", 3600, 0);
    let token = world.google.jwt("g1", &claims);
    node_joins(&world, "gce", move |r: &Req| {
        r.path
            .starts_with("/computeMetadata/v1/instance/service-accounts/default/identity?audience=https%3A%2F%2F127.0.0.1%3A")
            .then(|| Resp::ok(token.clone()).with_header("Metadata-Flavor", "Google"))
    });
}

/// Azure: the node asks the service for a nonce, IMDS signs the attested document with it.
#[test]
fn an_azure_node_joins_with_an_attested_document_for_the_service_nonce() {
    let world = World::new("");
    let signer = world.azure.clone();
    node_joins(&world, "azure", move |r: &Req| {
        let nonce = r
            .path
            .strip_prefix("/metadata/attested/document?api-version=2020-09-01&nonce=")?;
        let Proof::Azure { signature } = azure_proof(&signer, nonce, AZURE_SUBSCRIPTION) else {
            return None;
        };
        Some(Resp::ok(
            serde_json::json!({"encoding": "pkcs7", "signature": signature}).to_string(),
        ))
    });
}

/// The real default address: the EC2 metadata service on 169.254.169.254:80, the API server, the
/// join service and the node all inside a network namespace the test creates (root, `ip netns`;
/// slow tier), so the node runs exactly as on EC2, with no `--metadata-url`.
#[cfg(feature = "slow-tests")]
#[test]
fn an_ec2_node_joins_through_the_link_local_metadata_address() {
    let ns = Netns::new("join-ec2");
    let world = World::start("", Some(&ns));
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("node");
    let user_data = node_with(&root, &world.service.url, &world.cluster.pin);
    let document = ec2_document("i-0f1e2d3c4b5a69788", ACCOUNT, 60);
    let signature = world.aws.pkcs7(&document, false);
    let identity = ec2_identity(document, signature);
    let listener = ns.listen("169.254.169.254:80");
    let _imds = Server::start(
        listener,
        handler("ec2", user_data, identity),
        Fault::None,
        0,
    );
    let record = tmp.path().join("kubeadm.record");
    let mut cmd = std::process::Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        &ns.name,
        env!("CARGO_BIN_EXE_kiln-firstboot"),
    ])
    .args(run_args(&root, "ec2", &standin_kubeadm()))
    .args(["--join-timeout", "30"]);
    let out = finish(cmd, &record);
    assert_joined_with_issued_token(&world, &root, &out, &record);
}

/// Each bad input is refused: the node hears only "refused", the audit line says why, and no
/// token is created.
#[test]
fn bad_identities_are_refused_with_the_reason_in_the_audit_log() {
    let world = World::new("");
    let other = Signer::new("not-aws");
    let url = world.service.url.clone();
    let cases: Vec<(Proof, &str)> = vec![
        (world.ec2_proof(&other, "i-1", ACCOUNT, 60), "unknown key"),
        (
            world.ec2_proof(&world.aws, "i-2", "999999999999", 60),
            "account 999999999999 not listed",
        ),
        (
            world.ec2_proof(&world.aws, "i-3", ACCOUNT, 7200),
            "more than 15m",
        ),
        (
            Proof::Gce {
                token: world
                    .google
                    .jwt("g1", &gce_claims(&url, "p1", "5", -600, -4000)),
            },
            "expired",
        ),
        (
            Proof::Gce {
                token: world
                    .google
                    .jwt("g1", &gce_claims(&url, "p1", "6", 7200, 3600)),
            },
            "in the future",
        ),
        (
            Proof::Gce {
                token: world
                    .google
                    .jwt("g1", &gce_claims("https://elsewhere", "p1", "7", 600, 0)),
            },
            "wrong audience",
        ),
        (
            Proof::Gce {
                token: other.jwt("g1", &gce_claims(&url, "p1", "8", 600, 0)),
            },
            "does not verify",
        ),
        (
            azure_proof(&world.azure, &"0".repeat(32), AZURE_SUBSCRIPTION),
            "nonce not issued here",
        ),
        (
            azure_proof(&Signer::azure(), "00", AZURE_SUBSCRIPTION),
            "unknown key",
        ),
    ];
    for (proof, reason) in &cases {
        let err = world.ask(proof).unwrap_err();
        assert!(err.contains("refused this node"), "{err}");
        let audit = world.service.audit();
        let line = audit.lines().last().unwrap_or_default();
        assert!(
            line.contains("decision=refused") && line.contains(reason),
            "want {reason:?}:\n{audit}"
        );
    }
    // A replay of an accepted document gets nothing new.
    let proof = world.ec2_proof(&world.aws, "i-9", ACCOUNT, 60);
    world.ask(&proof).unwrap();
    let err = world.ask(&proof).unwrap_err();
    assert!(err.contains("refused"), "{err}");
    assert!(world
        .service
        .audit()
        .contains("replay: instance already has token"));
    // The detached form of the signature (content not in the PKCS#7) works too.
    let document = ec2_document("i-10", ACCOUNT, 60);
    let signature = world.aws.pkcs7_detached(&document);
    let tampered = Proof::Ec2 {
        document: document.replace("i-10", "i-11"),
        signature: signature.clone(),
    };
    assert!(world.ask(&tampered).unwrap_err().contains("refused"));
    let audit = world.service.audit();
    assert!(
        audit.contains("content does not match its signed digest"),
        "{audit}"
    );
    world
        .ask(&Proof::Ec2 {
            document,
            signature,
        })
        .unwrap();
    assert_eq!(world.api.tokens().len(), 2);
}

#[test]
fn malformed_bodies_and_floods_are_refused() {
    let world = World::new("rate_per_second = 1\nburst = 5\n");
    let agent = kiln_core::http::Options {
        verify_tls: false,
        ..kiln_core::http::Options::new("test")
    }
    .agent();
    let post = |body: &str| {
        let mut reply = agent
            .post(&format!("{}/join", world.service.url))
            .send(body)
            .unwrap();
        (
            reply.status().as_u16(),
            reply.body_mut().read_to_string().unwrap(),
        )
    };
    assert_eq!(
        post("{\"platform\": \"ec2\", "),
        (403, "{\"error\":\"refused\"}".into())
    );
    assert!(world.service.audit().contains("malformed body"));
    let huge = format!(
        "{{\"platform\": \"gce\", \"token\": \"{}\"}}",
        "a".repeat(70_000)
    );
    assert_eq!(post(&huge).0, 403);
    assert!(world.service.audit().contains("request body over 64 KiB"));
    let statuses: Vec<u16> = (0..30).map(|_| post("{}").0).collect();
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 20,
        "{statuses:?}"
    );
    assert!(world.service.audit().contains("reason=\"rate limited\""));
    assert!(world.api.tokens().is_empty());
}

#[test]
fn a_wrong_pin_is_not_trusted() {
    let world = World::new("");
    let proof = world.ec2_proof(&world.aws, "i-1", ACCOUNT, 60);
    let wrong = format!("sha256:{}", "0".repeat(64));
    let err = ask(&world.service.url, &wrong, &proof).unwrap_err();
    assert!(err.contains("matches none of ca_cert_hashes"), "{err}");
    assert!(world.api.tokens().is_empty());
}

#[test]
fn a_node_that_cannot_reach_the_service_fails_at_its_join_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("node");
    let closed = format!("https://127.0.0.1:{}", free_port());
    let pin = format!("sha256:{}", "a".repeat(64));
    let user_data = node_with(&root, &closed, &pin);
    let document = ec2_document("i-0f1e2d3c4b5a69788", ACCOUNT, 60);
    let imds = imds("ec2", user_data, ec2_identity(document, "c2ln".into()));
    let record = tmp.path().join("kubeadm.record");
    let start = Instant::now();
    let out = run_node(&root, "ec2", &imds.url(), &record, "4");
    assert!(!out.ok);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert!(
        errors[0].contains("join service") && errors[0].contains("not reached after"),
        "{}",
        errors[0]
    );
    assert!(!record.exists(), "kubeadm ran");
}

/// `--dry-run` checks the config and keys and prints the plan; a bad config is one error line
/// naming the field, before anything listens.
#[test]
fn dry_run_prints_the_plan_and_bad_configs_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let aws = Signer::new("aws-test-region");
    fs::write(dir.join("aws.pem"), aws.cert_pem()).unwrap();
    fs::write(dir.join("azure.pem"), aws.cert_pem()).unwrap();
    fs::write(dir.join("google.json"), aws.jwks("g1")).unwrap();
    let run = |config: &str| {
        fs::write(dir.join("svc.toml"), config).unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kiln-firstboot"));
        cmd.args(["join-service", "--dry-run", "--config"])
            .arg(dir.join("svc.toml"));
        finish(cmd, &dir.join("unused"))
    };
    let good = policy(9443, 6443, dir, "");
    let out = run(&good);
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("keys: 1 AWS certificates, 1 Google keys, 1 Azure CA certificates")
            && out
                .stdout
                .contains("rule ec2-workers: ec2 accounts [\"123456789012\"]"),
        "{}",
        out.stdout
    );
    let out = run(&good.replace("max_launch_age = \"15m\"", "max_launch_age = \"soon\""));
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert!(!out.ok && errors.len() == 1, "{}", out.stderr);
    assert!(
        errors[0].contains("rule[0] (ec2-workers): max_launch_age"),
        "{}",
        errors[0]
    );
}
