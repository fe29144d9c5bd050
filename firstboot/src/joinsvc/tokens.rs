//! Short-lived bootstrap tokens, made as `kubeadm token create` makes them: a Secret
//! `kube-system/bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token` with the
//! authentication and signing usages and the `system:bootstrappers:kubeadm:default-node-token`
//! group, created through the API server with admin.conf's credentials (kube crate). The
//! bootstrap signer in kube-controller-manager then signs `cluster-info` for the new token id,
//! which is what the node's discovery checks.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kiln_core::token::BootstrapToken;
use kube::api::{Api, ObjectMeta, PostParams};
use time::OffsetDateTime;

/// The group kubeadm gives node bootstrap tokens (and binds to node bootstrapping).
pub const NODE_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

/// The Secret for `token`, expiring `ttl` after `now`, described as being for `instance`.
pub fn secret(
    token: &BootstrapToken,
    now: OffsetDateTime,
    ttl: Duration,
    instance: &str,
) -> Secret {
    let expiration = (now + ttl)
        .replace_nanosecond(0)
        .unwrap_or(now + ttl)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let full = token.expose();
    let (_, secret) = full.split_once('.').unwrap_or_default();
    let entries = [
        ("token-id", token.id()),
        ("token-secret", secret),
        ("expiration", expiration.as_str()),
        (
            "description",
            &format!("kiln join service: instance {instance}"),
        ),
        ("usage-bootstrap-authentication", "true"),
        ("usage-bootstrap-signing", "true"),
        ("auth-extra-groups", NODE_GROUP),
    ];
    let data: BTreeMap<String, ByteString> = entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
        .collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(format!("bootstrap-token-{}", token.id())),
            namespace: Some("kube-system".into()),
            ..Default::default()
        },
        type_: Some("bootstrap.kubernetes.io/token".into()),
        data: Some(data),
        ..Default::default()
    }
}

/// Creates the token's Secret; an existing token id (a 36^6 collision) is an error.
pub async fn create(client: &kube::Client, secret: &Secret) -> anyhow::Result<()> {
    let api: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    api.create(&PostParams::default(), secret)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "creating the bootstrap token Secret: {}",
                kiln_core::redact::without_tokens(&e.to_string())
            )
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_shaped_as_kubeadm_makes_it() {
        let token = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1796032800).unwrap();
        let s = secret(&token, now, Duration::from_secs(900), "i-0abc");
        assert_eq!(s.metadata.name.as_deref(), Some("bootstrap-token-abcdef"));
        assert_eq!(s.type_.as_deref(), Some("bootstrap.kubernetes.io/token"));
        let data = s.data.unwrap();
        let get = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
        assert_eq!(get("token-secret"), "0123456789abcdef");
        assert_eq!(get("expiration"), "2026-11-30T10:15:00Z");
        assert_eq!(get("auth-extra-groups"), NODE_GROUP);
        assert_eq!(get("usage-bootstrap-signing"), "true");
        assert!(get("description").contains("i-0abc"));
    }
}
