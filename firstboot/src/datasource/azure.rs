//! Microsoft Azure: the Instance Metadata Service (`GET /metadata/instance` and
//! `/metadata/instance/compute/userData`, base64, with the header `Metadata: true`), and when
//! IMDS has no userData, `customData` from `ovf-env.xml` on the provisioning medium.

use base64::Engine;

use super::media::{block_devices, Volume};

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
            Some(b64) => Some(decode(&ud_url, "userData", &b64)?),
            None => custom_data(env)?,
        };
        Ok(Fetched::new(super::non_empty(user_data), metadata(raw)))
    }
}

/// The attested document for the join service: `signature` (base64 PKCS#7) of
/// `/metadata/attested/document` asked with the service's `nonce`.
pub fn identity(env: &Env, nonce: &str) -> Result<crate::joinsvc::identity::Proof> {
    let url = format!(
        "{}/metadata/attested/document?api-version=2020-09-01&nonce={nonce}",
        env.base_url(LINK_LOCAL)
    );
    let doc = parse_json(&url, &env.http.get(&url, &[HEADER])?)?;
    let signature = json_str(&doc, "/signature")
        .ok_or_else(|| Error::malformed(&url, "no signature in the attested document"))?;
    Ok(crate::joinsvc::identity::Proof::Azure { signature })
}

fn decode(source: &str, what: &str, b64: &str) -> Result<Vec<u8>> {
    let clean: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean)
        .map_err(|e| Error::malformed(source, format!("{what} is not base64: {e}")))
}

/// `customData` from the first ISO 9660 or vfat device that holds `ovf-env.xml` (Azure's
/// provisioning medium). UDF-only media are not read.
fn custom_data(env: &Env) -> Result<Option<Vec<u8>>> {
    let max = env.http.config().max_body;
    for device in block_devices(env) {
        let Ok(mut volume) = Volume::open(env, &device) else {
            continue;
        };
        if let Some(xml) = volume.read("ovf-env.xml", max)? {
            let source = format!("{}:ovf-env.xml", device.display());
            tracing::info!("azure: no userData in IMDS; reading customData from {source}");
            return match element_text(&String::from_utf8_lossy(&xml), "CustomData") {
                Some(b64) => decode(&source, "CustomData", &b64).map(Some),
                None => Ok(None),
            };
        }
    }
    Ok(None)
}

/// The text of the first element called `name` with any namespace prefix (`<CustomData>` or
/// `<ns1:CustomData>`); `None` if there is none or it is empty.
fn element_text(xml: &str, name: &str) -> Option<String> {
    let mut rest = xml;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        let tag_end = rest.find('>')?;
        let tag = &rest[..tag_end];
        let tag_name = tag.split_whitespace().next().unwrap_or("");
        if tag_name.rsplit(':').next() == Some(name) && !tag.ends_with('/') {
            let body = &rest[tag_end + 1..];
            let text = body[..body.find("</")?].trim();
            return (!text.is_empty()).then(|| text.to_owned());
        }
    }
    None
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
    fn custom_data_element_with_or_without_prefix() {
        let xml = "<Environment><wa:ProvisioningSection><LinuxProvisioningConfigurationSet>\
                   <HostName>n</HostName><ns1:CustomData>I2Nsb3Vk\nLWNvbmZpZw==</ns1:CustomData>";
        assert_eq!(
            element_text(xml, "CustomData").as_deref(),
            Some("I2Nsb3Vk\nLWNvbmZpZw==")
        );
        assert_eq!(
            decode("x", "CustomData", "I2Nsb3Vk\nLWNvbmZpZw==").unwrap(),
            b"#cloud-config"
        );
        assert_eq!(element_text("<a><CustomData/></a>", "CustomData"), None);
        assert_eq!(
            element_text("<a><CustomData></CustomData></a>", "CustomData"),
            None
        );
        assert_eq!(
            element_text("<a><NotCustomData>x</NotCustomData></a>", "CustomData"),
            None
        );
        assert!(decode("dev:ovf-env.xml", "CustomData", "***").is_err());
    }

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
