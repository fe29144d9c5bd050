//! Keeping secrets out of logs and status files: bootstrap tokens, certificate keys and other
//! known secret strings are replaced by `<redacted>` in any text kiln writes out.

/// Removes known secrets (bootstrap tokens, certificate keys) from text before it is logged or
/// saved.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Adds a secret; empty strings are ignored.
    pub fn add(&mut self, secret: &str) {
        if secret.len() >= 6 {
            self.secrets.push(secret.to_owned());
        }
    }

    /// Adds every bootstrap-token-shaped string (`[a-z0-9]{6}.[a-z0-9]{16}`) found in `text`.
    pub fn add_tokens_in(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
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
                self.add(&text[start..end]);
            }
        }
    }

    /// Adds the values of `certificateKey:` / `--certificate-key` (64 hex characters) in `text`.
    pub fn add_certificate_keys_in(&mut self, text: &str) {
        for marker in ["certificateKey", "certificate-key"] {
            for (i, _) in text.match_indices(marker) {
                let rest = &text[i + marker.len()..];
                let value = rest.trim_start_matches([':', '=', ' ', '"', '\'']);
                let hex: String = value
                    .chars()
                    .take_while(|c| c.is_ascii_hexdigit())
                    .collect();
                if hex.len() == 64 {
                    self.add(&hex);
                }
            }
        }
    }

    /// Adds the secrets found in every file and command of `plan` (user-data may carry them
    /// gzipped or base64-encoded; the plan has them decoded).
    pub fn add_from_plan(&mut self, plan: &crate::plan::Plan) {
        let mut texts: Vec<String> = Vec::new();
        for node in &plan.nodes {
            if let crate::plan::Node::File(f) = node {
                texts.extend(
                    f.contents
                        .iter()
                        .chain(&f.append)
                        .map(|b| String::from_utf8_lossy(b).into_owned()),
                );
            }
        }
        for cmd in &plan.commands {
            texts.push(cmd.argv.join(" "));
            texts.extend(
                cmd.script
                    .iter()
                    .map(|b| String::from_utf8_lossy(b).into_owned()),
            );
        }
        for text in texts {
            self.add_tokens_in(&text);
            self.add_certificate_keys_in(&text);
        }
    }

    /// `text` with every secret replaced by `<redacted>`.
    pub fn clean(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_owned(), |t, s| t.replace(s.as_str(), "<redacted>"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redactor_removes_every_occurrence() {
        let mut r = Redactor::default();
        r.add("abcdef.0123456789abcdef");
        r.add("");
        assert_eq!(
            r.clean("join --token abcdef.0123456789abcdef failed; abcdef.0123456789abcdef"),
            "join --token <redacted> failed; <redacted>"
        );
    }

    #[test]
    fn certificate_keys_are_found() {
        let key = "a".repeat(64);
        let mut r = Redactor::default();
        r.add_certificate_keys_in(&format!(
            "certificateKey: \"{key}\"\nkubeadm join --certificate-key {key}"
        ));
        assert_eq!(r.clean(&format!("x {key}")), "x <redacted>");
    }

    #[test]
    fn tokens_are_found_in_text() {
        let mut r = Redactor::default();
        r.add_tokens_in(
            "token: \"9a08jv.c0izixklcxtmnze7\"\nname: a.b\nimage: registry.k8s.io/pause:3.10\n",
        );
        assert_eq!(r.clean("x 9a08jv.c0izixklcxtmnze7 y"), "x <redacted> y");
        assert_eq!(r.clean("registry.k8s.io"), "registry.k8s.io");
    }
}
