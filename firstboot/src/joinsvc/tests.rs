//! The service's decisions end to end without HTTP: GCE identities signed with a test key, the
//! token Secret created against the kube crate's mock API (tower-test).

use std::sync::{Arc, Mutex};

use super::identity::Keys;
use super::jwt::tests::{sign, test_key};
use super::policy::Policy;
use super::*;

const POLICY: &str = r#"
listen = "127.0.0.1:9443"
url = "https://127.0.0.1:9443"
control_plane_endpoint = "10.0.0.10:6443"
google_keys = "/unused"
burst = 4
rate_per_second = 1

[[rule]]
name = "gce-workers"
platform = "gce"
accounts = ["p1"]
max_launch_age = "15m"
labels = { "example.com/pool" = "gce" }
"#;

/// A kube client whose API server records every created object and answers 201 with it.
pub(crate) fn mock_client() -> (kube::Client, Arc<Mutex<Vec<serde_json::Value>>>) {
    let (mock, mut handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    let created = Arc::new(Mutex::new(Vec::new()));
    let seen = created.clone();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let body = request.into_body().collect_bytes().await.unwrap();
            let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
            seen.lock().unwrap().push(value);
            send.send_response(
                http::Response::builder()
                    .status(201)
                    .body(kube::client::Body::from(body.to_vec()))
                    .unwrap(),
            );
        }
    });
    (kube::Client::new(mock, "default"), created)
}

fn identity(pair: &aws_lc_rs::rsa::KeyPair, project: &str, instance: &str) -> Vec<u8> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let payload = serde_json::json!({"iss": "https://accounts.google.com",
        "aud": "https://127.0.0.1:9443", "iat": now, "exp": now + 3600,
        "google": {"compute_engine": {"project_id": project, "instance_id": instance,
        "zone": "europe-west1-b", "instance_creation_timestamp": now - 30}}});
    serde_json::json!({"platform": "gce", "token": sign(pair, "k1", &payload)})
        .to_string()
        .into_bytes()
}

#[tokio::test]
async fn issues_one_token_per_instance_and_refuses_the_rest() {
    let (pair, key) = test_key();
    let keys = Keys {
        google: vec![key],
        ..Keys::default()
    };
    let (client, created) = mock_client();
    let service = Service::new(Policy::parse(POLICY).unwrap(), keys, client);

    let (status, body) = service
        .join(&identity(&pair, "p1", "111"), "10.0.1.7")
        .await;
    assert_eq!(status, 200, "{body}");
    let answer: Answer = serde_json::from_str(&body).unwrap();
    assert_eq!(answer.control_plane_endpoint, "10.0.0.10:6443");
    assert_eq!(answer.labels["example.com/pool"], "gce");
    let token = BootstrapToken::parse(answer.token.expose()).unwrap();
    let secrets = created.lock().unwrap().clone();
    assert_eq!(secrets.len(), 1);
    assert_eq!(
        secrets[0]["metadata"]["name"],
        format!("bootstrap-token-{}", token.id())
    );

    // A replay, another project, garbage: refused with nothing created.
    for body in [
        identity(&pair, "p1", "111"),
        identity(&pair, "p2", "222"),
        b"{\"platform\":".to_vec(),
    ] {
        let (status, reply) = service.join(&body, "10.0.1.7").await;
        assert_eq!((status, reply.as_str()), (403, REFUSED));
    }
    // The burst of 4 is spent: a flood is rate limited.
    let (status, reply) = service
        .join(&identity(&pair, "p1", "333"), "10.0.1.7")
        .await;
    assert_eq!((status, reply.as_str()), (429, REFUSED));
    assert_eq!(created.lock().unwrap().len(), 1);
}

#[test]
fn the_bucket_refills_at_its_rate() {
    let start = Instant::now();
    let mut b = Bucket::new(2, 10);
    b.at = start;
    assert!(b.take(start) && b.take(start) && !b.take(start));
    assert!(b.take(start + std::time::Duration::from_millis(100)));
    assert!(!b.take(start + std::time::Duration::from_millis(100)));
}
