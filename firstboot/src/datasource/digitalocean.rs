//! DigitalOcean droplet metadata: `/metadata/v1.json` and `/metadata/v1/user-data`.

use super::{
    json_str, non_empty, parse_json, Datasource, Env, Fetched, Metadata, Result, LINK_LOCAL,
};

/// The DigitalOcean datasource.
#[derive(Debug)]
pub struct DigitalOcean;

impl Datasource for DigitalOcean {
    fn name(&self) -> &'static str {
        "digitalocean"
    }

    fn fetch(&self, env: &Env) -> Result<Fetched> {
        let base = format!("{}/metadata/v1", env.base_url(LINK_LOCAL));
        let url = format!("{base}.json");
        let raw = parse_json(&url, &env.http.get(&url, &[])?)?;
        let user_data = non_empty(env.http.get_optional(&format!("{base}/user-data"), &[])?);
        Ok(Fetched::new(user_data, metadata(raw)))
    }
}

/// Metadata from `v1.json`; its `user_data` copy stays out of `meta_data`.
fn metadata(mut raw: serde_json::Value) -> Metadata {
    if let Some(obj) = raw.as_object_mut() {
        obj.remove("user_data");
    }
    let mut m = Metadata::new("digitalocean", "digitalocean", raw.clone());
    m.instance_id = json_str(&raw, "/droplet_id");
    m.local_hostname = json_str(&raw, "/hostname");
    m.local_ipv4 = json_str(&raw, "/interfaces/private/0/ipv4/ip_address")
        .or_else(|| json_str(&raw, "/interfaces/public/0/ipv4/ip_address"));
    m.local_ipv6 = json_str(&raw, "/interfaces/public/0/ipv6/ip_address");
    m.region = json_str(&raw, "/region");
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_droplet_fields() {
        let raw = serde_json::json!({"droplet_id": 2756294, "hostname": "node-1", "region": "nyc3",
            "user_data": "secret", "interfaces": {"public": [{"ipv4": {"ip_address": "104.131.20.105"},
            "ipv6": {"ip_address": "2604:a880:800:10::7a4:6001"}}]}});
        let m = metadata(raw);
        assert_eq!(m.instance_id.as_deref(), Some("2756294"));
        assert_eq!(m.local_ipv4.as_deref(), Some("104.131.20.105"));
        assert_eq!(m.local_ipv6.as_deref(), Some("2604:a880:800:10::7a4:6001"));
        assert_eq!(m.region.as_deref(), Some("nyc3"));
        assert!(!m.meta_data.to_string().contains("secret"));
    }
}
