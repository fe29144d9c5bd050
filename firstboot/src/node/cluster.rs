//! After `kubeadm init`, through the Kubernetes API (kube crate), kept thin: apply the CNI
//! manifest (server-side apply) and wait (bounded) for the node to be Ready. (Untainting and
//! labels need no API calls: kubeadm registers the node with the rendered taints and labels.)

use anyhow::Context as _;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kiln_core::retry::Policy;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::pinned_kind;
use kube::Client;

/// kiln's field manager for server-side apply.
const FIELD_MANAGER: &str = "kiln-firstboot";

/// A client from a kubeconfig file (e.g. /etc/kubernetes/admin.conf).
pub async fn client_from_kubeconfig(path: &std::path::Path) -> anyhow::Result<Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    Ok(Client::try_from(config)?)
}

/// Applies every document of a multi-document YAML manifest with server-side apply.
pub async fn apply_manifest(client: &Client, yaml: &str) -> anyhow::Result<usize> {
    let mut applied = 0;
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(yaml).enumerate() {
        let value = <serde_yaml_ng::Value as serde::Deserialize>::deserialize(doc)
            .with_context(|| format!("manifest document {}", i + 1))?;
        if value.is_null() {
            continue;
        }
        let obj: DynamicObject = serde_yaml_ng::from_value(value)
            .with_context(|| format!("manifest document {}", i + 1))?;
        let types = obj
            .types
            .clone()
            .ok_or_else(|| anyhow::anyhow!("manifest document {}: no apiVersion/kind", i + 1))?;
        let gvk = GroupVersionKind::try_from(&types)?;
        let name = obj
            .metadata
            .name
            .clone()
            .ok_or_else(|| anyhow::anyhow!("manifest document {}: no metadata.name", i + 1))?;
        let (resource, caps) = pinned_kind(client, &gvk).await?;
        let api: Api<DynamicObject> = match (&caps.scope, &obj.metadata.namespace) {
            (kube::discovery::Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(client.clone(), ns, &resource)
            }
            (kube::discovery::Scope::Namespaced, None) => {
                Api::default_namespaced_with(client.clone(), &resource)
            }
            (kube::discovery::Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
        };
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&obj),
        )
        .await?;
        tracing::info!(kind = %gvk.kind, name, "applied");
        applied += 1;
    }
    Ok(applied)
}

/// Waits until `node` reports Ready=True, polling every `interval` (jittered), at most
/// `timeout`.
pub async fn wait_ready(
    client: &Client,
    node: &str,
    interval: Duration,
    timeout: Duration,
) -> anyhow::Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let mut schedule = Policy::every(interval, Instant::now() + timeout).schedule();
    let poll = async {
        loop {
            if let Ok(Some(n)) = api.get_opt(node).await {
                let ready = n
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                if ready {
                    return true;
                }
            }
            match schedule.next_pause(Instant::now()) {
                Some(pause) => tokio::time::sleep(pause).await,
                None => return false,
            }
        }
    };
    // The timeout also bounds a request that hangs.
    match tokio::time::timeout(timeout, poll).await {
        Ok(true) => Ok(()),
        _ => anyhow::bail!("node {node} not Ready after {timeout:?}"),
    }
}

#[cfg(test)]
mod tests {
    //! kube-rs's documented test approach: a `tower_test` mock service behind a real `Client`,
    //! with a task that checks each request and answers it.
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    fn mock() -> (Client, Handle) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        (Client::new(service, "default"), handle)
    }

    async fn body_json(req: Request<Body>) -> serde_json::Value {
        let bytes = req.into_body().collect_bytes().await.unwrap();
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
    }

    fn respond(json: serde_json::Value) -> Response<Body> {
        Response::builder()
            .body(Body::from(serde_json::to_vec(&json).unwrap()))
            .unwrap()
    }

    fn node(taints: serde_json::Value, ready: &str) -> serde_json::Value {
        serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "cp-0"},
            "spec": {"taints": taints},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}})
    }

    #[tokio::test]
    async fn wait_ready_polls_until_ready_and_is_bounded() {
        let (client, mut handle) = mock();
        let server = tokio::spawn(async move {
            for ready in ["False", "True"] {
                let (_req, send) = handle.next_request().await.unwrap();
                send.send_response(respond(node(serde_json::json!([]), ready)));
            }
        });
        wait_ready(
            &client,
            "cp-0",
            Duration::from_millis(10),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        server.await.unwrap();

        let (client, mut handle) = mock();
        tokio::spawn(async move {
            while let Some((_req, send)) = handle.next_request().await {
                send.send_response(respond(node(serde_json::json!([]), "False")));
            }
        });
        let err = wait_ready(
            &client,
            "cp-0",
            Duration::from_millis(10),
            Duration::from_millis(100),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("not Ready"), "{err}");
    }

    #[tokio::test]
    async fn manifests_are_server_side_applied_per_document() {
        let (client, mut handle) = mock();
        let server = tokio::spawn(async move {
            let (req, send) = handle.next_request().await.unwrap();
            assert_eq!(req.uri().path(), "/apis/apps/v1");
            send.send_response(respond(serde_json::json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1",
                "resources": [{"name": "daemonsets", "singularName": "daemonset", "namespaced": true, "kind": "DaemonSet", "verbs": ["get", "patch"]}]})));
            let (req, send) = handle.next_request().await.unwrap();
            assert_eq!(req.method().as_str(), "PATCH");
            assert_eq!(
                req.uri().path(),
                "/apis/apps/v1/namespaces/kube-system/daemonsets/cni"
            );
            assert!(
                req.uri()
                    .query()
                    .unwrap()
                    .contains("fieldManager=kiln-firstboot"),
                "{:?}",
                req.uri()
            );
            let body = body_json(req).await;
            assert_eq!(body["kind"], "DaemonSet");
            send.send_response(respond(body));
        });
        let yaml = "---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: cni\n  namespace: kube-system\nspec: {}\n---\n";
        assert_eq!(apply_manifest(&client, yaml).await.unwrap(), 1);
        server.await.unwrap();
    }
}
