//! The world around the join service in tests, all on 127.0.0.1: a cluster CA from kiln's PKI
//! and admin.conf for it; a fake API server (HTTPS with a certificate from that CA) that answers
//! `/readyz` and records the bootstrap-token Secrets created in kube-system; identities signed in
//! the platforms' real formats with test keys (EC2: `openssl cms -sign` BER PKCS#7 as IMDS serves
//! it; GCE: an RS256 JWT signed with `openssl dgst`); and the service itself, the real
//! `kiln-firstboot join-service` process.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use kiln_core::pki::cert::{Ca, CertSpec, Usage, LEAF_VALIDITY};
use kiln_core::pki::{KeyType, PrivateKey};

/// A cluster: its PKI directory (ca.crt, ca.key), admin.conf, and the CA pin.
pub struct Cluster {
    pub dir: PathBuf,
    pub ca: Ca,
    pub pin: String,
}

impl Cluster {
    pub fn new(dir: &Path, api_port: u16) -> Self {
        let now = time::OffsetDateTime::now_utc();
        let ca = Ca::generate(
            "kubernetes",
            PrivateKey::generate(KeyType::EcdsaP256).unwrap(),
            now,
        )
        .unwrap();
        let pki = dir.join("pki");
        std::fs::create_dir_all(&pki).unwrap();
        std::fs::write(pki.join("ca.crt"), ca.cert_pem()).unwrap();
        std::fs::write(pki.join("ca.key"), ca.key().to_pem().unwrap()).unwrap();
        let request = kiln_core::kubeconfig::UserRequest {
            cluster_name: "kubernetes".into(),
            client_name: "kubernetes-admin".into(),
            organizations: vec!["kubeadm:cluster-admins".into()],
            server: format!("https://127.0.0.1:{api_port}"),
            validity: LEAF_VALIDITY,
            key_type: KeyType::EcdsaP256,
        };
        let conf = kiln_core::kubeconfig::render_user_kubeconfig(&ca, &request, now).unwrap();
        std::fs::write(dir.join("admin.conf"), conf).unwrap();
        let pin = ca.hash().unwrap();
        Cluster {
            dir: dir.to_owned(),
            ca,
            pin,
        }
    }

    /// A rustls server config with a certificate for 127.0.0.1 from this CA.
    pub fn server_tls(&self) -> Arc<rustls::ServerConfig> {
        let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
        let spec = CertSpec {
            common_name: "kube-apiserver".into(),
            ips: vec!["127.0.0.1".parse().unwrap()],
            usages: vec![Usage::Server],
            ..CertSpec::default()
        };
        let now = time::OffsetDateTime::now_utc();
        let pem = self.ca.issue(&spec, &key, now, LEAF_VALIDITY).unwrap();
        let cert = kiln_core::pki::cert::cert_der_from_pem(&pem, "leaf").unwrap();
        let key_der = pem::parse(key.to_pem().unwrap()).unwrap().into_contents();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.into(), self.ca.cert_der().to_vec().into()],
                rustls::pki_types::PrivateKeyDer::Sec1(key_der.into()),
            )
            .unwrap();
        Arc::new(config)
    }
}

/// A fake API server: `GET /readyz` answers ok; `POST .../namespaces/kube-system/secrets`
/// records the Secret and answers 201 with it; the rest 404.
pub struct FakeApi {
    pub port: u16,
    pub secrets: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl FakeApi {
    /// Serves on `listener` (bound before the cluster's admin.conf named its port).
    pub fn start(cluster: &Cluster, listener: std::net::TcpListener) -> Self {
        let port = listener.local_addr().unwrap().port();
        let secrets = Arc::new(Mutex::new(Vec::new()));
        let (seen, config) = (secrets.clone(), cluster.server_tls());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (seen, config) = (seen.clone(), config.clone());
                std::thread::spawn(move || {
                    let conn = rustls::ServerConnection::new(config).unwrap();
                    let mut reader = BufReader::new(rustls::StreamOwned::new(conn, stream));
                    while serve_one(&mut reader, &seen) {}
                });
            }
        });
        FakeApi { port, secrets }
    }

    /// The tokens (`id.secret`) of the Secrets created so far.
    pub fn tokens(&self) -> Vec<String> {
        let field = |s: &serde_json::Value, k: &str| {
            let b64 = s["data"][k].as_str().unwrap_or_default();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap(),
            )
            .unwrap()
        };
        self.secrets
            .lock()
            .unwrap()
            .iter()
            .map(|s| format!("{}.{}", field(s, "token-id"), field(s, "token-secret")))
            .collect()
    }
}

