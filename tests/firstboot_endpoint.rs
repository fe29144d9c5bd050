//! Waiting for the control plane: an HTTPS server on 127.0.0.1 (certificate from kiln's own
//! PKI) that starts late; `wait_ready` keeps trying, then sees `/readyz` answer.

#[path = "firstboot/mod.rs"]
mod firstboot;

use std::time::{Duration, Instant};

use kiln_firstboot::node::endpoint::wait_ready;

#[test]
fn waits_for_a_control_plane_that_starts_late() {
    let port = firstboot::serve_readyz_late(Duration::from_millis(1500));
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
}
