//! Google Compute Engine metadata server: `GET /computeMetadata/v1/instance/?recursive=true` and
//! the `user-data` attribute, both with `Metadata-Flavor: Google`; an answer without that header
//! is not the metadata server.

use super::{
    json_str, non_empty, parse_json, Datasource, Env, Error, Fetched, Metadata, Result, LINK_LOCAL,
};

const FLAVOR: (&str, &str) = ("Metadata-Flavor", "Google");

/// The GCE datasource.
#[derive(Debug)]
pub struct Gce;

impl Datasource for Gce {
    fn name(&self) -> &'static str {
        "gce"
    }

    fn fetch(&self, env: &Env) -> Result<Fetched> {
        let base = format!("{}/computeMetadata/v1/instance", env.base_url(LINK_LOCAL));
        let url = format!("{base}/?recursive=true&alt=json");
        let reply = env.http.send("GET", &url, &[FLAVOR])?;
        if reply.status != 200 {
            return Err(Error::status(&url, reply.status));
        }
        if reply.header("metadata-flavor") != Some("Google") {
            return Err(Error::malformed(
                url,
                "answer without the header Metadata-Flavor: Google",
            ));
        }
        let raw = parse_json(&url, &reply.body)?;
        let user_data = non_empty(
            env.http
                .get_optional(&format!("{base}/attributes/user-data"), &[FLAVOR])?,
        );
        Ok(Fetched::new(user_data, metadata(raw)))
    }
}

/// The instance identity token for the join service at `audience` (`format=full`: with the
/// project, zone and instance claims), an RS256 JWT signed by Google.
pub fn identity(env: &Env, audience: &str) -> Result<crate::joinsvc::identity::Proof> {
    let url = format!(
        "{}/computeMetadata/v1/instance/service-accounts/default/identity?audience={}&format=full",
        env.base_url(LINK_LOCAL),
        query_escape(audience)
    );
    let token = String::from_utf8(env.http.get(&url, &[FLAVOR])?)
        .map_err(|_| Error::malformed(&url, "not UTF-8 text"))?;
    Ok(crate::joinsvc::identity::Proof::Gce {
        token: token.trim().to_owned(),
    })
}

/// `text` percent-encoded for a query value (RFC 3986 unreserved characters kept).
fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Metadata from the recursive instance document; the user-data attribute is left out of
/// `meta_data` (it is written to its own file).
fn metadata(mut raw: serde_json::Value) -> Metadata {
    if let Some(attrs) = raw.get_mut("attributes").and_then(|a| a.as_object_mut()) {
        attrs.remove("user-data");
    }
    let zone = json_str(&raw, "/zone").map(|z| z.rsplit('/').next().unwrap_or_default().to_owned());
    let mut m = Metadata::new("gce", "gce", raw.clone());
    m.instance_id = json_str(&raw, "/id");
    m.local_hostname = json_str(&raw, "/hostname");
    m.local_ipv4 = json_str(&raw, "/networkInterfaces/0/ip");
    m.local_ipv6 = json_str(&raw, "/networkInterfaces/0/ipv6s/0");
    m.region = zone
        .as_deref()
        .and_then(|z| z.rsplit_once('-'))
        .map(|(r, _)| r.to_owned());
    m.availability_zone = zone;
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_region_and_hidden_user_data() {
        let raw = serde_json::json!({"id": 4520031799277581759u64, "hostname": "n1.c.p.internal",
            "zone": "projects/123/zones/us-central1-a", "networkInterfaces": [{"ip": "10.128.0.2"}],
            "attributes": {"user-data": "secret", "ssh-keys": "k"}});
        let m = metadata(raw);
        assert_eq!(m.instance_id.as_deref(), Some("4520031799277581759"));
        assert_eq!(m.availability_zone.as_deref(), Some("us-central1-a"));
        assert_eq!(m.region.as_deref(), Some("us-central1"));
        assert_eq!(m.local_ipv4.as_deref(), Some("10.128.0.2"));
        assert!(!m.meta_data.to_string().contains("secret"));
    }

    #[test]
    fn audiences_are_escaped() {
        assert_eq!(
            query_escape("https://10.0.0.1:9443"),
            "https%3A%2F%2F10.0.0.1%3A9443"
        );
    }
}
