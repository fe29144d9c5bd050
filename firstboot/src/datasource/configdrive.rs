//! OpenStack config drive: a medium labelled `config-2` (ISO 9660 or vfat) holding
//! `openstack/latest/meta_data.json` and `openstack/latest/user_data`.

use super::media::{find_by_label, Volume};
use super::{non_empty, openstack, Datasource, Env, Error, Fetched, Result};

/// Filesystem labels of config drives.
pub const LABELS: &[&str] = &["config-2", "CONFIG-2"];

/// The config drive datasource.
#[derive(Debug)]
pub struct ConfigDrive;

impl Datasource for ConfigDrive {
    fn name(&self) -> &'static str {
        "configdrive"
    }

    fn local(&self, _env: &Env) -> bool {
        true
    }

    fn fetch(&self, env: &Env) -> Result<Fetched> {
        let max = env.http.config().max_body;
        let device = find_by_label(env, LABELS)
            .ok_or_else(|| Error::Missing("configdrive: no medium labelled config-2".into()))?;
        let mut volume = Volume::open(env, &device)?;
        let meta_path = "openstack/latest/meta_data.json";
        let source = format!("{}:{meta_path}", device.display());
        let meta = volume
            .read(meta_path, max)?
            .ok_or_else(|| Error::Missing(format!("configdrive: {source} is missing")))?;
        let metadata = openstack::metadata("configdrive", "configdrive", &source, &meta)?;
        let user_data = non_empty(volume.read("openstack/latest/user_data", max)?);
        Ok(Fetched::new(user_data, metadata))
    }
}