/// Serves one request on a kept-alive connection; false when the connection is done.
fn serve_one<S: Read + Write>(
    reader: &mut BufReader<S>,
    seen: &Mutex<Vec<serde_json::Value>>,
) -> bool {
    let Some((method, path, body)) = read_request(reader) else {
        return false;
    };
    let (status, reply) = match (method.as_str(), path.as_str()) {
        ("GET", p) if p.starts_with("/readyz") => (200, b"ok".to_vec()),
        ("POST", p) if p.starts_with("/api/v1/namespaces/kube-system/secrets") => {
            let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            seen.lock().unwrap().push(value);
            (201, body)
        }
        _ => (404, b"{}".to_vec()),
    };
    let stream = reader.get_mut();
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        reply.len()
    );
    stream.write_all(head.as_bytes()).is_ok()
        && stream.write_all(&reply).is_ok()
        && stream.flush().is_ok()
}

/// The identity document of an EC2 instance launched `launched_ago` seconds ago.
pub fn ec2_document(instance: &str, account: &str, launched_ago: i64) -> String {
    let launched = time::OffsetDateTime::now_utc() - time::Duration::seconds(launched_ago);
    let pending = launched
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    serde_json::json!({"accountId": account, "architecture": "x86_64",
        "availabilityZone": "eu-west-1b", "imageId": "ami-0abcdef1234567890",
        "instanceId": instance, "instanceType": "m5.large", "pendingTime": pending,
        "privateIp": "10.0.1.7", "region": "eu-west-1", "version": "2017-09-30"})
    .to_string()
}

/// An RSA test signer made with openssl: a self-signed certificate like AWS's region
/// certificates, and its key.
pub struct Signer {
    pub dir: tempfile::TempDir,
}

impl Signer {
    pub fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        self_signed(dir.path(), "key.pem", "cert.pem", name);
        Signer { dir }
    }

    pub fn cert_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("cert.pem")).unwrap()
    }

    /// A signer like Azure's attested data: a test CA (`ca.pem`) and a certificate it issued
    /// for metadata.azure.com (serverAuth).
    pub fn azure() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        self_signed(d, "ca.key", "ca.pem", "azure-test-ca");
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=metadata.azure.com",
            ],
            None,
        );
        std::fs::write(d.join("ext.cnf"), "subjectAltName=DNS:metadata.azure.com\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n").unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "cert.pem",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
            None,
        );
        Signer { dir }
    }

    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ca.pem")).unwrap()
    }

    /// `document` signed as EC2's `rsa2048` (no certificates) or Azure's attested data (with the
    /// signer's certificate): PKCS#7 SignedData with the content, SHA-256, streamed BER, base64
    /// without PEM armour.
    pub fn pkcs7(&self, document: &str, with_cert: bool) -> String {
        self.cms(document, false, with_cert)
    }

    /// `document` signed as `rsa2048` in the detached form (content not included, DER).
    pub fn pkcs7_detached(&self, document: &str) -> String {
        self.cms(document, true, false)
    }

    fn cms(&self, document: &str, detached: bool, with_cert: bool) -> String {
        let mut args = vec![
            "cms", "-sign", "-signer", "cert.pem", "-inkey", "key.pem", "-md", "sha256",
        ];
        args.extend(["-binary", "-outform", "DER"]);
        if !detached {
            args.extend(["-nodetach", "-stream"]);
        }
        if !with_cert {
            args.push("-nocerts");
        }
        let der = openssl(self.dir.path(), &args, Some(document.as_bytes()));
        base64::engine::general_purpose::STANDARD.encode(der)
    }

    /// An RS256 JWT over `payload` with key id `kid`.
    pub fn jwt(&self, kid: &str, payload: &serde_json::Value) -> String {
        let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let header = serde_json::json!({"alg": "RS256", "kid": kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            enc(header.to_string().as_bytes()),
            enc(payload.to_string().as_bytes())
        );
        let sig = openssl(
            self.dir.path(),
            &["dgst", "-sha256", "-sign", "key.pem"],
            Some(input.as_bytes()),
        );
        format!("{input}.{}", enc(&sig))
    }

    /// This key as a JWKS document with key id `kid`.
    pub fn jwks(&self, kid: &str) -> String {
        let out = openssl(
            self.dir.path(),
            &["rsa", "-in", "key.pem", "-noout", "-modulus"],
            None,
        );
        let hex_n = String::from_utf8(out)
            .unwrap()
            .trim()
            .trim_start_matches("Modulus=")
            .to_owned();
        let n = hex::decode(hex_n).unwrap();
        let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        serde_json::json!({"keys": [{"kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig",
            "n": enc(&n), "e": "AQAB"}]})
        .to_string()
    }
}

