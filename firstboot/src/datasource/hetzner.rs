//! Hetzner Cloud metadata: `/hetzner/v1/metadata` (YAML) and `/hetzner/v1/userdata`.

use super::{
    json_str, non_empty, parse_yaml, Datasource, Env, Fetched, Metadata, Result, LINK_LOCAL,
};

/// The Hetzner datasource.
#[derive(Debug)]
pub struct Hetzner;

impl Datasource for Hetzner {
    fn name(&self) -> &'static str {
        "hetzner"
    }

    fn fetch(&self, env: &Env) -> Result<Fetched> {
        let base = format!("{}/hetzner/v1", env.base_url(LINK_LOCAL));
        let url = format!("{base}/metadata");
        let raw = parse_yaml(&url, &env.http.get(&url, &[])?)?;
        let user_data = non_empty(env.http.get_optional(&format!("{base}/userdata"), &[])?);
        Ok(Fetched::new(user_data, metadata(raw)))
    }
}

/// Metadata from the YAML document.
fn metadata(raw: serde_json::Value) -> Metadata {
    let mut m = Metadata::new("hetzner", "hetzner", raw.clone());
    m.instance_id = json_str(&raw, "/instance-id");
    m.local_hostname = json_str(&raw, "/hostname");
    m.local_ipv4 = json_str(&raw, "/local-ipv4").or_else(|| json_str(&raw, "/public-ipv4"));
    m.region = json_str(&raw, "/region");
    m.availability_zone = json_str(&raw, "/availability-zone");
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_yaml_fields() {
        let raw = crate::datasource::parse_yaml(
            "x",
            b"hostname: node-1\ninstance-id: 42\npublic-ipv4: 203.0.113.5\nregion: eu-central\navailability-zone: fsn1-dc14\n",
        )
        .unwrap();
        let m = metadata(raw);
        assert_eq!(m.instance_id.as_deref(), Some("42"));
        assert_eq!(m.local_ipv4.as_deref(), Some("203.0.113.5"));
        assert_eq!(m.availability_zone.as_deref(), Some("fsn1-dc14"));
    }
}
