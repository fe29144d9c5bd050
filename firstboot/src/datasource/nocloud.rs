//! NoCloud (cloud-init's format): `meta-data` (YAML), `user-data` and `network-config` from a
//! `ds=nocloud;s=URL` seed on the kernel command line, the seed directory
//! `/var/lib/cloud/seed/nocloud`, or a medium labelled `cidata`/`CIDATA` (vfat or ISO 9660).

use super::cmdline::Cmdline;
use super::media::{find_by_label, Volume};
use super::{parse_yaml, url, Datasource, Env, Error, Fetched, Metadata, Result};

/// Filesystem labels of NoCloud media.
pub const LABELS: &[&str] = &["cidata", "CIDATA"];
/// The seed directory cloud-init reads before any medium.
pub const SEED_DIR: &str = "/var/lib/cloud/seed/nocloud";
/// The files of a NoCloud seed.
const FILES: [&str; 3] = ["meta-data", "user-data", "network-config"];

/// True when the seed directory below `env`'s sys-root holds `meta-data` or `user-data`.
pub fn seed_dir_present(env: &Env) -> bool {
    FILES[..2]
        .iter()
        .any(|f| env.path(&format!("{SEED_DIR}/{f}")).is_file())
}

/// The NoCloud datasource.
#[derive(Debug)]
pub struct NoCloud;

impl Datasource for NoCloud {
    fn name(&self) -> &'static str {
        "nocloud"
    }

    /// Local unless the kernel command line names a seed URL (`ds=nocloud;s=URL`).
    fn local(&self, env: &Env) -> bool {
        !matches!(Cmdline::read(env).nocloud, Some(Some(seed)) if !seed.starts_with("file:"))
    }

    fn fetch(&self, env: &Env) -> Result<Fetched> {
        let max = env.http.config().max_body;
        let (source, [meta, user, net]) = if let Some(Some(seed)) = Cmdline::read(env).nocloud {
            let base = if seed.ends_with('/') {
                seed.clone()
            } else {
                format!("{seed}/")
            };
            let files = read_all(|f| url::fetch(env, &format!("{base}{f}")))?;
            (seed, files)
        } else if seed_dir_present(env) {
            let files = read_all(|f| url::fetch(env, &format!("file://{SEED_DIR}/{f}")))?;
            (SEED_DIR.to_owned(), files)
        } else {
            let device = find_by_label(env, LABELS).ok_or_else(|| {
                Error::Missing("nocloud: no seed and no medium labelled cidata".into())
            })?;
            let mut volume = Volume::open(env, &device)?;
            let files = read_all(|f| volume.read(f, max))?;
            (device.display().to_string(), files)
        };
        let mut fetched = parse(
            &format!("{source}/meta-data"),
            meta.as_deref().unwrap_or_default(),
            user,
        )?;
        fetched.network_config = net;
        Ok(fetched)
    }
}

fn read_all(mut read: impl FnMut(&str) -> Result<Option<Vec<u8>>>) -> Result<[Option<Vec<u8>>; 3]> {
    Ok([read(FILES[0])?, read(FILES[1])?, read(FILES[2])?])
}

/// Builds the result from a seed's `meta-data` text and `user-data` bytes.
fn parse(source_name: &str, meta: &[u8], user: Option<Vec<u8>>) -> Result<Fetched> {
    let meta_data = parse_yaml(source_name, meta)?;
    let mut metadata = Metadata::new("nocloud", "nocloud", meta_data.clone());
    metadata.instance_id = super::json_str(&meta_data, "/instance-id");
    metadata.local_hostname = super::json_str(&meta_data, "/local-hostname")
        .or_else(|| super::json_str(&meta_data, "/hostname"));
    metadata.local_ipv4 = super::json_str(&meta_data, "/local-ipv4");
    metadata.region = super::json_str(&meta_data, "/region");
    metadata.availability_zone = super::json_str(&meta_data, "/availability-zone");
    Ok(Fetched::new(super::non_empty(user), metadata))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasource::test_env;

    #[test]
    fn seed_directory_is_read() {
        let (env, dir) = test_env(1.0);
        let seed = dir.path().join(SEED_DIR.trim_start_matches('/'));
        std::fs::create_dir_all(&seed).unwrap();
        std::fs::write(
            seed.join("meta-data"),
            "instance-id: iid-1\nlocal-hostname: node-1\n",
        )
        .unwrap();
        std::fs::write(seed.join("user-data"), "#cloud-config\n").unwrap();
        assert!(seed_dir_present(&env));
        let f = NoCloud.fetch(&env).unwrap();
        assert_eq!(f.user_data.as_deref(), Some(&b"#cloud-config\n"[..]));
        assert_eq!(f.metadata.instance_id.as_deref(), Some("iid-1"));
        assert_eq!(f.metadata.local_hostname.as_deref(), Some("node-1"));
        assert_eq!(f.network_config, None);
    }

    #[test]
    fn malformed_meta_data_names_the_file() {
        let err = parse("/dev/sr0/meta-data", b"- not: [a mapping", None).unwrap_err();
        assert!(err.to_string().contains("/dev/sr0/meta-data"), "{err}");
    }
}
