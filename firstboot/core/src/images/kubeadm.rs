//! Asking a kubeadm binary which images it will pull: `kubeadm config images list
//! --kubernetes-version V [--image-repository R] -o json`. The version is always passed (the
//! default, `stable-1`, asks the internet); the run is bounded in time and output, and its
//! answer is checked before kiln uses it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use crate::command::Run;
use crate::version::KubeVersion;
use crate::Error;

/// At most this many images in an answer (kubeadm lists 7).
const MAX_IMAGES: usize = 64;
/// The most kubeadm may print (its answer is well under 2 KiB).
const MAX_OUTPUT: usize = 1 << 20;
/// How long kubeadm may take to answer (it answers from built-in constants, in well under 1 s).
const TIMEOUT: Duration = Duration::from_secs(60);

/// kubeadm's structured output (`output.kubeadm.k8s.io/v1alpha2` or `v1alpha3`, kind Images).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Images {
    kind: String,
    api_version: String,
    images: Vec<String>,
}

/// The images `kubeadm` lists for `version`, in kubeadm's order.
pub fn ask(
    kubeadm: &Path,
    version: &KubeVersion,
    repository: Option<&str>,
) -> Result<Vec<String>, Error> {
    ask_named(kubeadm, &kubeadm.display().to_string(), version, repository)
}

/// [`ask`], naming the binary `name` in errors (e.g. where it was downloaded from).
pub fn ask_named(
    kubeadm: &Path,
    name: &str,
    version: &KubeVersion,
    repository: Option<&str>,
) -> Result<Vec<String>, Error> {
    let version = version.to_string();
    let mut args = vec!["config", "images", "list", "--kubernetes-version", &version];
    args.extend(["-o", "json"]);
    if let Some(repo) = repository {
        args.extend(["--image-repository", repo]);
    }
    let (what, stdout) = run(kubeadm, name, &args)?;
    parse(stdout.as_bytes()).map_err(|e| Error::invalid(format!("{what}: {e}")))
}

/// The release of `kubeadm`, from `kubeadm version -o short`.
pub fn version(kubeadm: &Path) -> Result<KubeVersion, Error> {
    let (what, stdout) = run(
        kubeadm,
        &kubeadm.display().to_string(),
        &["version", "-o", "short"],
    )?;
    stdout
        .trim()
        .parse()
        .map_err(|e| Error::invalid(format!("{what}: printed {:?}: {e}", stdout.trim())))
}

