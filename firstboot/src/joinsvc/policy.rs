//! The join service's config file (`/etc/kiln/join-service.toml`): where it listens, what it
//! answers, which platform keys it trusts, and the rules saying who may join and as what.
//! Parsed strictly and validated before the service starts; [`Policy::decide`] is pure.
//!
//! ```toml
//! listen = "0.0.0.0:9443"
//! url = "https://10.0.0.10:9443"            # what nodes use; its host is in the serving cert
//! control_plane_endpoint = "10.0.0.10:6443"
//! token_ttl = "15m"                          # default 15m
//! aws_certificates = "/etc/kiln/aws-identity.pem"
//! google_keys = "/etc/kiln/google-jwks.json"
//!
//! [[rule]]
//! name = "workers"
//! platform = "ec2"
//! accounts = ["123456789012"]
//! regions = ["eu-west-1"]
//! max_launch_age = "15m"
//! labels = { "example.com/pool" = "workers" }
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use kiln_core::nodeconfig::{checks, Taint};
use serde::Deserialize;
use time::OffsetDateTime;

use super::claims::Claims;

/// Where the service reads its config by default.
pub const POLICY_PATH: &str = "/etc/kiln/join-service.toml";

/// The service's validated config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// The URL nodes use (`join_service` in their node config).
    pub url: String,
    /// The control plane `host:port` handed to joining nodes.
    pub control_plane_endpoint: String,
    /// Lifetime of each issued token (Go duration).
    #[serde(default = "default_ttl")]
    pub token_ttl: String,
    /// Clock skew tolerated on signed times (Go duration).
    #[serde(default = "default_skew")]
    pub max_clock_skew: String,
    /// Join requests accepted per second, all nodes together (token bucket refill).
    #[serde(default = "default_rate")]
    pub rate_per_second: u32,
    /// Requests accepted at once before the rate applies.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// PEM file with the AWS public certificates of the regions used (EC2 rsa2048 signatures).
    pub aws_certificates: Option<PathBuf>,
    /// JWKS file with Google's signing keys (`https://www.googleapis.com/oauth2/v3/certs`).
    pub google_keys: Option<PathBuf>,
    /// PEM file with the CA certificates Azure's attested-data signer chains to.
    pub azure_certificates: Option<PathBuf>,
    /// The rules, first match wins.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
}

/// Who may join and as what.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Named in the audit log.
    pub name: String,
    /// `ec2`, `gce` or `azure`.
    pub platform: String,
    /// AWS account ids, GCP project ids or Azure subscription ids; empty: refused (a rule must name its accounts).
    pub accounts: Vec<String>,
    /// Allowed regions (empty: any).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Allowed zones (empty: any).
    #[serde(default)]
    pub zones: Vec<String>,
    /// The instance must have been launched at most this long ago (Go duration).
    pub max_launch_age: Option<String>,
    /// Labels the node registers with.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Taints the node registers with.
    #[serde(default)]
    pub taints: Vec<Taint>,
}

fn default_ttl() -> String {
    "15m".into()
}
fn default_skew() -> String {
    "2m".into()
}
fn default_rate() -> u32 {
    20
}
fn default_burst() -> u32 {
    50
}

/// A Go duration field, already validated by [`Policy::parse`].
fn go(text: &str) -> Duration {
    kiln_core::duration::parse_go(text).unwrap_or_default()
}

impl Policy {
    /// Parses and validates the config text; errors name the field.
    pub fn parse(text: &str) -> anyhow::Result<Policy> {
        let p: Policy = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{}", kiln_core::redact::decode_error(e.message())))?;
        p.validate()?;
        Ok(p)
    }

    fn validate(&self) -> anyhow::Result<()> {
        checks::service_url(&self.url).map_err(|m| anyhow::anyhow!("url: {m}"))?;
        checks::endpoint(&self.control_plane_endpoint)
            .map_err(|m| anyhow::anyhow!("control_plane_endpoint: {m}"))?;
        for (name, value) in [
            ("token_ttl", &self.token_ttl),
            ("max_clock_skew", &self.max_clock_skew),
        ] {
            checks::duration(value).map_err(|m| anyhow::anyhow!("{name}: {m}"))?;
        }
        if self.rate_per_second == 0 || self.burst == 0 {
            bail!("rate_per_second, burst: must be at least 1");
        }
        if self.rules.is_empty() {
            bail!("rule: no [[rule]]; without one every node is refused");
        }
        for (i, rule) in self.rules.iter().enumerate() {
            rule.validate(self)
                .with_context(|| format!("rule[{i}] ({})", rule.name))?;
        }
        Ok(())
    }

    /// The token lifetime.
    pub fn ttl(&self) -> Duration {
        go(&self.token_ttl)
    }

    /// The tolerated clock skew.
    pub fn skew(&self) -> Duration {
        go(&self.max_clock_skew)
    }

    /// The first rule `claims` satisfy at `now`, or why none does.
    pub fn decide(&self, claims: &Claims, now: OffsetDateTime) -> Result<&Rule, String> {
        let mut why = Vec::new();
        for rule in &self.rules {
            match rule.admits(claims, now, self.skew()) {
                Ok(()) => return Ok(rule),
                Err(reason) => why.push(format!("{}: {reason}", rule.name)),
            }
        }
        Err(format!("no rule admits it ({})", why.join("; ")))
    }
}

