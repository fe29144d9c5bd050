//! Validators for single node-config values: CIDRs, CA pins, certificate keys, labels, taints,
//! endpoints and durations. Each returns the message that follows `FIELD: `.

use std::net::IpAddr;

/// A CIDR `address/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cidr {
    /// Network address as written.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `10.244.0.0/16` or `fd00::/56`.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let bad = || format!("{text:?} is not a CIDR (e.g. 10.244.0.0/16 or fd00:10:244::/56)");
        let (addr, prefix) = text.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= max && !prefix.starts_with('+'))
            .ok_or_else(bad)?;
        Ok(Cidr { addr, prefix })
    }

    /// Host bits available in the range.
    pub fn host_bits(&self) -> u8 {
        (if self.addr.is_ipv4() { 32 } else { 128 }) - self.prefix
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// At most one IPv4 and one IPv6 range (kubeadm's dual-stack rule).
pub fn dual_stack(cidrs: &[Cidr]) -> Result<(), String> {
    match cidrs {
        [] | [_] => Ok(()),
        [a, b] if a.addr.is_ipv4() != b.addr.is_ipv4() => Ok(()),
        [_, _] => Err("two ranges must be one IPv4 and one IPv6 (dual-stack)".into()),
        _ => Err("at most two ranges: one IPv4 and one IPv6 (dual-stack)".into()),
    }
}

/// kubeadm refuses service subnets with more than 20 host bits (/12 for IPv4, /108 for IPv6).
pub fn service_size(cidr: &Cidr) -> Result<(), String> {
    if cidr.host_bits() > 20 {
        let min = if cidr.addr.is_ipv4() { 12 } else { 108 };
        return Err(format!(
            "\"{cidr}\" is too large for services; kubeadm needs a prefix of at least /{min}"
        ));
    }
    Ok(())
}

/// `sha256:` and 64 hex digits, as `kiln pki ca-hash` prints it.
pub fn ca_cert_hash(text: &str) -> Result<(), String> {
    match text.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(()),
        _ => Err(format!(
            "{text:?} is not a CA pin; expected sha256:<64 hex> (`kiln pki ca-hash ca.crt`)"
        )),
    }
}

/// 64 hex digits (an AES-256 key). The value is a secret: never quoted.
pub fn certificate_key(text: &str) -> Result<(), String> {
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err("must be 64 hex characters; make one with `kiln certificate-key`".into())
    }
}

/// `host[:port]` without a scheme.
pub fn endpoint(text: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{text:?} is not host[:port]: {why}"));
    if text.is_empty() || text.chars().any(char::is_whitespace) {
        return bad("empty or contains spaces");
    }
    if text.contains("://") || text.contains('/') {
        return bad("no scheme or path, e.g. k8s.example.com:6443");
    }
    let port = match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.ends_with(']') => Some(port),
        _ => None,
    };
    match port.map(str::parse::<u16>) {
        Some(Ok(0)) | Some(Err(_)) => bad("bad port"),
        _ => Ok(()),
    }
}

/// A join service URL: `https://host[:port]` without path, query or credentials.
pub fn service_url(text: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{text:?} is not https://host[:port]: {why}"));
    let Some(rest) = text.strip_prefix("https://") else {
        return bad("the join service is only reached over HTTPS");
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return bad("no path, query or credentials");
    }
    endpoint(rest)
}

/// A Go duration such as `4m0s`, `90s`, `1h30m`, `1.5h`.
pub fn duration(text: &str) -> Result<(), String> {
    crate::duration::parse_go(text)
        .map(drop)
        .ok_or_else(|| format!("{text:?} is not a duration (e.g. 4m0s, 90s, 1h30m)"))
}

/// A DNS-1123 label-like name part of a label key or value: `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
fn label_name(s: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    s.len() <= 63
        && s.bytes().all(ok)
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

/// Labels in these namespaces are the only kubernetes.io/k8s.io labels a kubelet may set on its
/// own node (NodeRestriction; kubelet refuses to start with others in `--node-labels`).
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "kubernetes.io/arch",
    "kubernetes.io/os",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
];

