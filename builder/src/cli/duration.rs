//! Durations on the command line in Go's style, as kubeadm's flags take them: `8760h`, `30d`,
//! `1h30m`.

use time::Duration;

/// Parses a sequence of `<integer><unit>` with units `d`, `h`, `m`, `s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration; write e.g. 8760h, 365d or 1h30m");
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let number: i64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = rest[digits..].chars().next().ok_or_else(bad)?;
        let part = match unit {
            'd' => Duration::days(number),
            'h' => Duration::hours(number),
            'm' => Duration::minutes(number),
            's' => Duration::seconds(number),
            _ => return Err(bad()),
        };
        total += part;
        rest = &rest[digits + 1..];
    }
    if total <= Duration::ZERO {
        return Err(format!("{text:?}: the duration must be positive"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_durations() {
        assert_eq!(parse_duration("8760h").unwrap(), Duration::days(365));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::minutes(90));
        assert_eq!(parse_duration("2d").unwrap(), Duration::hours(48));
        for bad in ["", "h", "10", "10x", "0s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
