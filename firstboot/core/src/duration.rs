//! Durations in Go's syntax (`time.ParseDuration`), as kubeadm and kubelet take them: `4m0s`,
//! `90s`, `1h30m`, `1.5h`, `0`. The one parser for node.toml and kiln's command line (which
//! also accepts days, `365d`).

/// Go's units, longest first so `ms` is not read as `m`.
const GO_UNITS: [(&str, u128); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
];
const DAY: u128 = 24 * 3_600_000_000_000;

/// `text` as a Go duration (no sign), or `None`.
pub fn parse_go(text: &str) -> Option<std::time::Duration> {
    parse(text, false)
}

/// A positive duration on kiln's command line: Go's syntax plus days (`365d`).
pub fn parse_cli(text: &str) -> Result<time::Duration, String> {
    let parsed = parse(text, true)
        .ok_or_else(|| format!("{text:?} is not a duration; write e.g. 8760h, 365d or 1h30m"))?;
    if parsed.is_zero() {
        return Err(format!("{text:?}: the duration must be positive"));
    }
    time::Duration::try_from(parsed).map_err(|_| format!("{text:?}: the duration is too long"))
}

fn parse(text: &str, days: bool) -> Option<std::time::Duration> {
    if text == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut rest = text;
    let mut nanos: u128 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number = &rest[..rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
                .len()];
        rest = &rest[number.len()..];
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return None;
        }
        let scale = match GO_UNITS.into_iter().find(|(u, _)| rest.starts_with(u)) {
            Some((u, scale)) => {
                rest = &rest[u.len()..];
                scale
            }
            None if days && rest.starts_with('d') => {
                rest = &rest[1..];
                DAY
            }
            None => return None,
        };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut part = whole.checked_mul(scale)?;
        let mut unit = scale;
        for digit in fraction.bytes().take(20) {
            unit /= 10;
            part += u128::from(digit - b'0') * unit;
        }
        nanos = nanos.checked_add(part)?;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    Some(std::time::Duration::new(
        secs,
        (nanos % 1_000_000_000) as u32,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as Std;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go("4m0s"), Some(Std::from_secs(240)));
        assert_eq!(parse_go("1h30m"), Some(Std::from_secs(5400)));
        assert_eq!(parse_go("1.5h"), Some(Std::from_secs(5400)));
        assert_eq!(parse_go("300ms"), Some(Std::from_millis(300)));
        assert_eq!(parse_go(".5s"), Some(Std::from_millis(500)));
        assert_eq!(parse_go("0"), Some(Std::ZERO));
        for bad in ["", "4 minutes", "m", "10", "1d", "1..5h", ".h", "-1s"] {
            assert_eq!(parse_go(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cli_durations_take_days_and_must_be_positive() {
        use time::Duration;
        assert_eq!(parse_cli("8760h").unwrap(), Duration::days(365));
        assert_eq!(parse_cli("1h30m").unwrap(), Duration::minutes(90));
        assert_eq!(parse_cli("2d").unwrap(), Duration::hours(48));
        assert_eq!(parse_cli("1.5h").unwrap(), Duration::minutes(90));
        for bad in ["", "h", "10", "10x", "0s", "0"] {
            assert!(parse_cli(bad).is_err(), "{bad:?}");
        }
    }
}
