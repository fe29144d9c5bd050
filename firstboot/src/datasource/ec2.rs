//! Amazon EC2 instance metadata (IMDS): a session token from `PUT /latest/api/token` (IMDSv2),
//! sent with every GET; IMDSv1 (no token) only when the token call is refused with 403, 404 or
//! 405. A 404 for `/latest/user-data` means the instance has none.

use super::http::Http;
use super::url::redact;
use super::{
    json_str, non_empty, parse_json, text, Datasource, Env, Error, Fetched, Metadata, Result,
    LINK_LOCAL,
};

/// Token lifetime asked for, in seconds (6 hours, the maximum).
const TOKEN_TTL: &str = "21600";
/// Header carrying the token.
const TOKEN_HEADER: &str = "X-aws-ec2-metadata-token";

/// The EC2 datasource.
#[derive(Debug)]
pub struct Ec2;

/// An IMDSv2 session token, `None` for IMDSv1.
fn token(http: &Http, base: &str) -> Result<Option<String>> {
    let url = format!("{base}/latest/api/token");
    let reply = http.send(
        "PUT",
        &url,
        &[("X-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL)],
    )?;
    match reply.status {
        200 => Ok(Some(String::from_utf8_lossy(&reply.body).trim().to_owned())),
        403..=405 => {
            tracing::warn!(
                "ec2: {} answered {}; falling back to IMDSv1",
                redact(&url),
                reply.status
            );
            Ok(None)
        }
        status => Err(Error::status(&url, status)),
    }
}

impl Datasource for Ec2 {
    fn name(&self) -> &'static str {
        "ec2"
    }

    fn fetch(&self, env: &Env) -> Result<Fetched> {
        let base = env.base_url(LINK_LOCAL);
        let token = token(&env.http, &base)?;
        let headers: Vec<(&str, &str)> = token.iter().map(|t| (TOKEN_HEADER, t.as_str())).collect();
        let get = |path: &str| env.http.get_optional(&format!("{base}{path}"), &headers);
        let doc_url = format!("{base}/latest/dynamic/instance-identity/document");
        let doc = parse_json(&doc_url, &env.http.get(&doc_url, &headers)?)?;
        let hostname = text(get("/latest/meta-data/local-hostname")?);
        let ipv6 = text(get("/latest/meta-data/ipv6")?);
        let user_data = non_empty(get("/latest/user-data")?);
        Ok(Fetched::new(user_data, metadata(doc, hostname, ipv6)))
    }
}

/// The signed instance identity for the join service: the document and its `rsa2048` PKCS#7
/// signature (RSA-SHA256, base64), both asked with an IMDSv2 session token.
pub fn identity(env: &Env) -> Result<crate::joinsvc::identity::Proof> {
    let base = env.base_url(LINK_LOCAL);
    let token = token(&env.http, &base)?;
    let headers: Vec<(&str, &str)> = token.iter().map(|t| (TOKEN_HEADER, t.as_str())).collect();
    let get = |path: &str| -> Result<String> {
        let url = format!("{base}/latest/dynamic/instance-identity/{path}");
        String::from_utf8(env.http.get(&url, &headers)?)
            .map_err(|_| Error::malformed(url, "not UTF-8 text"))
    };
    Ok(crate::joinsvc::identity::Proof::Ec2 {
        document: get("document")?,
        signature: get("rsa2048")?,
    })
}

/// Metadata from the instance identity document and the separately fetched values, with
/// `meta_data` shaped like cloud-init's EC2 meta-data tree.
fn metadata(doc: serde_json::Value, hostname: Option<String>, ipv6: Option<String>) -> Metadata {
    let id = json_str(&doc, "/instanceId");
    let region = json_str(&doc, "/region");
    let zone = json_str(&doc, "/availabilityZone");
    let ipv4 = json_str(&doc, "/privateIp");
    let raw = serde_json::json!({
        "instance-id": id,
        "local-hostname": hostname,
        "local-ipv4": ipv4,
        "ipv6": ipv6,
        "instance-type": json_str(&doc, "/instanceType"),
        "ami-id": json_str(&doc, "/imageId"),
        "placement": { "region": region, "availability-zone": zone },
        "instance-identity": { "document": doc },
    });
    let mut m = Metadata::new("ec2", "aws", raw);
    (m.instance_id, m.local_hostname, m.local_ipv4, m.local_ipv6) = (id, hostname, ipv4, ipv6);
    (m.region, m.availability_zone) = (region, zone);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_from_identity_document() {
        let doc = serde_json::json!({"instanceId": "i-0abc", "region": "eu-west-1",
            "availabilityZone": "eu-west-1b", "privateIp": "10.0.1.7", "instanceType": "m5.large"});
        let m = metadata(doc, Some("ip-10-0-1-7.ec2.internal".into()), None);
        assert_eq!(m.instance_id.as_deref(), Some("i-0abc"));
        assert_eq!(m.region.as_deref(), Some("eu-west-1"));
        assert_eq!(m.availability_zone.as_deref(), Some("eu-west-1b"));
        assert_eq!(m.local_ipv4.as_deref(), Some("10.0.1.7"));
        assert_eq!(m.meta_data["local-hostname"], "ip-10-0-1-7.ec2.internal");
        assert_eq!(m.meta_data["placement"]["availability-zone"], "eu-west-1b");
    }
}
