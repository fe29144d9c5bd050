//! The service's HTTPS front: hyper (HTTP/1.1, already in the tree through kube) over
//! tokio-rustls, with a serving certificate made at start from the cluster CA
//! (`/etc/kubernetes/pki/ca.{crt,key}`) for the host of the service URL, so nodes pin it with
//! the `ca_cert_hashes` they already carry. Bounded: connections at once, header and
//! connection time, body size.
//!
//! Routes: `GET /ca.crt` (the CA certificate, public: nodes check its hash against their pins
//! before trusting it, as kubeadm's discovery does with cluster-info), `GET /nonce` (Azure),
//! `POST /join`.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use kiln_core::pki::cert::{Ca, CertSpec, Usage, LEAF_VALIDITY};
use kiln_core::pki::{KeyType, PrivateKey};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::Service;

/// The largest request body.
pub const MAX_BODY: usize = 64 << 10;
/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 256;
/// Time for the TLS handshake and the request head.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for one whole connection.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// The TLS side: the server config and the CA certificate it chains to.
pub struct Tls {
    /// rustls config with the serving certificate and the CA.
    pub config: Arc<rustls::ServerConfig>,
    /// The CA certificate (PEM), served at `/ca.crt`.
    pub ca_pem: String,
}

/// The host part of `https://host[:port]`.
fn url_host(url: &str) -> &str {
    let rest = url.trim_start_matches("https://").trim_end_matches('/');
    if let Some(v6) = rest.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    rest.rsplit_once(':').map_or(rest, |(h, _)| h)
}

/// A serving certificate for the host of `url`, signed by the CA in `pki_dir`.
pub fn tls(pki_dir: &Path, url: &str) -> anyhow::Result<Tls> {
    let ca = Ca::load(&pki_dir.join("ca.crt"), &pki_dir.join("ca.key"))
        .with_context(|| format!("loading the cluster CA from {}", pki_dir.display()))?;
    let key = PrivateKey::generate(KeyType::EcdsaP256)?;
    let host = url_host(url);
    let mut spec = CertSpec {
        common_name: "kiln-join-service".into(),
        usages: vec![Usage::Server],
        ..CertSpec::default()
    };
    match host.parse::<IpAddr>() {
        Ok(ip) => spec.ips.push(ip),
        Err(_) => spec.dns_names.push(host.to_owned()),
    }
    let now = time::OffsetDateTime::now_utc();
    let leaf = ca.issue(&spec, &key, now, LEAF_VALIDITY)?;
    let chain = vec![
        CertificateDer::from_pem_slice(leaf.as_bytes()).context("serving certificate")?,
        CertificateDer::from(ca.cert_der().to_vec()),
    ];
    let key = PrivateKeyDer::from_pem_slice(key.to_pem()?.as_bytes()).context("serving key")?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        ca_pem: ca.cert_pem(),
    })
}

/// Serves `service` on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Tls,
    service: Arc<Service>,
) -> anyhow::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
    let ca_pem: Arc<str> = tls.ca_pem.into();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = slots.clone().acquire_owned().await?;
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors or a connection reset before accept: keep serving.
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (acceptor, service, ca_pem) = (acceptor.clone(), service.clone(), ca_pem.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let Ok(Ok(stream)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
            else {
                return;
            };
            let peer = peer.ip().to_string();
            let handler = hyper::service::service_fn(move |req| {
                let (service, ca_pem, peer) = (service.clone(), ca_pem.clone(), peer.clone());
                async move {
                    Ok::<_, std::convert::Infallible>(route(req, &service, &ca_pem, &peer).await)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(TokioIo::new(stream), handler);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
        });
    }
}

async fn route(
    req: Request<Incoming>,
    service: &Service,
    ca_pem: &str,
    peer: &str,
) -> Response<Full<Bytes>> {
    let (status, body, kind) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/ca.crt") => (200, ca_pem.to_owned(), "application/x-pem-file"),
        (&Method::GET, "/nonce") => {
            let (status, body) = service.nonce(peer);
            (status, body, "application/json")
        }
        (&Method::POST, "/join") => {
            let (status, body) = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                Ok(body) => service.join(&body.to_bytes(), peer).await,
                Err(_) => service.refuse(peer, "request body over 64 KiB or unreadable"),
            };
            (status, body, "application/json")
        }
        _ => (
            404,
            "{\"error\":\"not found\"}".to_owned(),
            "application/json",
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", kind)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::url_host;

    #[test]
    fn host_of_the_url() {
        assert_eq!(url_host("https://10.0.0.10:9443"), "10.0.0.10");
        assert_eq!(url_host("https://[fd00::1]:9443/"), "fd00::1");
        assert_eq!(url_host("https://join.example.com"), "join.example.com");
    }
}