/// A node label the kubelet may set through `--node-labels`.
pub fn label(key: &str, value: &str) -> Result<(), String> {
    let (prefix, name) = key.rsplit_once('/').map_or(("", key), |(p, n)| (p, n));
    if !label_name(name) || (key.contains('/') && prefix.is_empty()) {
        return Err("is not a valid label key (name: 63 characters of [A-Za-z0-9-_.])".into());
    }
    if !value.is_empty() && !label_name(value) {
        return Err(format!("{value:?} is not a valid label value"));
    }
    let restricted = ["kubernetes.io", "k8s.io"]
        .iter()
        .any(|d| prefix == *d || prefix.ends_with(&format!(".{d}")));
    let allowed = KUBELET_LABELS.contains(&key)
        || ["kubelet.kubernetes.io", "node.kubernetes.io"]
            .iter()
            .any(|d| prefix == *d || prefix.ends_with(&format!(".{d}")));
    if restricted && !allowed {
        return Err(
            "the kubelet may not set labels in the kubernetes.io and k8s.io namespaces \
             (NodeRestriction) except node.kubernetes.io/* and kubelet.kubernetes.io/*; \
             use another prefix or label the node after it joined"
                .into(),
        );
    }
    Ok(())
}

/// A taint effect.
pub fn taint_effect(effect: &str) -> Result<(), String> {
    match effect {
        "NoSchedule" | "PreferNoSchedule" | "NoExecute" => Ok(()),
        _ => Err(format!(
            "{effect:?} is not NoSchedule, PreferNoSchedule or NoExecute"
        )),
    }
}

/// A command-line flag name without dashes.
pub fn flag_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.starts_with('-')
        || name.contains('=')
        || name.contains(char::is_whitespace)
    {
        return Err("flag names are written without dashes, e.g. node-ip".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        assert_eq!(
            Cidr::parse("10.244.0.0/16").unwrap().to_string(),
            "10.244.0.0/16"
        );
        assert_eq!(Cidr::parse("fd00::/56").unwrap().host_bits(), 72);
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0",
            "10.0.0/8",
            "fd00::/129",
            "x/1",
            "10.0.0.0/+8",
        ] {
            assert!(
                Cidr::parse(bad).unwrap_err().contains("is not a CIDR"),
                "{bad}"
            );
        }
        let v4 = Cidr::parse("10.96.0.0/12").unwrap();
        let v6 = Cidr::parse("fd00::/108").unwrap();
        dual_stack(&[v4.clone(), v6.clone()]).unwrap();
        assert!(dual_stack(&[v4.clone(), v4.clone()]).is_err());
        assert!(dual_stack(&[v4.clone(), v6.clone(), v4.clone()]).is_err());
        service_size(&v4).unwrap();
        service_size(&v6).unwrap();
        assert!(service_size(&Cidr::parse("10.0.0.0/8").unwrap())
            .unwrap_err()
            .contains("/12"));
        assert!(service_size(&Cidr::parse("fd00::/64").unwrap())
            .unwrap_err()
            .contains("/108"));
    }

    #[test]
    fn pins_keys_endpoints_durations() {
        ca_cert_hash(&format!("sha256:{}", "a".repeat(64))).unwrap();
        assert!(ca_cert_hash("sha256:abc").is_err());
        assert!(ca_cert_hash(&"a".repeat(64)).is_err());
        certificate_key(&"0f".repeat(32)).unwrap();
        let err = certificate_key("secretsecret").unwrap_err();
        assert!(!err.contains("secretsecret"));
        for ok in ["k8s.example.com:6443", "10.0.0.1", "[fd00::1]:6443", "lb"] {
            endpoint(ok).unwrap();
        }
        for bad in ["https://lb:6443", "lb:port", "lb:0", "", "a b"] {
            assert!(endpoint(bad).is_err(), "{bad}");
        }
        service_url("https://10.0.0.10:9443").unwrap();
        service_url("https://join.example.com/").unwrap();
        for bad in [
            "http://10.0.0.10:9443",
            "https://a/x",
            "https://u:p@a",
            "https://a:0",
        ] {
            assert!(service_url(bad).is_err(), "{bad}");
        }
        for ok in ["4m0s", "90s", "1h30m", "0", "1.5h"] {
            duration(ok).unwrap();
        }
        for bad in ["", "4 minutes", "m", "10"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_follow_node_restriction() {
        label("example.com/gpu", "true").unwrap();
        label("node.kubernetes.io/pool", "workers").unwrap();
        label("topology.kubernetes.io/zone", "a").unwrap();
        label("plain", "").unwrap();
        assert!(label("node-role.kubernetes.io/worker", "")
            .unwrap_err()
            .contains("NodeRestriction"));
        assert!(label("example.com/", "x").is_err());
        assert!(label("a", "bad value").is_err());
        taint_effect("NoSchedule").unwrap();
        assert!(taint_effect("noschedule").is_err());
        flag_name("node-ip").unwrap();
        assert!(flag_name("--node-ip").is_err());
    }
}
