//! URLs in messages and logs.

/// `url` fit for messages and logs: scheme, host, port and path, without the userinfo, query and
/// fragment, which may carry credentials or signatures (`data:` URLs keep only their scheme).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return match url.split_once(':') {
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("data") => "data:...".into(),
            _ => url.split(['?', '#']).next().unwrap_or_default().to_owned(),
        };
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_queries_and_data_are_dropped() {
        assert_eq!(
            redact("https://u:p@host:8/a/b?sig=1#f"),
            "https://host:8/a/b"
        );
        assert_eq!(redact("data:,secret"), "data:...");
        assert_eq!(redact("http://h/x"), "http://h/x");
    }
}
