//! Finding and fetching a node's user-data and instance metadata: one module per platform behind
//! the [`Datasource`] trait, one search order ([`detect`]) that picks the platform from cheap local
//! evidence before anything slow, and one [`Metadata`] shape for every platform.

mod azure;
mod cmdline;
mod configdrive;
mod detect;
mod digitalocean;
mod dmi;
mod ec2;
mod error;
mod fetch;
mod fwcfg;
mod gce;
mod hetzner;
pub mod http;
pub mod media;
mod metadata;
mod nocloud;
pub mod online;
mod openstack;
pub mod url;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use kiln_core::inroot::{InRoot, Last};

pub use detect::{detect, Choice};
pub use error::{Error, Result};
pub use fetch::{choose_and_fetch, save};
pub use metadata::{Fetched, Metadata};

/// Every datasource name `--datasource` and `kiln.datasource=` accept, in search order.
pub const NAMES: &[&str] = &[
    "cmdline",
    "fwcfg",
    "nocloud",
    "configdrive",
    "ec2",
    "gce",
    "azure",
    "openstack",
    "digitalocean",
    "hetzner",
];

/// One place user-data and metadata can come from.
pub trait Datasource {
    /// The kiln name of the platform (one of [`NAMES`]).
    fn name(&self) -> &'static str;
    /// Fetches user-data (`None` when the platform has none) and metadata.
    fn fetch(&self, env: &Env) -> Result<Fetched>;
    /// Whether it is read from local media or firmware only (no network needed).
    fn local(&self, _env: &Env) -> bool {
        false
    }
}

/// What every datasource may use: the root that holds `/proc`, `/sys`, `/dev` and `/var` (`/` on
/// a node, a scratch directory in tests) and the retrying HTTP client.
pub struct Env {
    /// Root of the machine's identity files.
    pub sys_root: PathBuf,
    /// The HTTP client with its deadline.
    pub http: http::Http,
    /// Replaces the metadata service's base URL (`http://169.254.169.254`) when set.
    pub metadata_url: Option<String>,
    /// Whether to wait for network-online.target before the network is used (a node under
    /// systemd; see [`online`]).
    pub wait_online: bool,
}

impl Env {
    /// Waits for the network if this run should ([`Env::wait_online`]).
    pub fn network_needed(&self) {
        if self.wait_online {
            online::wait();
        }
    }
}

impl Env {
    /// `abs` (an absolute path on the node) below the sys-root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.sys_root.join(abs.trim_start_matches('/'))
    }

    /// The metadata service's base URL without a trailing slash.
    pub fn base_url(&self, default: &str) -> String {
        self.metadata_url
            .as_deref()
            .unwrap_or(default)
            .trim_end_matches('/')
            .to_owned()
    }

    /// The trimmed text of the file `abs` below the sys-root, `None` if it is missing, empty,
    /// or not a regular file of at most [`MAX_TEXT`] bytes.
    pub fn read_text(&self, abs: &str) -> Option<String> {
        let bytes = read_local(self, abs, MAX_TEXT).ok()??;
        let text = String::from_utf8(bytes).ok()?;
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    }
}

/// The link-local address of the metadata services of EC2, GCE, Azure, OpenStack, DigitalOcean
/// and Hetzner.
pub const LINK_LOCAL: &str = "http://169.254.169.254";

/// The datasource called `name`; `cmdline` reads its URL from the kernel command line.
pub fn by_name(name: &str, env: &Env) -> Result<Box<dyn Datasource>> {
    Ok(match name {
        "cmdline" => Box::new(cmdline::from_cmdline(env)?),
        "fwcfg" => Box::new(fwcfg::FwCfg),
        "nocloud" => Box::new(nocloud::NoCloud),
        "configdrive" => Box::new(configdrive::ConfigDrive),
        "ec2" => Box::new(ec2::Ec2),
        "gce" => Box::new(gce::Gce),
        "azure" => Box::new(azure::Azure),
        "openstack" => Box::new(openstack::OpenStack),
        "digitalocean" => Box::new(digitalocean::DigitalOcean),
        "hetzner" => Box::new(hetzner::Hetzner),
        other => return Err(Error::UnknownDatasource(other.into())),
    })
}

/// Whether the join service must hand out a nonce before `platform` can prove its identity.
pub fn identity_needs_nonce(platform: &str) -> bool {
    platform == "azure"
}

/// This instance's signed identity for the join service at `audience`, from the metadata
/// service of `platform` (the datasource the run found): EC2, GCE, and Azure with the
/// service's `nonce`.
pub fn identity(
    platform: &str,
    env: &Env,
    audience: &str,
    nonce: Option<&str>,
) -> Result<crate::joinsvc::identity::Proof> {
    match (platform, nonce) {
        ("ec2", _) => ec2::identity(env),
        ("gce", _) => gce::identity(env, audience),
        ("azure", Some(nonce)) => azure::identity(env, nonce),
        (other, _) => Err(Error::malformed(
            other,
            "join_service needs a platform that signs instance identities (ec2, gce, azure)",
        )),
    }
}