/// Runs `kubeadm ARGS` with an empty environment (only a standard PATH), bounded in time and
/// output; returns the command as named in errors and its stdout.
fn run(kubeadm: &Path, name: &str, args: &[&str]) -> Result<(String, String), Error> {
    let what = format!("{name} {}", args[..args.len().min(5)].join(" "));
    let mut cmd = Command::new(kubeadm);
    cmd.args(args).env_clear().env(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    let done = Run::new(&mut cmd, &what)
        .timeout(TIMEOUT)
        .max_stdout(MAX_OUTPUT)
        .run()?;
    Ok((what, String::from_utf8_lossy(&done.stdout).into_owned()))
}

/// Checks and decodes kubeadm's JSON answer.
pub fn parse(stdout: &[u8]) -> Result<Vec<String>, String> {
    let text = String::from_utf8_lossy(stdout);
    let doc: Images = serde_json::from_str(&text).map_err(|e| {
        format!(
            "printed something that is not kubeadm's image list ({e}): {:?}",
            text.chars().take(200).collect::<String>()
        )
    })?;
    if doc.kind != "Images" || !doc.api_version.starts_with("output.kubeadm.k8s.io/") {
        return Err(format!(
            "printed a {} {} document, not kubeadm's Images list",
            doc.api_version, doc.kind
        ));
    }
    if doc.images.is_empty() || doc.images.len() > MAX_IMAGES {
        return Err(format!("listed {} images", doc.images.len()));
    }
    if let Some(bad) = doc.images.iter().find(|i| !plausible_reference(i)) {
        return Err(format!("listed {bad:?}, which is not an image reference"));
    }
    for needed in ["pause", "kube-proxy"] {
        if image_named(&doc.images, needed).is_none() {
            return Err(format!("listed no {needed} image: {:?}", doc.images));
        }
    }
    Ok(doc.images)
}

/// `REGISTRY[:PORT]/PATH:TAG` (or `…@sha256:…`) with no spaces or control characters: the tag's
/// `:` is the one after the last `/` (a registry's port comes before it).
fn plausible_reference(image: &str) -> bool {
    let (name, digest) = image
        .split_once('@')
        .map_or((image, None), |(n, d)| (n, Some(d)));
    let tagged = name
        .rsplit_once('/')
        .is_some_and(|(_, last)| last.contains(':'));
    image.len() <= 255
        && name.contains('/')
        && (tagged || digest.is_some_and(|d| d.starts_with("sha256:")))
        && !image.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The image whose last path component is `name` (`pause`, `kube-proxy`, `etcd`, `coredns`).
pub fn image_named<'a>(images: &'a [String], name: &str) -> Option<&'a str> {
    images
        .iter()
        .find(|i| {
            let path = i.split('@').next().unwrap_or(i);
            let last = path.rsplit('/').next().unwrap_or(path);
            last.split(':').next() == Some(name) && path.contains('/')
        })
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = r#"{
    "kind": "Images",
    "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
    "images": [
        "registry.k8s.io/kube-apiserver:v1.36.3",
        "registry.k8s.io/kube-controller-manager:v1.36.3",
        "registry.k8s.io/kube-scheduler:v1.36.3",
        "registry.k8s.io/kube-proxy:v1.36.3",
        "registry.k8s.io/coredns/coredns:v1.14.2",
        "registry.k8s.io/pause:3.10.2",
        "registry.k8s.io/etcd:3.6.8-0"
    ]
}
"#;

    #[test]
    fn parses_kubeadms_json() {
        let images = parse(ANSWER.as_bytes()).unwrap();
        assert_eq!(images.len(), 7);
        assert_eq!(
            image_named(&images, "pause"),
            Some("registry.k8s.io/pause:3.10.2")
        );
        assert_eq!(
            image_named(&images, "coredns"),
            Some("registry.k8s.io/coredns/coredns:v1.14.2")
        );
        assert_eq!(image_named(&images, "kube"), None);
        let ported = ["r.example:5000/k8s/pause@sha256:ab".to_owned()];
        assert_eq!(image_named(&ported, "pause"), Some(ported[0].as_str()));
    }

    #[test]
    fn references_with_a_registry_port_or_a_digest_are_plausible() {
        for ok in [
            "r.example:5000/k8s/pause:3.10.2",
            "registry.k8s.io/coredns/coredns:v1.14.2",
            "r.example:5000/k8s/pause@sha256:abc",
        ] {
            assert!(plausible_reference(ok), "{ok}");
        }
        for bad in [
            "pause:3.10",
            "r.example:5000/k8s/pause",
            "a b/c:d",
            "r/x@md5:1",
        ] {
            assert!(!plausible_reference(bad), "{bad}");
        }
    }

    #[test]
    fn refuses_what_is_not_an_image_list() {
        let bad = |s: &str| parse(s.as_bytes()).unwrap_err();
        assert!(bad("registry.k8s.io/pause:3.10\n").contains("not kubeadm's image list"));
        assert!(bad(r#"{"kind":"Foo","apiVersion":"v1","images":[]}"#).contains("not kubeadm's"));
        let ok_head = r#"{"kind":"Images","apiVersion":"output.kubeadm.k8s.io/v1alpha2","images":"#;
        assert!(bad(&format!("{ok_head}[]}}")).contains("listed 0 images"));
        assert!(bad(&format!("{ok_head}[\"a b\"]}}")).contains("not an image reference"));
        let no_pause = format!("{ok_head}[\"r.example/kube-proxy:v1\"]}}");
        assert!(bad(&no_pause).contains("no pause image"));
    }

    #[test]
    fn asks_a_program_and_reports_its_failure() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("kubeadm");
        let script =
            format!("#!/bin/sh\n[ \"$5\" = v1.36.3 ] || exit 9\ncat <<'EOF'\n{ANSWER}EOF\n");
        write_exe(&fake, &script);
        let version: KubeVersion = "v1.36.3".parse().unwrap();
        assert_eq!(ask(&fake, &version, None).unwrap().len(), 7);
        write_exe(
            &fake,
            "#!/bin/sh\necho 'this version of kubeadm only supports' >&2\nexit 1\n",
        );
        let err = ask(&fake, &version, None).unwrap_err().to_string();
        assert!(
            err.contains("config images list --kubernetes-version v1.36.3: failed"),
            "{err}"
        );
        assert!(err.contains("only supports"), "{err}");
    }

    #[test]
    fn asks_a_program_its_release() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("kubeadm");
        write_exe(
            &fake,
            "#!/bin/sh\n[ \"$*\" = \"version -o short\" ] && echo v1.36.3\n",
        );
        assert_eq!(version(&fake).unwrap().to_string(), "v1.36.3");
        write_exe(&fake, "#!/bin/sh\necho garbage\n");
        let err = version(&fake).unwrap_err().to_string();
        assert!(
            err.contains("version -o short: printed \"garbage\""),
            "{err}"
        );
    }

    fn write_exe(path: &Path, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}
