//! The one shape of instance metadata every datasource produces: the `v1` values cloud-init's
//! jinja templates know, plus the provider's raw metadata as `meta_data`.

use serde::Serialize;

/// Instance metadata, written as `metadata.json` (keys exactly as named here).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metadata {
    /// The kiln datasource name (`ec2`, `nocloud`, ...).
    pub platform: String,
    /// cloud-init's `v1.cloud_name` (`aws`, `gce`, `azure`, ...).
    pub cloud_name: String,
    /// The instance's id.
    pub instance_id: Option<String>,
    /// The hostname the platform gives the instance.
    pub local_hostname: Option<String>,
    /// The first private IPv4 address.
    pub local_ipv4: Option<String>,
    /// The first IPv6 address.
    pub local_ipv6: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Availability zone.
    pub availability_zone: Option<String>,
    /// The provider's raw metadata (a JSON object): jinja's `ds.meta_data`.
    pub meta_data: serde_json::Value,
}

impl Metadata {
    /// Metadata of `platform` with only the raw part known yet.
    pub fn new(platform: &str, cloud_name: &str, meta_data: serde_json::Value) -> Self {
        Metadata {
            platform: platform.into(),
            cloud_name: cloud_name.into(),
            instance_id: None,
            local_hostname: None,
            local_ipv4: None,
            local_ipv6: None,
            region: None,
            availability_zone: None,
            meta_data,
        }
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("metadata serializes");
        s.push('\n');
        s
    }
}

/// What a datasource found.
pub struct Fetched {
    /// The user-data bytes, unchanged (gzip and MIME are the user-data engine's business).
    pub user_data: Option<Vec<u8>>,
    /// NoCloud's `network-config`, unchanged, when the medium has one.
    pub network_config: Option<Vec<u8>>,
    /// The instance metadata.
    pub metadata: Metadata,
}

impl Fetched {
    /// User-data and metadata without a network config.
    pub fn new(user_data: Option<Vec<u8>>, metadata: Metadata) -> Self {
        Fetched {
            user_data,
            network_config: None,
            metadata,
        }
    }
}

impl std::fmt::Debug for Fetched {
    // User-data carries secrets: show only its size.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("user_data_bytes", &self.user_data.as_ref().map(Vec::len))
            .field("metadata", &self.metadata)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_exactly_the_documented_keys() {
        let m = Metadata::new("ec2", "aws", serde_json::json!({}));
        let v: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "availability_zone",
                "cloud_name",
                "instance_id",
                "local_hostname",
                "local_ipv4",
                "local_ipv6",
                "meta_data",
                "platform",
                "region"
            ]
        );
    }

    #[test]
    fn debug_hides_user_data() {
        let f = Fetched::new(
            Some(b"secret-token".to_vec()),
            Metadata::new("nocloud", "nocloud", serde_json::json!({})),
        );
        assert!(!format!("{f:?}").contains("secret"));
    }
}
