//! Text that leaves kiln (log lines, error messages) without secrets or forged lines: the
//! stateless scrubbers both binaries share. What a bootstrap token looks like in free text
//! ([`tokens_in`]), decoder messages without the values they quote ([`decode_error`]), and
//! control characters escaped ([`escape`]). kiln-firstboot's `Redactor` (the known secrets of
//! one run) and [`crate::url::redact`] build on these.

use std::borrow::Cow;

/// What replaces a secret or a quoted value.
pub const REDACTED: &str = "<redacted>";

/// Every bootstrap-token-shaped string (`[a-z0-9]{6}.[a-z0-9]{16}`, not inside a longer run of
/// `[a-z0-9]`) in `text`, as byte ranges.
pub fn tokens_in(text: &str) -> Vec<std::ops::Range<usize>> {
    let bytes = text.as_bytes();
    let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut found = Vec::new();
    for (i, _) in text.match_indices('.') {
        let (Some(start), Some(end)) = (i.checked_sub(6), i.checked_add(17)) else {
            continue;
        };
        if end > bytes.len()
            || !bytes[start..i].iter().all(|&b| ok(b))
            || !bytes[i + 1..end].iter().all(|&b| ok(b))
        {
            continue;
        }
        let before_ok = start == 0 || !ok(bytes[start - 1]);
        let after_ok = end == bytes.len() || !ok(bytes[end]);
        if before_ok && after_ok {
            found.push(start..end);
        }
    }
    found
}

/// `text` with every bootstrap-token-shaped string replaced by [`REDACTED`].
pub fn without_tokens(text: &str) -> Cow<'_, str> {
    let spans = tokens_in(text);
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for span in spans {
        out.push_str(&text[at..span.start]);
        out.push_str(REDACTED);
        at = span.end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// A decoder's (serde, TOML, YAML, JSON) message without the values it quotes: a token put in
/// the wrong field would otherwise be printed back. `"…"` strings (with their escapes) and the
/// backquoted value of ``unknown variant `…` `` become `"…"` and `` `…` ``; field names, types,
/// lines and columns stay.
pub fn decode_error(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(['"', '`']) {
        let (before, quoted) = rest.split_at(i);
        out.push_str(before);
        let quote = quoted.as_bytes()[0] as char;
        let value_follows = quote == '"' || before.ends_with("variant ");
        let end = closing_quote(&quoted[1..], quote).map(|e| e + 2);
        match (value_follows, end) {
            (true, Some(end)) => {
                out.push(quote);
                out.push('…');
                out.push(quote);
                rest = &quoted[end..];
            }
            // An unterminated value: drop the rest rather than show part of it.
            (true, None) => {
                out.push(quote);
                out.push('…');
                return out;
            }
            (false, Some(end)) => {
                out.push_str(&quoted[..end]);
                rest = &quoted[end..];
            }
            (false, None) => {
                out.push_str(quoted);
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Where the value that starts `text` ends: the byte index of its closing `quote` (a `"` may
/// be escaped with `\`).
fn closing_quote(text: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '\\' if quote == '"' && !escaped => escaped = true,
            c if c == quote && !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

/// `text` fit for one log line: control characters (newline, carriage return, escape, …) are
/// written as Rust escapes (`\n`, `\u{1b}`), so a path or value cannot forge further lines or
/// terminal sequences. Text without control characters is returned as is.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_only_whole() {
        let text = "a 9a08jv.c0izixklcxtmnze7 b x9a08jv.c0izixklcxtmnze7 registry.k8s.io";
        assert_eq!(tokens_in(text), vec![2..25]);
        assert_eq!(
            without_tokens("/join/9a08jv.c0izixklcxtmnze7/x"),
            "/join/<redacted>/x"
        );
    }

    #[test]
    fn decode_errors_keep_fields_and_lose_values() {
        let token = "9a08jv.c0izixklcxtmnze7";
        let cases = [
            (
                format!("invalid type: string \"{token}\", expected a boolean"),
                "invalid type: string \"…\", expected a boolean",
            ),
            (
                format!("unknown variant `{token}`, expected `Init` or `Join` at line 3"),
                "unknown variant `…`, expected `Init` or `Join` at line 3",
            ),
            (
                "unknown field `tokn`, expected `token`".to_owned(),
                "unknown field `tokn`, expected `token`",
            ),
            (
                format!("invalid value: string \"a\\\"{token}\" at line 2"),
                "invalid value: string \"…\" at line 2",
            ),
            (format!("cut \"{token}"), "cut \"…"),
        ];
        for (message, want) in cases {
            assert_eq!(decode_error(&message), want);
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("/srv/a b"), "/srv/a b");
        assert_eq!(
            escape("/x\n ERROR forged\r\u{1b}[2J"),
            "/x\\n ERROR forged\\r\\u{1b}[2J"
        );
    }
}
