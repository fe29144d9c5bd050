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

    fn local(&self, _env: &Env) -> bool {
        true
    }

    fn fetch(&self, env: &Env) -> Result<Fetched> {
        let key = present_key(env).ok_or_else(|| {
            Error::Missing(format!(
                "fwcfg: none of {KEYS:?} in /sys/firmware/qemu_fw_cfg"
            ))
        })?;
        let user_data = super::read_local(env, &raw_path(key), env.http.config().max_body)?;
        let mut metadata = Metadata::new("fwcfg", "qemu", serde_json::json!({ "fw_cfg_key": key }));
        metadata.instance_id = dmi_uuid(env);
        Ok(Fetched::new(super::non_empty(user_data), metadata))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasource::test_env;

    #[test]
    fn oversized_blobs_are_refused_without_reading_them() {
        let (env, dir) = test_env(1.0);
        let raw = dir.path().join(raw_path(KEYS[0]).trim_start_matches('/'));
        std::fs::create_dir_all(raw.parent().unwrap()).unwrap();
        // Sparse, 8 GiB: reading it all first would exhaust memory.
        std::fs::File::create(&raw)
            .unwrap()
            .set_len(8 << 30)
            .unwrap();
        let err = FwCfg.fetch(&env).unwrap_err().to_string();
        assert!(
            err.contains("larger than the limit of 1048576")
                && err.contains("opt/org.kiln/user-data"),
            "{err}"
        );
        std::fs::write(&raw, b"#cloud-config\n").unwrap();
        let f = FwCfg.fetch(&env).unwrap();
        assert_eq!(f.user_data.as_deref(), Some(&b"#cloud-config\n"[..]));
    }
}
