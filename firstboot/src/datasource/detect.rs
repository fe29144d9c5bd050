//! The search order: each step cheap before anything slow. Kernel command line, QEMU fw_cfg,
//! local media (NoCloud seed directory and `cidata`, config drive `config-2`), DMI identity, and
//! only then a bounded probe of the link-local metadata address.

use std::time::{Duration, Instant};

use super::cmdline::{Cmdline, UrlSource};
use super::dmi::Dmi;
use super::http::{Http, HttpConfig};
use super::url::redact;
use super::{
    by_name, configdrive, fwcfg, media, nocloud, Datasource, Env, Error, Result, LINK_LOCAL,
};

/// The longest the link-local probe may take, whatever the overall deadline.
pub const PROBE_BUDGET: Duration = Duration::from_secs(10);
/// Each probe request's timeout.
const PROBE_REQUEST: Duration = Duration::from_secs(2);

/// One probe request: datasource, method, path and an extra header.
type Endpoint = (
    &'static str,
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
);

/// The datasource found and the evidence for it.
pub struct Choice {
    /// The datasource to fetch from.
    pub source: Box<dyn Datasource>,
    /// Why it was chosen, for the log.
    pub reason: String,
}

fn choice(source: Box<dyn Datasource>, reason: impl Into<String>) -> Result<Choice> {
    Ok(Choice {
        source,
        reason: reason.into(),
    })
}

/// Finds the datasource of this machine.
pub fn detect(env: &Env) -> Result<Choice> {
    let cmdline = Cmdline::read(env);
    if let Some(name) = &cmdline.datasource {
        return choice(
            by_name(name, env)?,
            format!("kernel command line kiln.datasource={name}"),
        );
    }
    if let Some((url, key)) = cmdline.userdata {
        let reason = format!(
            "kernel command line {key}= ({} URL)",
            url.split(':').next().unwrap_or("")
        );
        return choice(Box::new(UrlSource::new(url)?), reason);
    }
    if cmdline.nocloud.is_some() {
        return choice(by_name("nocloud", env)?, "kernel command line ds=nocloud");
    }
    if let Some(key) = fwcfg::present_key(env) {
        return choice(
            by_name("fwcfg", env)?,
            format!("QEMU fw_cfg key {key} is present"),
        );
    }
    if nocloud::seed_dir_present(env) {
        return choice(
            by_name("nocloud", env)?,
            format!("seed directory {} exists", nocloud::SEED_DIR),
        );
    }
    if let Some(dev) = media::find_by_label(env, nocloud::LABELS) {
        return choice(
            by_name("nocloud", env)?,
            format!("{} is labelled cidata", dev.display()),
        );
    }
    if let Some(dev) = media::find_by_label(env, configdrive::LABELS) {
        return choice(
            by_name("configdrive", env)?,
            format!("{} is labelled config-2", dev.display()),
        );
    }
    if let Some((name, why)) = Dmi::read(env).cloud() {
        return choice(by_name(name, env)?, why);
    }
    probe(env)
}

/// Asks the link-local address what it is, within [`PROBE_BUDGET`] (or the deadline, if
/// sooner): each provider's own endpoint, the first that answers 200 wins.
fn probe(env: &Env) -> Result<Choice> {
    env.network_needed();
    let base = env.base_url(LINK_LOCAL);
    let config = env.http.config();
    let http = Http::new(HttpConfig {
        deadline: config.deadline.min(Instant::now() + PROBE_BUDGET),
        request_timeout: config.request_timeout.min(PROBE_REQUEST),
        max_body: config.max_body,
    });
    let endpoints: [Endpoint; 6] = [
        (
            "ec2",
            "PUT",
            "/latest/api/token",
            Some(("X-aws-ec2-metadata-token-ttl-seconds", "60")),
        ),
        ("openstack", "GET", "/openstack/latest/meta_data.json", None),
        ("digitalocean", "GET", "/metadata/v1/id", None),
        ("hetzner", "GET", "/hetzner/v1/metadata", None),
        (
            "gce",
            "GET",
            "/computeMetadata/v1/",
            Some(("Metadata-Flavor", "Google")),
        ),
        (
            "azure",
            "GET",
            "/metadata/instance?api-version=2021-02-01",
            Some(("Metadata", "true")),
        ),
    ];
    let mut last = String::from("not tried");
    for (name, method, path, header) in endpoints {
        let url = format!("{base}{path}");
        match http.send(method, &url, header.as_slice()) {
            Ok(reply)
                if reply.status == 200
                    && (name != "gce" || reply.header("metadata-flavor") == Some("Google")) =>
            {
                return choice(
                    by_name(name, env)?,
                    format!("{} answered the link-local probe", redact(&url)),
                );
            }
            Ok(reply) => last = Error::status(&url, reply.status).to_string(),
            Err(err) => {
                last = err.to_string();
                if matches!(err, Error::GaveUp { .. }) {
                    break;
                }
            }
        }
    }
    Err(Error::NotFound(format!(
        "no datasource on the kernel command line, no fw_cfg key, no NoCloud seed or cidata/config-2 medium, \
         no known cloud in DMI, and the link-local probe found nothing ({last})"
    )))
}
