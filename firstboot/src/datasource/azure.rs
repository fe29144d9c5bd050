//! Microsoft Azure Instance Metadata Service: `GET /metadata/instance` and
//! `/metadata/instance/compute/userData` (base64) with the header `Metadata: true`.

use base64::Engine;

use super::{
    json_str, parse_json, text, Datasource, Env, Error, Fetched, Metadata, Result, LINK_LOCAL,
};

const HEADER: (&str, &str) = ("Metadata", "true");

/// The Azure datasource.
#[derive(Debug)]
pub struct Azure;

impl Datasource for Azure {
    fn name(&self) -> &'static str {
        "azure"
    }

    fn fetch(&self, env: &Env) -> Result<Fetched> {
        let base = format!("{}/metadata/instance", env.base_url(LINK_LOCAL));
        let url = format!("{base}?api-version=2021-02-01");
        let raw = parse_json(&url, &env.http.get(&url, &[HEADER])?)?;
        let ud_url = format!("{base}/compute/userData?api-version=2021-01-01&format=text");
        let user_data = match text(env.http.get_optional(&ud_url, &[HEADER])?) {
            Some(b64) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| {
                        Error::malformed(&ud_url, format!("userData is not base64: {e}"))
                    })?,
            ),
            None => None,
        };
        Ok(Fetched::new(super::non_empty(user_data), metadata(raw)))
    }
}

/// Metadata from the instance document; `userData` and `customData` stay out of `meta_data`.
fn metadata(mut raw: serde_json::Value) -> Metadata {
    if let Some(compute) = raw.get_mut("compute").and_then(|c| c.as_object_mut()) {
        compute.remove("userData");
        compute.remove("customData");
    }
    let mut m = Metadata::new("azure", "azure", raw.clone());
    m.instance_id = json_str(&raw, "/compute/vmId");
    m.local_hostname = json_str(&raw, "/compute/osProfile/computerName")
        .or_else(|| json_str(&raw, "/compute/name"));
    m.local_ipv4 = json_str(
        &raw,
        "/network/interface/0/ipv4/ipAddress/0/privateIpAddress",
    );
    m.local_ipv6 = json_str(
        &raw,
        "/network/interface/0/ipv6/ipAddress/0/privateIpAddress",
    );
    m.region = json_str(&raw, "/compute/location");
    m.availability_zone = json_str(&raw, "/compute/zone");
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_compute_and_network() {
        let raw = serde_json::json!({"compute": {"vmId": "02aab8a4", "name": "vm1", "location": "westeurope",
            "zone": "1", "userData": "c2VjcmV0", "osProfile": {"computerName": "node-1"}},
            "network": {"interface": [{"ipv4": {"ipAddress": [{"privateIpAddress": "10.1.0.4"}]},
            "ipv6": {"ipAddress": []}}]}});
        let m = metadata(raw);
        assert_eq!(m.instance_id.as_deref(), Some("02aab8a4"));
        assert_eq!(m.local_hostname.as_deref(), Some("node-1"));
        assert_eq!(m.local_ipv4.as_deref(), Some("10.1.0.4"));
        assert_eq!(m.local_ipv6, None);
        assert_eq!(m.region.as_deref(), Some("westeurope"));
        assert!(!m.meta_data.to_string().contains("c2VjcmV0"));
    }
}
