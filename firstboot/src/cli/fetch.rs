//! `kiln-firstboot fetch`: finds the platform, fetches user-data and metadata, and writes them
//! (or prints the metadata). Logs which source answered and why, never the user-data.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use kiln_firstboot::datasource::http::{Http, HttpConfig};
use kiln_firstboot::datasource::{choose_and_fetch, save, Env};

/// Options of `kiln-firstboot fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Use this datasource instead of searching: cmdline, fwcfg, nocloud, configdrive, ec2, gce,
    /// azure, openstack, digitalocean or hetzner.
    #[arg(long, value_name = "NAME")]
    datasource: Option<String>,
    /// Write DIR/user-data (raw bytes, 0600), DIR/metadata.json (0600) and, from NoCloud,
    /// DIR/network-config. Without it the metadata JSON is printed.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Total time for finding and fetching, retries included, in seconds.
    #[arg(long, value_name = "SECS", default_value = "120", value_parser = parse_secs)]
    timeout: Duration,
    /// Longest a single request may take, in seconds.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    request_timeout: Duration,
    /// Largest user-data (and metadata document) accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    max_size: u64,
    /// Root holding the machine's /proc/cmdline, /sys (DMI, fw_cfg, block devices), /dev and the
    /// NoCloud seed directory.
    #[arg(long, value_name = "DIR", default_value = "/")]
    sys_root: PathBuf,
    /// Base URL of the metadata service instead of http://169.254.169.254 (a proxy or a test
    /// server).
    #[arg(long, value_name = "URL")]
    metadata_url: Option<String>,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 1e6 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

impl FetchArgs {
    /// Runs the search and the fetch.
    pub fn run(self) -> anyhow::Result<()> {
        let env = Env {
            sys_root: self.sys_root.clone(),
            http: Http::new(HttpConfig {
                deadline: Instant::now() + self.timeout,
                request_timeout: self.request_timeout,
                max_body: self.max_size,
            }),
            metadata_url: self.metadata_url.clone(),
            wait_online: false,
        };
        let fetched = choose_and_fetch(&env, self.datasource.as_deref())?;
        match &self.out {
            Some(dir) => save(dir, &fetched),
            None => {
                print!("{}", fetched.metadata.to_json());
                Ok(())
            }
        }
    }
}

/// Logs what was found: sizes and the instance id, never contents.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse() {
        assert_eq!(parse_secs("0.5").unwrap(), Duration::from_millis(500));
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("soon").is_err());
    }
}