/// Azure's attested document content with `nonce`, valid from a minute ago for 6 hours.
pub fn azure_document(nonce: &str, subscription: &str) -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| {
        format!(
            "{:02}/{:02}/{:02} {:02}:{:02}:{:02} -0000",
            u8::from(t.month()),
            t.day(),
            t.year() % 100,
            t.hour(),
            t.minute(),
            t.second()
        )
    };
    serde_json::json!({"licenseType": "", "nonce": nonce,
        "plan": {"name": "", "product": "", "publisher": ""}, "sku": "22_04-lts-gen2",
        "subscriptionId": subscription, "vmId": "02aab8a4-74ef-476e-8182-f6d2ba4166a6",
        "timeStamp": {"createdOn": fmt(now - time::Duration::minutes(1)),
            "expiresOn": fmt(now + time::Duration::hours(6))}})
    .to_string()
}

/// The payload of a GCE identity token (`format=full`).
pub fn gce_claims(
    audience: &str,
    project: &str,
    instance: &str,
    exp_in: i64,
    iat_in: i64,
) -> serde_json::Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    serde_json::json!({"iss": "https://accounts.google.com", "aud": audience, "azp": "1",
        "iat": now + iat_in, "exp": now + exp_in, "google": {"compute_engine": {
        "project_id": project, "project_number": 1234, "zone": "europe-west1-b",
        "instance_id": instance, "instance_name": "worker-gce",
        "instance_creation_timestamp": now - 30}}})
}

/// A self-signed RSA-2048 certificate `cert` with key `key` in `dir`, named `name`.
fn self_signed(dir: &Path, key: &str, cert: &str, name: &str) {
    let subject = format!("/CN={name}");
    let args = [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
    ];
    let args: Vec<&str> = args
        .into_iter()
        .chain(["-days", "2", "-subj", &subject])
        .collect();
    openssl(dir, &args, None);
}

/// Runs `openssl ARGS` in `dir` with `stdin`; returns stdout.
pub fn openssl(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl (apt-get install openssl)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or_default())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The real `kiln-firstboot join-service`, its stderr (the audit log) in a file; killed on drop.
pub struct JoinService {
    pub child: Child,
    pub log: PathBuf,
    pub url: String,
}

impl JoinService {
    /// Starts the service with `config` (TOML) for `cluster`, in network namespace `netns` if
    /// given, waiting until it says it is ready.
    pub fn start(cluster: &Cluster, config: &str, port: u16, netns: Option<&str>) -> Self {
        let path = cluster.dir.join("join-service.toml");
        std::fs::write(&path, config).unwrap();
        let log = cluster.dir.join("join-service.log");
        let bin = env!("CARGO_BIN_EXE_kiln-firstboot");
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, bin]);
                c
            }
            None => Command::new(bin),
        };
        let child = command
            .args(["join-service", "--config"])
            .arg(&path)
            .arg("--pki-dir")
            .arg(cluster.dir.join("pki"))
            .arg("--kubeconfig")
            .arg(cluster.dir.join("admin.conf"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut service = JoinService {
            child,
            log,
            url: format!("https://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !service.audit().contains("join service ready") {
            assert!(
                Instant::now() < deadline,
                "join service did not start:\n{}",
                service.audit()
            );
            assert!(
                service.child.try_wait().unwrap().is_none(),
                "join service exited:\n{}",
                service.audit()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        service
    }

    /// Everything the service logged so far.
    pub fn audit(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for JoinService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads one HTTP/1.1 request (head and Content-Length body) from `reader`.
pub fn read_request(reader: &mut impl BufRead) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = header.split_once(':') {
            if n.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, body))
}
