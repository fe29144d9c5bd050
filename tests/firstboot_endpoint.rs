//! Waiting for the control plane: an HTTPS server on 127.0.0.1 (certificate from kiln's own
//! PKI) that starts late; `wait_ready` keeps trying, then sees `/readyz` answer.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_core::pki::cert::{cert_der_from_pem, Ca, CertSpec, Usage, LEAF_VALIDITY};
use kiln_core::pki::{KeyType, PrivateKey};
use kiln_firstboot::node::endpoint::wait_ready;
use time::OffsetDateTime;

fn tls_config() -> Arc<rustls::ServerConfig> {
    let now = OffsetDateTime::now_utc();
    let ca = Ca::generate(
        "kubernetes",
        PrivateKey::generate(KeyType::EcdsaP256).unwrap(),
        now,
    )
    .unwrap();
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let spec = CertSpec {
        common_name: "kube-apiserver".into(),
        ips: vec!["127.0.0.1".parse().unwrap()],
        usages: vec![Usage::Server],
        ..CertSpec::default()
    };
    let cert =
        cert_der_from_pem(&ca.issue(&spec, &key, now, LEAF_VALIDITY).unwrap(), "cert").unwrap();
    let key_der = pem::parse(key.to_pem().unwrap()).unwrap().into_contents();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.into()],
            rustls::pki_types::PrivateKeyDer::Sec1(key_der.into()),
        )
        .unwrap();
    Arc::new(config)
}

#[test]
fn waits_for_a_control_plane_that_starts_late() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = tls_config();
    let server = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        for stream in listener.incoming().flatten().take(2) {
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let mut buf = [0u8; 1024];
            if tls.read(&mut buf).is_ok() {
                let _ = tls.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        }
    });
    let start = Instant::now();
    wait_ready(
        &format!("127.0.0.1:{port}"),
        Instant::now() + Duration::from_secs(20),
    )
    .unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(1400),
        "did not wait for the late server"
    );
    drop(server);
}
