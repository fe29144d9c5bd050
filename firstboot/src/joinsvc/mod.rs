//! The join service (`kiln-firstboot join-service`): runs on a control-plane node and answers a
//! joining node's signed platform identity with a short-lived bootstrap token, so nothing
//! long-lived is ever in an autoscaling group's user-data.
//!
//! - [`policy`]: the config file and the rules (who may join, as what).
//! - [`identity`], [`pkcs7`] (with [`ber`]), [`jwt`], [`azure`]: the node's proof and its
//!   verification (EC2, GCE, Azure).
//! - [`tokens`]: the token's Secret, created as kubeadm does.
//! - [`server`]: HTTPS (hyper over tokio-rustls) with a certificate from the cluster CA.
//!
//! Every decision is one audit line (who, which rule, token id — never the token secret); a
//! refused node is told only "refused".

pub mod azure;
pub mod ber;
pub mod claims;
pub mod identity;
pub mod jwt;
pub mod pkcs7;
pub mod policy;
pub mod server;
pub mod tokens;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use kiln_core::nodeconfig::Taint;
use kiln_core::secret::Secret;
use kiln_core::token::BootstrapToken;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use claims::Claims;
use identity::{Keys, Proof};
use policy::Policy;

/// Why a request was refused: for the audit log only, never for the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The reason.
    pub reason: String,
}

impl Refused {
    /// A refusal for `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        Refused {
            reason: reason.into(),
        }
    }
}

/// What a node is given: its token and where the control plane is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The bootstrap token `<id>.<secret>`.
    pub token: Secret,
    /// When it expires (RFC 3339).
    pub expires: String,
    /// The control plane `host:port`.
    pub control_plane_endpoint: String,
    /// Labels the node registers with.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Taints the node registers with.
    #[serde(default)]
    pub taints: Vec<Taint>,
}

/// The service's state: its policy and keys, the API client, the instances served, the rate.
pub struct Service {
    policy: Policy,
    keys: Keys,
    client: kube::Client,
    issued: Mutex<HashMap<String, String>>,
    nonces: Mutex<azure::Nonces>,
    bucket: Mutex<Bucket>,
}

/// One answer: HTTP status and JSON body.
pub type Reply = (u16, String);

const REFUSED: &str = "{\"error\":\"refused\"}";

impl Service {
    /// A service deciding by `policy`, checking with `keys`, creating tokens through `client`.
    pub fn new(policy: Policy, keys: Keys, client: kube::Client) -> Self {
        let bucket = Bucket::new(policy.burst, policy.rate_per_second);
        Service {
            policy,
            keys,
            client,
            issued: Mutex::new(HashMap::new()),
            nonces: Mutex::default(),
            bucket: Mutex::new(bucket),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Whether the rate allows another request now (else audited as refused).
    fn admit(&self, peer: &str) -> bool {
        let ok = self
            .bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(Instant::now());
        if !ok {
            audit_refused(peer, None, &Refused::new("rate limited"));
        }
        ok
    }

    /// Refuses a request from `peer` for `reason` before its body could be read.
    pub fn refuse(&self, peer: &str, reason: &str) -> Reply {
        audit_refused(peer, None, &Refused::new(reason));
        (403, REFUSED.into())
    }

    /// Handles `GET /nonce` (Azure): a fresh nonce for the attested document.
    pub fn nonce(&self, peer: &str) -> Reply {
        if !self.admit(peer) {
            return (429, REFUSED.into());
        }
        match self
            .nonces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .issue(Instant::now())
        {
            Ok(nonce) => (200, serde_json::json!({ "nonce": nonce }).to_string()),
            Err(r) => {
                audit_refused(peer, None, &r);
                (500, "{\"error\":\"internal\"}".into())
            }
        }
    }

    /// Handles `POST /join` with `body` from `peer`.
    pub async fn join(&self, body: &[u8], peer: &str) -> Reply {
        if !self.admit(peer) {
            return (429, REFUSED.into());
        }
        let claims = match self.check(body) {
            Ok(c) => c,
            Err(r) => return self.refuse(peer, &r.reason),
        };
        match self.issue(&claims, peer).await {
            Ok(answer) => (200, serde_json::to_string(&answer).unwrap_or_default()),
            Err((status, r)) => {
                audit_refused(peer, Some(&claims), &r);
                (
                    status,
                    if status == 403 {
                        REFUSED
                    } else {
                        "{\"error\":\"internal\"}"
                    }
                    .into(),
                )
            }
        }
    }

    fn check(&self, body: &[u8]) -> Result<Claims, Refused> {
        let proof: Proof = serde_json::from_slice(body).map_err(|e| {
            Refused::new(format!(
                "malformed body: {}",
                kiln_core::redact::decode_error(&e.to_string())
            ))
        })?;
        let check = identity::Check {
            keys: &self.keys,
            audience: self.policy.url.trim_end_matches('/'),
            nonces: &self.nonces,
            now: OffsetDateTime::now_utc(),
            skew: self.policy.skew(),
        };
        identity::verify(&proof, &check)
    }

    /// Decides by the policy, reserves the instance (one token each), creates the token.
    async fn issue(&self, claims: &Claims, peer: &str) -> Result<Answer, (u16, Refused)> {
        let now = OffsetDateTime::now_utc();
        let rule = self
            .policy
            .decide(claims, now)
            .map_err(|r| (403, Refused::new(r)))?;
        let token = BootstrapToken::generate().map_err(|e| (500, Refused::new(e.to_string())))?;
        let key = format!("{}/{}", claims.platform, claims.instance_id);
        {
            let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(id) = issued.get(&key) {
                return Err((
                    403,
                    Refused::new(format!("replay: instance already has token {id}")),
                ));
            }
            issued.insert(key.clone(), token.id().to_owned());
        }
        let name = claims.name.as_deref().unwrap_or(&claims.instance_id);
        let secret = tokens::secret(&token, now, self.policy.ttl(), name);
        if let Err(e) = tokens::create(&self.client, &secret).await {
            self.issued
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            return Err((500, Refused::new(format!("{e:#}"))));
        }
        audit(peer, "issued", Some(claims), &rule.name, token.id(), "");
        Ok(Answer {
            token: Secret::new(token.expose()),
            expires: secret
                .data
                .as_ref()
                .and_then(|d| d.get("expiration"))
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .unwrap_or_default(),
            control_plane_endpoint: self.policy.control_plane_endpoint.clone(),
            labels: rule.labels.clone(),
            taints: rule.taints.clone(),
        })
    }
}

/// The largest config or key file read.
const MAX_FILE: u64 = 1 << 20;

fn read_bounded(path: &std::path::Path) -> anyhow::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_string(&mut text))
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    anyhow::ensure!(
        text.len() as u64 <= MAX_FILE,
        "{}: larger than {MAX_FILE} bytes",
        path.display()
    );
    Ok(text)
}

