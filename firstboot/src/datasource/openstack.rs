//! The OpenStack metadata service: `/openstack/latest/meta_data.json` and `user_data`, the local
//! IPv4 address from the EC2-compatible `/latest/meta-data/local-ipv4`. The metadata parsing is
//! shared with the config drive.

use super::{
    json_str, non_empty, parse_json, text, Datasource, Env, Fetched, Metadata, Result, LINK_LOCAL,
};

/// Metadata from an OpenStack `meta_data.json` document (from `source_name`).
pub fn metadata(
    platform: &str,
    cloud_name: &str,
    source_name: &str,
    bytes: &[u8],
) -> Result<Metadata> {
    let raw = parse_json(source_name, bytes)?;
    let mut m = Metadata::new(platform, cloud_name, raw.clone());
    m.instance_id = json_str(&raw, "/uuid");
    m.local_hostname = json_str(&raw, "/hostname");
    m.availability_zone = json_str(&raw, "/availability_zone");
    Ok(m)
}

/// The OpenStack metadata service.
#[derive(Debug)]
pub struct OpenStack;

impl Datasource for OpenStack {
    fn name(&self) -> &'static str {
        "openstack"
    }

    fn fetch(&self, env: &Env) -> Result<Fetched> {
        let base = env.base_url(LINK_LOCAL);
        let meta_url = format!("{base}/openstack/latest/meta_data.json");
        let mut metadata = metadata(
            "openstack",
            "openstack",
            &meta_url,
            &env.http.get(&meta_url, &[])?,
        )?;
        metadata.local_ipv4 = text(
            env.http
                .get_optional(&format!("{base}/latest/meta-data/local-ipv4"), &[])?,
        );
        let user_data = non_empty(
            env.http
                .get_optional(&format!("{base}/openstack/latest/user_data"), &[])?,
        );
        Ok(Fetched::new(user_data, metadata))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_uuid_hostname_and_zone() {
        let doc = br#"{"uuid":"83679162-1378-4288-a2d4-70e13ec132aa","hostname":"node-1.novalocal","availability_zone":"nova","name":"node-1"}"#;
        let m = metadata("openstack", "openstack", "x", doc).unwrap();
        assert_eq!(
            m.instance_id.as_deref(),
            Some("83679162-1378-4288-a2d4-70e13ec132aa")
        );
        assert_eq!(m.local_hostname.as_deref(), Some("node-1.novalocal"));
        assert_eq!(m.availability_zone.as_deref(), Some("nova"));
        assert!(metadata("openstack", "openstack", "x", b"not json").is_err());
    }
}
