//! TLS for kiln's HTTP clients: rustls with the aws-lc crypto provider and the WebPKI roots
//! compiled in (no dependence on the host's certificate store, which a fresh node may lack).

use std::sync::Arc;

use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

/// The TLS configuration every kiln HTTP client uses.
pub fn webpki() -> TlsConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::WebPki)
        .unversioned_rustls_crypto_provider(provider)
        .build()
}

/// TLS that accepts any certificate: only for a probe that asks whether a server is up and
/// trusts nothing it answers (the control plane's `/readyz` before `kubeadm join`, whose
/// discovery then pins the CA).
pub fn unverified() -> TlsConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .disable_verification(true)
        .unversioned_rustls_crypto_provider(provider)
        .build()
}

/// TLS that trusts only the CA certificate `ca_der` (a cluster CA the caller pinned by hash, as
/// kubeadm's discovery does), with the usual name and validity checks.
pub fn pinned(ca_der: &[u8]) -> TlsConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let ca = ureq::tls::Certificate::from_der(ca_der).to_owned();
    TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::Specific(Arc::new(vec![ca])))
        .unversioned_rustls_crypto_provider(provider)
        .build()
}