/// Reads and validates the config at `path` and the keys it names.
pub fn load(path: &std::path::Path) -> anyhow::Result<(Policy, Keys)> {
    use anyhow::Context as _;
    let policy = Policy::parse(&read_bounded(path)?).with_context(|| path.display().to_string())?;
    let mut keys = Keys::default();
    if let Some(certs) = &policy.aws_certificates {
        keys.aws = identity::load_certificates(certs).context("aws_certificates")?;
    }
    if let Some(certs) = &policy.azure_certificates {
        keys.azure = identity::load_certificates(certs).context("azure_certificates")?;
    }
    if let Some(file) = &policy.google_keys {
        keys.google = jwt::parse_jwks(&read_bounded(file)?)
            .with_context(|| format!("google_keys: {}", file.display()))?;
    }
    Ok((policy, keys))
}

/// What the service would do, for `--dry-run`.
pub fn describe(policy: &Policy, keys: &Keys) -> String {
    let mut out = format!(
        "listen {}\nurl {}\ncontrol plane {}\ntoken ttl {}, clock skew {}, rate {}/s (burst {})\nkeys: {} AWS certificates, {} Google keys, {} Azure CA certificates\n",
        policy.listen, policy.url, policy.control_plane_endpoint, policy.token_ttl,
        policy.max_clock_skew, policy.rate_per_second, policy.burst, keys.aws.len(), keys.google.len(), keys.azure.len()
    );
    for r in &policy.rules {
        out.push_str(&format!(
            "rule {}: {} accounts {:?} regions {:?} zones {:?} launched within {} -> labels {:?}, {} taints\n",
            r.name, r.platform, r.accounts, r.regions, r.zones,
            r.max_launch_age.as_deref().unwrap_or("any time"), r.labels, r.taints.len()
        ));
    }
    out
}

fn audit_refused(peer: &str, claims: Option<&Claims>, r: &Refused) {
    audit(peer, "refused", claims, "-", "-", &r.reason);
}

/// One audit line per decision. Values are escaped (no forged lines) and token-shaped text is
/// removed; the token secret is never passed here.
fn audit(peer: &str, decision: &str, c: Option<&Claims>, rule: &str, token_id: &str, reason: &str) {
    let clean =
        |s: &str| kiln_core::redact::escape(&kiln_core::redact::without_tokens(s)).into_owned();
    let (platform, instance, account) = c.map_or(("-", "-", "-"), |c| {
        (
            c.platform.as_str(),
            c.instance_id.as_str(),
            c.account.as_str(),
        )
    });
    tracing::info!(
        "audit: decision={decision} peer={peer} platform={} instance={} account={} rule={} token_id={token_id} reason={:?}",
        clean(platform),
        clean(instance),
        clean(account),
        clean(rule),
        clean(reason)
    );
}

/// A token bucket: `burst` requests at once, refilled at `rate` per second.
struct Bucket {
    tokens: f64,
    burst: f64,
    rate: f64,
    at: Instant,
}

impl Bucket {
    fn new(burst: u32, rate: u32) -> Self {
        Bucket {
            tokens: burst.into(),
            burst: burst.into(),
            rate: rate.into(),
            at: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests;
