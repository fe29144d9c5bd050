//! Waiting for the control plane before `kubeadm join`, so a worker that boots before its
//! control plane (an autoscaling group scaling out while the load balancer is still empty)
//! simply waits: TCP first, then the API server's `/readyz`, with backoff and jitter inside a
//! deadline.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use kiln_core::http;
use kiln_core::retry::{self, Policy};

/// First pause between attempts; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits until `endpoint` (`host:port`) accepts TCP and answers `/readyz` over HTTPS, or the
/// deadline passes. The probe does not verify the certificate: it only decides when to start
/// kubeadm, whose discovery then pins the CA.
pub fn wait_ready(endpoint: &str, deadline: Instant) -> anyhow::Result<()> {
    let agent = http::Options {
        env_proxy: false,
        verify_tls: false,
        total: Some(ATTEMPT_TIMEOUT),
        ..http::Options::new(concat!("kiln-firstboot/", env!("CARGO_PKG_VERSION")))
    }
    .agent();
    let policy = Policy::until(deadline, FIRST_BACKOFF, MAX_BACKOFF);
    let polled = policy.poll(
        |attempt| probe(&agent, endpoint).map(|()| attempt),
        |last, _| tracing::info!(endpoint, "control plane not ready yet ({last}); retrying"),
    );
    match polled {
        Ok(attempts) => {
            tracing::info!(endpoint, attempts, "control plane is ready");
            Ok(())
        }
        Err(retry::Error::GaveUp { attempts, last }) => {
            anyhow::bail!("control plane {endpoint} not ready after {attempts} attempts: {last}")
        }
    }
}

fn probe(agent: &ureq::Agent, endpoint: &str) -> Result<(), String> {
    let addr = endpoint
        .to_socket_addrs()
        .map_err(|e| format!("resolving {endpoint}: {e}"))?
        .next()
        .ok_or_else(|| format!("{endpoint} resolves to no address"))?;
    TcpStream::connect_timeout(&addr, ATTEMPT_TIMEOUT).map_err(|e| format!("TCP {addr}: {e}"))?;
    let status = readyz(agent, endpoint)?;
    if api_server_up(status) {
        Ok(())
    } else {
        Err(format!("/readyz answered {status}"))
    }
}

/// 200 is ready; 401/403 mean an API server that refuses anonymous requests, which is up.
fn api_server_up(status: u16) -> bool {
    matches!(status, 200 | 401 | 403)
}

fn readyz(agent: &ureq::Agent, endpoint: &str) -> Result<u16, String> {
    agent
        .get(&format!("https://{endpoint}/readyz"))
        .call()
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("/readyz: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_statuses() {
        for s in [200, 401, 403] {
            assert!(api_server_up(s));
        }
        for s in [500, 503, 404] {
            assert!(!api_server_up(s));
        }
    }

    #[test]
    fn a_closed_port_times_out_with_the_reason() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let start = Instant::now();
        let err = wait_ready(
            &format!("127.0.0.1:{port}"),
            Instant::now() + Duration::from_millis(1500),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("not ready after") && err.contains("TCP"),
            "{err}"
        );
        assert!(start.elapsed() < Duration::from_secs(3));
    }
}