impl Rule {
    fn validate(&self, policy: &Policy) -> anyhow::Result<()> {
        let (key, file) = match self.platform.as_str() {
            "ec2" => ("aws_certificates", &policy.aws_certificates),
            "gce" => ("google_keys", &policy.google_keys),
            "azure" => ("azure_certificates", &policy.azure_certificates),
            other => bail!("platform: {other:?} is not ec2, gce or azure"),
        };
        let unknown_to_azure = [
            ("regions", !self.regions.is_empty()),
            ("zones", !self.zones.is_empty()),
            ("max_launch_age", self.max_launch_age.is_some()),
        ];
        if let Some((name, _)) = unknown_to_azure
            .iter()
            .find(|(_, set)| self.platform == "azure" && *set)
        {
            bail!("{name}: Azure's attested document does not say it; freshness comes from the service's nonce");
        }
        if file.is_none() {
            bail!(
                "platform {}: set {key} (the keys its identities are checked with)",
                self.platform
            );
        }
        if self.accounts.is_empty() {
            bail!("accounts: empty; name the accounts (AWS) or projects (GCP) that may join");
        }
        if let Some(age) = &self.max_launch_age {
            checks::duration(age).map_err(|m| anyhow::anyhow!("max_launch_age: {m}"))?;
        }
        for (k, v) in &self.labels {
            checks::label(k, v).map_err(|m| anyhow::anyhow!("labels.{k:?}: {m}"))?;
        }
        for (i, t) in self.taints.iter().enumerate() {
            checks::taint_effect(&t.effect)
                .map_err(|m| anyhow::anyhow!("taints[{i}].effect: {m}"))?;
        }
        Ok(())
    }

    /// Whether `claims` satisfy this rule at `now`, else why not.
    fn admits(&self, c: &Claims, now: OffsetDateTime, skew: Duration) -> Result<(), String> {
        let listed = |list: &[String], value: &Option<String>| {
            list.is_empty() || value.as_ref().is_some_and(|v| list.contains(v))
        };
        if c.platform != self.platform {
            return Err(format!("platform {} is not {}", c.platform, self.platform));
        }
        if !self.accounts.contains(&c.account) {
            return Err(format!("account {} not listed", c.account));
        }
        if !listed(&self.regions, &c.region) {
            return Err(format!(
                "region {:?} not listed",
                c.region.as_deref().unwrap_or("")
            ));
        }
        if !listed(&self.zones, &c.zone) {
            return Err(format!(
                "zone {:?} not listed",
                c.zone.as_deref().unwrap_or("")
            ));
        }
        if let Some(max) = &self.max_launch_age {
            let launched = c.launched.ok_or("launch time unknown")?;
            let age = now - launched;
            if age > go(max) + skew {
                return Err(format!(
                    "launched {}s ago, more than {max}",
                    age.whole_seconds()
                ));
            }
            if -age > skew {
                return Err("launch time is in the future".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
listen = "127.0.0.1:9443"
url = "https://127.0.0.1:9443"
control_plane_endpoint = "10.0.0.10:6443"
aws_certificates = "/etc/kiln/aws.pem"

[[rule]]
name = "workers"
platform = "ec2"
accounts = ["123456789012"]
regions = ["eu-west-1"]
max_launch_age = "15m"
labels = { "example.com/pool" = "workers" }
"#;

    fn claims(account: &str, launched_ago: i64) -> Claims {
        Claims {
            platform: "ec2".into(),
            instance_id: "i-0abc".into(),
            account: account.into(),
            region: Some("eu-west-1".into()),
            zone: Some("eu-west-1b".into()),
            launched: Some(OffsetDateTime::now_utc() - time::Duration::seconds(launched_ago)),
            name: None,
        }
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let p = Policy::parse(POLICY).unwrap();
        let now = OffsetDateTime::now_utc();
        assert_eq!(
            p.decide(&claims("123456789012", 60), now).unwrap().name,
            "workers"
        );
        let e = p.decide(&claims("999999999999", 60), now).unwrap_err();
        assert!(e.contains("account 999999999999 not listed"), "{e}");
        let e = p.decide(&claims("123456789012", 3600), now).unwrap_err();
        assert!(e.contains("more than 15m"), "{e}");
        let e = p.decide(&claims("123456789012", -3600), now).unwrap_err();
        assert!(e.contains("future"), "{e}");
        assert_eq!(p.ttl(), Duration::from_secs(900));
    }

    #[test]
    fn bad_policies_name_the_field() {
        let err = |text: &str| format!("{:#}", Policy::parse(text).unwrap_err());
        assert!(err(&POLICY.replace("aws_certificates", "# ")).contains("set aws_certificates"));
        assert!(err(&POLICY.replace("[\"123456789012\"]", "[]")).contains("accounts: empty"));
        assert!(err(&POLICY.replace("\"15m\"", "\"soon\"")).contains("max_launch_age"));
        assert!(err(&POLICY.replace("https://", "http://")).starts_with("url:"));
        assert!(err(&format!("{POLICY}bogus = 1\n")).contains("bogus"));
        let azure = POLICY
            .replace("\"ec2\"", "\"azure\"")
            .replace("aws_certificates", "azure_certificates");
        assert!(
            err(&azure).starts_with("rule[0] (workers): regions: Azure"),
            "{}",
            err(&azure)
        );
    }
}
