//! The systemd-sysupdate transfer file that keeps a node on the newest patch release of the
//! Kubernetes minor it was baked with (sysupdate.d(5); Flatcar sysext-bakery's kubernetes
//! transfer is the model).
//!
//! The pattern fixes the minor and makes the patch the version: `NAME-v1.31.@v-%a.raw`, so `@v`
//! is `4` for `NAME-v1.31.4-x86-64.raw` and never matches a `v1.32.*` image. systemd-sysupdate
//! orders versions with `strverscmp_improved()` (the UAPI version format), which compares digit
//! runs numerically: `10` > `9` > `4`. Pre-releases (`v1.32.0-rc.1` gives `@v` = `0-rc.1`) must
//! not be published in the same directory as releases. `%a` is systemd's architecture name
//! (`x86-64`, `arm64`), the same names kiln uses in image file names.
//!
//! The source directory must carry a `SHA256SUMS` listing the images (kiln writes one);
//! `Verify=yes` additionally needs `SHA256SUMS.gpg` signed by a key in the node's
//! `/etc/systemd/import-pubring.gpg`: kiln writes it with `kiln build --gpg-key`, and the file
//! says `Verify=yes` then, `Verify=no` otherwise.
//!
//! File name: systemd < 257 reads only `*.conf` transfer files; 257 and later also read
//! `*.transfer` and warn about `*.conf`. kiln writes `NAME.conf`, which every systemd with
//! sysupdate (≥ 251) reads.

use anyhow::Context as _;
use kiln_core::version::KubeVersion;

/// The transfer file's name for extension `name`.
pub fn file_name(name: &str) -> String {
    format!("{name}.conf")
}

/// The transfer file for extension `name` baked from `kubernetes_version` (`v1.31.4`), fetching
/// from the directory URL `base_url`. `signed`: the published `SHA256SUMS` has a detached
/// `SHA256SUMS.gpg` (then `Verify=yes`).
pub fn transfer(
    name: &str,
    kubernetes_version: &str,
    base_url: &str,
    signed: bool,
) -> anyhow::Result<String> {
    let version: KubeVersion = kubernetes_version
        .parse()
        .with_context(|| format!("kubernetes_version {kubernetes_version:?}"))?;
    anyhow::ensure!(
        base_url.starts_with("https://") || base_url.starts_with("http://"),
        "outputs.sysupdate_url {base_url:?}: must be an http:// or https:// URL"
    );
    anyhow::ensure!(
        !base_url.contains(char::is_whitespace) && !base_url.contains('%'),
        "outputs.sysupdate_url {base_url:?}: no spaces or '%' (sysupdate expands % specifiers)"
    );
    let minor = format!("{}.{}", version.major, version.minor);
    let pattern = format!("{name}-v{minor}.@v-%a.raw");
    let base = format!("{}/", base_url.trim_end_matches('/'));
    let verify = if signed {
        "# SHA256SUMS is signed (SHA256SUMS.gpg); put the public key in\n\
         # /etc/systemd/import-pubring.gpg (gpg --export KEY > import-pubring.gpg).\nVerify=yes"
    } else {
        "# No SHA256SUMS.gpg is published; the sums still guard against corrupt downloads.\n\
         # Build with `kiln build --gpg-key` to sign them and verify (guards against a\n\
         # tampered server).\nVerify=no"
    };
    Ok(format!(
        "# {name}: follows the v{minor}.x patch releases published at {base}.\n\
         # Install as /etc/sysupdate.{name}.d/{file}, then run\n\
         #   /usr/lib/systemd/systemd-sysupdate --component={name} update\n\
         # and `systemd-sysext refresh` to merge the new image.\n\
         [Transfer]\n\
         {verify}\n\
         \n\
         [Source]\n\
         Type=url-file\n\
         Path={base}\n\
         MatchPattern={pattern}\n\
         \n\
         [Target]\n\
         Type=regular-file\n\
         Path=/opt/extensions/{name}\n\
         MatchPattern={pattern}\n\
         CurrentSymlink=/etc/extensions/{name}.raw\n\
         InstancesMax=3\n",
        file = file_name(name),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bake::arch::Arch;

    /// The sysext image's file name, as `Plan::sysext_name` makes it.
    fn image_name(name: &str, kubernetes_version: &str, arch: Arch) -> String {
        format!("{name}-{kubernetes_version}-{}.raw", arch.systemd())
    }

    #[test]
    fn transfer_follows_patches_of_the_baked_minor() {
        let text = transfer(
            "kubernetes",
            "v1.31.4",
            "https://example.com/sysext//",
            false,
        )
        .unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "[Transfer]",
                "Verify=no",
                "",
                "[Source]",
                "Type=url-file",
                "Path=https://example.com/sysext/",
                "MatchPattern=kubernetes-v1.31.@v-%a.raw",
                "",
                "[Target]",
                "Type=regular-file",
                "Path=/opt/extensions/kubernetes",
                "MatchPattern=kubernetes-v1.31.@v-%a.raw",
                "CurrentSymlink=/etc/extensions/kubernetes.raw",
                "InstancesMax=3",
            ]
        );
        assert!(text.contains("/etc/sysupdate.kubernetes.d/kubernetes.conf"));
        assert!(text.ends_with('\n'));
        let signed = transfer("k8s", "v1.30.10", "https://example.com", true).unwrap();
        assert!(signed.contains("\nVerify=yes\n") && signed.contains("k8s-v1.30.@v-%a.raw"));
    }

    /// The pattern, with `@v` and `%a` as sysupdate reads them, matches exactly the image names
    /// kiln writes for the same minor.
    #[test]
    fn pattern_matches_the_image_names_of_the_minor_only() {
        let text = transfer("kubernetes", "v1.31.4", "https://example.com/", false).unwrap();
        let pattern = text
            .lines()
            .find_map(|l| l.strip_prefix("MatchPattern="))
            .unwrap();
        let (prefix, suffix) = pattern.split_once("@v").unwrap();
        let version_of = |file: &str, arch: Arch| -> Option<String> {
            let suffix = suffix.replace("%a", arch.systemd());
            let v = file.strip_prefix(prefix)?.strip_suffix(&suffix)?;
            v.bytes().all(|b| b.is_ascii_digit()).then(|| v.to_owned())
        };
        for arch in [Arch::Amd64, Arch::Arm64] {
            let v = |k: &str| version_of(&image_name("kubernetes", k, arch), arch);
            assert_eq!(v("v1.31.4").as_deref(), Some("4"));
            assert_eq!(v("v1.31.12").as_deref(), Some("12"));
            assert_eq!(v("v1.32.0"), None);
            assert_eq!(v("v1.3.14"), None);
        }
        assert_eq!(
            version_of(
                &image_name("kubernetes", "v1.31.4", Arch::Arm64),
                Arch::Amd64
            ),
            None
        );
    }

    #[test]
    fn bad_inputs_are_named() {
        for (version, url, needle) in [
            ("1.31", "https://e/", "kubernetes_version"),
            ("v1.31.4", "ftp://e/", "sysupdate_url"),
            ("v1.31.4", "https://e/%a/", "'%'"),
        ] {
            let err = transfer("kubernetes", version, url, false).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}
