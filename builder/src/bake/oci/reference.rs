//! Image references (`registry/repository:tag@sha256:…`) parsed and normalized the way Docker and
//! containerd do: no registry means `docker.io`, a one-component Docker Hub name gets `library/`,
//! no tag and no digest means `:latest`.

use std::fmt;
use std::str::FromStr;

use kiln_core::digest;

/// A normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    /// The registry host (`registry.k8s.io`, `docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// The repository below it (`pause`, `library/nginx`).
    pub repository: String,
    /// The tag, if any (`3.10`).
    pub tag: Option<String>,
    /// The pinned digest, if any (`sha256:<hex>`).
    pub digest: Option<String>,
}

impl FromStr for Reference {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("image reference {s:?}: {why}");
        let (rest, digest) = split_digest(s).map_err(bad)?;
        let (name, tag) = split_tag(rest);
        let (registry, repository) = split_registry(name);
        if !is_valid_repository(registry, &repository) {
            return Err(bad(
                "the repository must be lower-case letters, digits, '.', '_', '-' and '/'",
            ));
        }
        if tag.is_some_and(|tag| !is_valid_tag(tag)) {
            return Err(bad("the tag must be up to 128 of [A-Za-z0-9_.-]"));
        }
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_owned()),
            (t, _) => t.map(str::to_owned),
        };
        Ok(Reference {
            registry: registry.to_owned(),
            repository,
            tag,
            digest,
        })
    }
}

/// The reference before `@`, and the digest after it (`sha256:` and lower-case hex).
fn split_digest(s: &str) -> Result<(&str, Option<String>), &'static str> {
    match s.split_once('@') {
        Some((rest, d)) => {
            let hex = d
                .strip_prefix("sha256:")
                .filter(|h| digest::is_sha256_hex(h))
                .ok_or("the digest must be sha256:<64 hex characters>")?;
            Ok((rest, Some(format!("sha256:{}", hex.to_ascii_lowercase()))))
        }
        None => Ok((s, None)),
    }
}

/// The name and the tag after its last `:`, unless that `:` is a registry's port.
fn split_tag(rest: &str) -> (&str, Option<&str>) {
    match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    }
}

/// The registry (a first component with `.` or `:`, or `localhost`; else Docker Hub) and the
/// repository, normalized as Docker does: one Docker Hub name, one spelling with `library/`.
fn split_registry(name: &str) -> (&str, String) {
    let (registry, repository) = match name.split_once('/') {
        Some((first, repo))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, repo.to_owned())
        }
        _ => ("docker.io", name.to_owned()),
    };
    let registry = match registry {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        r => r,
    };
    if registry == "docker.io" && !repository.contains('/') {
        (registry, format!("library/{repository}"))
    } else {
        (registry, repository)
    }
}

fn is_valid_repository(registry: &str, repository: &str) -> bool {
    !registry.is_empty()
        && repository
            .split('/')
            .all(|c| !c.is_empty() && c.bytes().all(is_repository_byte))
}

/// Up to 128 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
fn is_valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn is_repository_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
}

impl fmt::Display for Reference {
    /// The full normalized reference (`docker.io/library/nginx:1.27`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repo())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl Reference {
    /// `registry/repository` without tag or digest.
    pub fn repo(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to ask the registry's manifest endpoint for: the digest if pinned, else the tag.
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The names containerd's CRI gives an image pulled by this reference: `repo:tag` (when
    /// tagged) and `repo@<digest of what the reference resolved to>`, so kubelet finds it by
    /// either.
    pub fn image_names(&self, resolved_digest: &str) -> Vec<String> {
        let mut names = Vec::new();
        if let Some(tag) = &self.tag {
            names.push(format!("{}:{tag}", self.repo()));
        }
        names.push(format!("{}@{resolved_digest}", self.repo()));
        names
    }

    /// A file name for this image's archive ([`kiln_core::images::archive_name`]:
    /// `registry.k8s.io_pause_3.10.tar`).
    pub fn archive_name(&self) -> String {
        kiln_core::images::archive_name(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Reference {
        s.parse().unwrap()
    }

    #[test]
    fn docker_defaults_apply() {
        assert_eq!(parse("nginx").to_string(), "docker.io/library/nginx:latest");
        assert_eq!(
            parse("flannel/flannel:v0.26.1").to_string(),
            "docker.io/flannel/flannel:v0.26.1"
        );
        assert_eq!(
            parse("index.docker.io/library/busybox:1").to_string(),
            "docker.io/library/busybox:1"
        );
        let r = parse("registry.k8s.io/pause:3.10");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("registry.k8s.io", "pause")
        );
        assert_eq!(r.archive_name(), "registry.k8s.io_pause_3.10.tar");
    }

    #[test]
    fn ports_digests_and_localhost() {
        let hex = "a".repeat(64);
        let r = parse(&format!("127.0.0.1:5000/team/app:1.0@sha256:{hex}"));
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.manifest_ref(), format!("sha256:{hex}"));
        let r = parse(&format!("localhost/app@sha256:{hex}"));
        assert_eq!(r.registry, "localhost");
        assert_eq!(r.tag, None);
        assert_eq!(r.image_names("sha256:x"), vec!["localhost/app@sha256:x"]);
        assert_eq!(
            parse("registry.k8s.io/pause:3.10").image_names("sha256:x"),
            vec![
                "registry.k8s.io/pause:3.10",
                "registry.k8s.io/pause@sha256:x"
            ]
        );
    }

    #[test]
    fn tag_and_registry_split() {
        assert_eq!(split_tag("reg.io:5000/app"), ("reg.io:5000/app", None));
        assert_eq!(
            split_tag("reg.io:5000/app:1"),
            ("reg.io:5000/app", Some("1"))
        );
        assert_eq!(
            split_registry("nginx"),
            ("docker.io", "library/nginx".into())
        );
        assert_eq!(
            split_registry("registry-1.docker.io/a/b"),
            ("docker.io", "a/b".into())
        );
        assert_eq!(split_registry("team/app"), ("docker.io", "team/app".into()));
        assert!(
            is_valid_tag("v1.0_rc-1") && !is_valid_tag("-x") && !is_valid_tag(&"a".repeat(129))
        );
        assert_eq!(
            split_digest("x@sha256:AB"),
            Err("the digest must be sha256:<64 hex characters>")
        );
    }

    #[test]
    fn bad_references_are_refused() {
        for bad in [
            "Upper/case",
            "a//b",
            "x:",
            "x@sha256:abc",
            "x@md5:0123",
            "reg.io/x:bad tag",
            "",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad}");
        }
    }
}
