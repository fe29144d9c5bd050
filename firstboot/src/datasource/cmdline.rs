//! The kernel command line (`/proc/cmdline` below the sys-root): `kiln.datasource=NAME`,
//! `kiln.userdata=URL`, and for compatibility `ignition.config.url=URL` and
//! `ds=nocloud;s=URL` / `ds=nocloud-net;s=URL`. Also the datasource that fetches such a URL.

use super::{dmi_uuid, url, Datasource, Env, Error, Fetched, Metadata, Result};

/// What the kernel command line says about user-data.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Cmdline {
    /// `kiln.datasource=NAME`.
    pub datasource: Option<String>,
    /// `kiln.userdata=URL` or `ignition.config.url=URL`, with the parameter's name.
    pub userdata: Option<(String, &'static str)>,
    /// `ds=nocloud...`: `Some(seedfrom)` (the `s=`/`seedfrom=` URL, if any).
    pub nocloud: Option<Option<String>>,
}

impl Cmdline {
    /// Parses the command line `text`.
    pub fn parse(text: &str) -> Self {
        let mut out = Cmdline::default();
        for word in words(text) {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            match key {
                "kiln.datasource" => out.datasource = Some(value.to_owned()),
                "kiln.userdata" => out.userdata = Some((value.to_owned(), "kiln.userdata")),
                "ignition.config.url" if out.userdata.is_none() => {
                    out.userdata = Some((value.to_owned(), "ignition.config.url"))
                }
                "ds" => out.nocloud = parse_ds(value).or(out.nocloud.take()),
                _ => {}
            }
        }
        out
    }

    /// Reads and parses `/proc/cmdline` below `env`'s sys-root (empty if missing).
    pub fn read(env: &Env) -> Self {
        Self::parse(&env.read_text("/proc/cmdline").unwrap_or_default())
    }
}

/// Splits on whitespace, keeping double-quoted parts together and dropping the quotes.
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// `nocloud;s=URL;h=...` → `Some(Some(URL))`; other `ds=` values → `None`.
fn parse_ds(value: &str) -> Option<Option<String>> {
    let mut parts = value.split(';');
    if !matches!(parts.next()?, "nocloud" | "nocloud-net") {
        return None;
    }
    let seed = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| matches!(*k, "s" | "seedfrom"))
        .map(|(_, v)| v.to_owned());
    Some(seed)
}

/// User-data from a URL on the kernel command line.
#[derive(Debug)]
pub struct UrlSource {
    url: String,
}

/// The [`UrlSource`] for the URL on `env`'s kernel command line.
pub fn from_cmdline(env: &Env) -> Result<UrlSource> {
    let (url, _) = Cmdline::read(env).userdata.ok_or_else(|| {
        Error::Missing(
            "cmdline: no kiln.userdata= or ignition.config.url= on the kernel command line".into(),
        )
    })?;
    UrlSource::new(url)
}

impl UrlSource {
    /// A source for `url`, refused now if its scheme is unsupported.
    pub fn new(url: String) -> Result<Self> {
        url::check_scheme(&url)?;
        Ok(UrlSource { url })
    }
}

impl Datasource for UrlSource {
    fn name(&self) -> &'static str {
        "cmdline"
    }

    fn local(&self, _env: &Env) -> bool {
        self.url.starts_with("file:") || self.url.starts_with("data:")
    }

    fn fetch(&self, env: &Env) -> Result<Fetched> {
        let user_data = url::fetch(env, &self.url)?;
        let mut metadata = Metadata::new("cmdline", "metal", serde_json::json!({}));
        metadata.instance_id = dmi_uuid(env);
        Ok(Fetched::new(user_data, metadata))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kiln_ignition_and_nocloud_parameters() {
        let c = Cmdline::parse(
            "BOOT_IMAGE=/vmlinuz ro quiet kiln.datasource=ec2 ignition.config.url=http://a/b \
             kiln.userdata=tftp://10.0.0.1/node.yaml ds=nocloud-net;s=http://10.0.0.2/seed/",
        );
        assert_eq!(c.datasource.as_deref(), Some("ec2"));
        assert_eq!(
            c.userdata,
            Some(("tftp://10.0.0.1/node.yaml".into(), "kiln.userdata"))
        );
        assert_eq!(c.nocloud, Some(Some("http://10.0.0.2/seed/".into())));
    }

    #[test]
    fn ignition_url_and_bare_nocloud() {
        let c = Cmdline::parse("ignition.config.url=\"http://x/c.ign\" ds=nocloud\n");
        assert_eq!(
            c.userdata,
            Some(("http://x/c.ign".into(), "ignition.config.url"))
        );
        assert_eq!(c.nocloud, Some(None));
        assert_eq!(Cmdline::parse("ds=ec2 root=/dev/sda"), Cmdline::default());
    }

    #[test]
    fn unsupported_scheme_is_refused_up_front() {
        let err = UrlSource::new("ftp://x/y".into()).unwrap_err();
        assert!(err.to_string().contains("ftp://x/y"), "{err}");
    }
}
