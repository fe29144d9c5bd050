//! `SOURCE_DATE_EPOCH` (reproducible-builds.org): the timestamp reproducible output carries.
//! Unset or empty means "not given"; otherwise an integer number of seconds since 1970
//! (surrounding whitespace ignored).

use crate::Error;

/// The environment's `SOURCE_DATE_EPOCH`, if set and not empty.
pub fn source_date_epoch() -> Result<Option<u64>, Error> {
    parse(&std::env::var("SOURCE_DATE_EPOCH").unwrap_or_default())
}

/// A `SOURCE_DATE_EPOCH` value: `None` when empty.
pub fn parse(value: &str) -> Result<Option<u64>, Error> {
    match value.trim() {
        "" => Ok(None),
        v => v.parse().map(Some).map_err(|_| {
            Error::invalid(format!(
                "SOURCE_DATE_EPOCH={value:?}: must be seconds since 1970 (an integer)"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_every_command() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("  ").unwrap(), None);
        assert_eq!(parse("1700000000").unwrap(), Some(1_700_000_000));
        assert_eq!(parse(" 42\n").unwrap(), Some(42));
        for bad in ["-1", "1.5", "yesterday"] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("seconds since 1970"), "{err}");
        }
    }
}
