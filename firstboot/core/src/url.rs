//! URLs in messages and logs: the one URL redactor.

use crate::redact::without_tokens;

/// `url` fit for messages and logs: scheme, host, port and path, without the userinfo, query and
/// fragment, which may carry credentials or signatures (`data:` URLs keep only their scheme),
/// and with bootstrap tokens in the path replaced by `<redacted>`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return match url.split_once(':') {
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("data") => "data:...".into(),
            _ => without_tokens(url.split(['?', '#']).next().unwrap_or_default()).into_owned(),
        };
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{}", without_tokens(path))
}

/// `text` (an error message, a log line) with every `http://` or `https://` URL in it passed
/// through [`redact`]; a URL ends at white space, a quote or a bracket (and trailing `:,.;`
/// are left outside it).
pub fn redact_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_url(rest) {
        out.push_str(&rest[..start]);
        let url = &rest[start..];
        let end = url
            .find(|c: char| c.is_whitespace() || "\"'`<>()[]{}|\\^".contains(c))
            .unwrap_or(url.len());
        // Punctuation that ends a sentence is not part of the URL.
        let end = url[..end].trim_end_matches([':', ',', '.', ';']).len();
        out.push_str(&redact(&url[..end]));
        rest = &url[end..];
    }
    out.push_str(rest);
    out
}

/// The byte index of the first `http://` or `https://` in `text` (case-insensitive).
fn find_url(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    ["http://", "https://"]
        .iter()
        .filter_map(|scheme| lower.find(scheme))
        .min()
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

    #[test]
    fn tokens_in_paths_are_redacted() {
        assert_eq!(
            redact("https://h/join/9a08jv.c0izixklcxtmnze7/user-data?x=1"),
            "https://h/join/<redacted>/user-data"
        );
    }

    #[test]
    fn urls_in_text_are_redacted() {
        let text = "GET https://u:p@cdn.example/blob?X-Amz-Signature=s3cr3t: failed (see \
                    \"http://h/a?b=c\"), HTTPS://x/y?q";
        assert_eq!(
            redact_in(text),
            "GET https://cdn.example/blob: failed (see \"http://h/a\"), HTTPS://x/y"
        );
    }
}
