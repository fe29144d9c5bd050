//! Keeping secrets out of logs and status files: bootstrap tokens, certificate keys, password
//! hashes and other known secret strings are replaced by `<redacted>` in any text kiln writes
//! out. The shapes of secrets in free text come from [`kiln_core::redact`].

/// Removes known secrets (bootstrap tokens, certificate keys, password hashes) from text before
/// it is logged or saved.
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
        for span in kiln_core::redact::tokens_in(text) {
            self.add(&text[span]);
        }
    }

    /// Adds the values of a certificate key (64 hex characters) in `text`, in each spelling
    /// that can hold one: `certificateKey:` (kubeadm YAML), `--certificate-key` (kubeadm's
    /// command line) and `certificate_key =` (node.toml).
    pub fn add_certificate_keys_in(&mut self, text: &str) {
        for marker in ["certificateKey", "certificate-key", "certificate_key"] {
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
    /// gzipped or base64-encoded; the plan has them decoded) and its users' and groups'
    /// password hashes (a shadow tool may echo them).
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
        let hashes = plan.users.iter().map(|u| &u.password_hash);
        for hash in hashes.chain(plan.groups.iter().map(|g| &g.password_hash)) {
            self.add(hash.as_deref().unwrap_or_default());
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

    /// `text` with every known secret and every bootstrap-token-shaped string replaced by
    /// `<redacted>`, and every URL in it through the one URL redactor (no userinfo or query).
    pub fn clean(&self, text: &str) -> String {
        // URLs first: a `<redacted>` inside one would end it before its query.
        let known = self
            .secrets
            .iter()
            .fold(kiln_core::url::redact_in(text), |t, s| {
                t.replace(s.as_str(), "<redacted>")
            });
        kiln_core::redact::without_tokens(&known).into_owned()
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
    fn unknown_tokens_and_url_credentials_are_cleaned_too() {
        let r = Redactor::default();
        assert_eq!(
            r.clean("GET https://u:pw@h/join/9a08jv.c0izixklcxtmnze7?sig=x failed"),
            "GET https://h/join/<redacted> failed"
        );
    }

    #[test]
    fn node_toml_certificate_keys_are_found() {
        let key = "b".repeat(64);
        let mut r = Redactor::default();
        r.add_certificate_keys_in(&format!(
            "role = \"control-plane\"\ncertificate_key = \"{key}\"\n"
        ));
        assert_eq!(r.clean(&format!("x {key}")), "x <redacted>");
    }

    #[test]
    fn password_hashes_of_the_plan_are_known() {
        let hash = "$6$rounds=4096$salt$0123456789abcdefghij";
        let mut plan = crate::plan::Plan::default();
        plan.users.push(crate::plan::User {
            name: "ops".into(),
            password_hash: Some(hash.into()),
            ..Default::default()
        });
        plan.groups.push(crate::plan::Group {
            name: "g".into(),
            password_hash: Some("$y$j9T$groupsalt$grouphash".into()),
            ..Default::default()
        });
        let mut r = Redactor::default();
        r.add_from_plan(&plan);
        assert_eq!(
            r.clean(&format!("useradd: bad {hash}; $y$j9T$groupsalt$grouphash")),
            "useradd: bad <redacted>; <redacted>"
        );
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
