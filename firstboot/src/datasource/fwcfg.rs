//! QEMU fw_cfg: user-data passed with `-fw_cfg name=opt/org.kiln/user-data,file=...` (kiln's key)
//! or `name=opt/com.coreos/config,file=...` (Ignition's key), read from sysfs.

use super::{dmi_uuid, Datasource, Env, Error, Fetched, Metadata, Result};

/// The fw_cfg keys kiln reads, in order of preference.
pub const KEYS: &[&str] = &["opt/org.kiln/user-data", "opt/com.coreos/config"];

/// The sysfs file holding the blob of `key`.
pub fn raw_path(key: &str) -> String {
    format!("/sys/firmware/qemu_fw_cfg/by_name/{key}/raw")
}

/// The first fw_cfg key present below `env`'s sys-root.
pub fn present_key(env: &Env) -> Option<&'static str> {
    KEYS.iter()
        .copied()
        .find(|k| env.path(&raw_path(k)).is_file())
}

/// The QEMU fw_cfg datasource.
#[derive(Debug)]
pub struct FwCfg;

impl Datasource for FwCfg {
    fn name(&self) -> &'static str {
        "fwcfg"
    }

    fn fetch(&self, env: &Env) -> Result<Fetched> {
        let key = present_key(env).ok_or_else(|| {
            Error::Missing(format!(
                "fwcfg: none of {KEYS:?} in /sys/firmware/qemu_fw_cfg"
            ))
        })?;
        let path = env.path(&raw_path(key));
        let user_data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let limit = env.http.config().max_body;
        if user_data.len() as u64 > limit {
            return Err(Error::TooLarge {
                source_name: format!("fwcfg {key}"),
                limit,
            });
        }
        let mut metadata = Metadata::new("fwcfg", "qemu", serde_json::json!({ "fw_cfg_key": key }));
        metadata.instance_id = dmi_uuid(env);
        Ok(Fetched::new(super::non_empty(Some(user_data)), metadata))
    }
}