/// The most [`Env::read_text`] reads of one identity file (`/proc/cmdline`, a DMI field).
const MAX_TEXT: u64 = 64 << 10;

/// The regular file at `abs` below the sys-root of `env`, resolved inside it (symlinks never
/// lead out), `None` if it is missing; refuses other kinds of files (a FIFO could block forever,
/// `/dev/zero` never ends) and files over `max` bytes, without reading more than `max + 1`
/// bytes.
fn read_local(env: &Env, abs: &str, max: u64) -> Result<Option<Vec<u8>>> {
    let from_core = |e: kiln_core::Error| match e {
        kiln_core::Error::Io { path, error } => Error::io(path, error),
        e => Error::io(env.path(abs), std::io::Error::other(e.to_string())),
    };
    let root = InRoot::open(&env.sys_root).map_err(from_core)?;
    root.read(Path::new(abs), Last::Follow, max)
        .map_err(|e| match e {
            kiln_core::Error::Io { path, error } if error.kind() == ErrorKind::FileTooLarge => {
                Error::TooLarge {
                    source_name: path.display().to_string(),
                    limit: max,
                }
            }
            e => from_core(e),
        })
}

/// Parses `bytes` from `source_name` as a JSON object.
fn parse_json(source_name: &str, bytes: &[u8]) -> Result<serde_json::Value> {
    match serde_json::from_slice(bytes) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err(Error::malformed(source_name, "not a JSON object")),
        Err(e) => Err(Error::malformed(source_name, e)),
    }
}

/// Parses `bytes` from `source_name` as a YAML mapping, as JSON (an empty document is `{}`).
fn parse_yaml(source_name: &str, bytes: &[u8]) -> Result<serde_json::Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::json!({}));
    }
    match serde_yaml_ng::from_slice(bytes) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err(Error::malformed(source_name, "not a YAML mapping")),
        Err(e) => Err(Error::malformed(source_name, e)),
    }
}

/// The string at JSON pointer `pointer` in `value` (numbers are turned into text).
fn json_str(value: &serde_json::Value, pointer: &str) -> Option<String> {
    match value.pointer(pointer)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The machine's DMI product UUID in lower case: the instance id of platforms without one.
fn dmi_uuid(env: &Env) -> Option<String> {
    env.read_text("/sys/class/dmi/id/product_uuid")
        .map(|s| s.to_ascii_lowercase())
}

/// Text of an optional metadata value, trimmed; empty is `None`.
fn text(bytes: Option<Vec<u8>>) -> Option<String> {
    let s = String::from_utf8_lossy(&bytes?).trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// Empty user-data is no user-data.
fn non_empty(bytes: Option<Vec<u8>>) -> Option<Vec<u8>> {
    bytes.filter(|b| !b.is_empty())
}

/// An [`Env`] over an empty scratch sys-root with a `secs` second deadline (unit tests).
#[cfg(test)]
pub(crate) fn test_env(secs: f64) -> (Env, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let http = http::Http::new(http::HttpConfig {
        deadline: std::time::Instant::now() + std::time::Duration::from_secs_f64(secs),
        request_timeout: std::time::Duration::from_secs(1),
        max_body: 1 << 20,
    });
    let env = Env {
        sys_root: dir.path().into(),
        http,
        metadata_url: None,
        wait_online: false,
    };
    (env, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_yaml_must_be_objects() {
        assert!(parse_json("x", b"{\"a\":1}").is_ok());
        let err = parse_json("http://x/meta", b"[1]").unwrap_err();
        assert!(err.to_string().contains("http://x/meta"), "{err}");
        assert!(parse_json("x", b"{").is_err());
        assert_eq!(parse_yaml("x", b"  \n").unwrap(), serde_json::json!({}));
        assert_eq!(
            parse_yaml("x", b"instance-id: i-1\n").unwrap(),
            serde_json::json!({"instance-id": "i-1"})
        );
        assert!(parse_yaml("x", b"- a\n").is_err());
    }

    #[test]
    fn json_str_reads_strings_and_numbers() {
        let v = serde_json::json!({"a": {"b": 42, "c": "x", "d": ""}});
        assert_eq!(json_str(&v, "/a/b").as_deref(), Some("42"));
        assert_eq!(json_str(&v, "/a/c").as_deref(), Some("x"));
        assert_eq!(json_str(&v, "/a/d"), None);
        assert_eq!(json_str(&v, "/z"), None);
    }
}
