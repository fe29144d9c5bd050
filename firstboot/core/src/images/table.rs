//! kiln's table of kubeadm releases: `firstboot/core/data/kubeadm-images.tsv`, a copy of the
//! shared `kubeadm-images.tsv` (what `kubeadm config images list --kubernetes-version V` printed,
//! run with each release's own kubeadm; source in the file's header). One row per release,
//! pre-releases included, oldest first. It is the fallback when no kubeadm binary can be asked.

use std::sync::OnceLock;

use crate::version::KubeVersion;
use crate::Error;

/// Where the table lives in the source tree, for error messages.
pub const TABLE_PATH: &str = "firstboot/core/data/kubeadm-images.tsv";

const TABLE_TSV: &str = include_str!("../../data/kubeadm-images.tsv");

/// The CoreDNS, etcd and pause tags one kubeadm release lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The release (`v1.36.3`, `v1.37.0-rc.0`).
    pub version: KubeVersion,
    /// CoreDNS tag (`v1.14.2`).
    pub coredns: String,
    /// etcd tag (`3.6.8-0`).
    pub etcd: String,
    /// pause tag (`3.10.2`).
    pub pause: String,
}

/// Parses the TSV: `#` comments, then `VERSION<TAB>COREDNS<TAB>ETCD<TAB>PAUSE` rows.
pub fn parse(text: &str) -> Result<Vec<Release>, String> {
    let row = |[version, coredns, etcd, pause]: [&str; 4]| {
        Ok(Release {
            version: version.parse().map_err(|e| format!("{version}: {e}"))?,
            coredns: coredns.to_owned(),
            etcd: etcd.to_owned(),
            pause: pause.to_owned(),
        })
    };
    crate::tsv::rows(text)?.into_iter().map(row).collect()
}

/// Every release the table knows, oldest first (checked by the unit tests, so a parse error
/// is a build defect, not user input).
pub fn releases() -> &'static [Release] {
    static TABLE: OnceLock<Vec<Release>> = OnceLock::new();
    TABLE.get_or_init(|| parse(TABLE_TSV).unwrap_or_else(|e| panic!("{TABLE_PATH}: {e}")))
}

/// (major, minor, patch): the order of releases within the table.
fn key(v: &KubeVersion) -> (u32, u32, u32) {
    (v.major, v.minor, v.patch)
}

/// The newest GA release the table knows, or the newest of minor `1.MINOR` when given.
pub fn newest(minor: Option<u32>) -> Option<&'static Release> {
    releases()
        .iter()
        .filter(|r| r.version.pre.is_none())
        .filter(|r| minor.is_none_or(|m| r.version.major == 1 && r.version.minor == m))
        .max_by_key(|r| key(&r.version))
}

/// The row for exactly `version`, or an error that says why the table cannot answer and what
/// to do instead.
pub fn release(version: &KubeVersion) -> Result<&'static Release, Error> {
    if let Some(row) = releases().iter().find(|r| r.version == *version) {
        return Ok(row);
    }
    Err(Error::invalid(not_known(version)))
}

fn not_known(version: &KubeVersion) -> String {
    let oldest = &releases()[0].version;
    let latest = newest(None).map(|r| &r.version).unwrap_or(oldest);
    let ask = "ask that release's kubeadm instead (`kiln images list --kubeadm PATH`; `kiln build` \
               asks the baked kubeadm itself when the build machine can run it) or use a newer kiln";
    if key(version) > key(latest) {
        return format!(
            "kubeadm {version} is newer than kiln's image table ({TABLE_PATH}, newest {latest}): {ask}"
        );
    }
    if key(version) < key(oldest) {
        return format!(
            "kubeadm {version} is older than kiln's image table ({TABLE_PATH}, oldest {oldest}); \
             kiln supports kubeadm from {oldest}"
        );
    }
    let of_minor = newest(Some(version.minor))
        .map(|r| format!(" (1.{} ends at {})", version.minor, r.version));
    format!(
        "{version} is not a Kubernetes release kiln's image table knows{}: check the version \
         (`kiln versions` lists them), or {ask}",
        of_minor.unwrap_or_default()
    )
}

/// A `--kubernetes-version` as users write it: `v1.36.2`, `1.36.2`, a published pre-release
/// (`v1.37.0-rc.0`), or `1.36`/`v1.36` for the newest patch of that minor the table knows.
/// Exact versions are returned as given (the table need not know them: a kubeadm binary may);
/// channel names like `latest` or `stable` are refused (kiln never asks the internet).
pub fn resolve(text: &str) -> Result<KubeVersion, Error> {
    if let Ok(version) = text.parse::<KubeVersion>() {
        return Ok(version);
    }
    let Some(minor) = minor_only(text) else {
        return Err(Error::invalid(format!(
            "{text:?} is not a Kubernetes version: give v1.36.2, or v1.36 for the newest 1.36 \
             patch kiln knows (`kiln versions` lists them); kiln never looks up channels such \
             as stable or latest on the internet"
        )));
    };
    newest(Some(minor))
        .map(|r| r.version.clone())
        .ok_or_else(|| {
            Error::invalid(format!(
                "{text}: kiln knows no release of 1.{minor} (`kiln versions` lists those it \
                 knows); give the exact version, e.g. v1.{minor}.0"
            ))
        })
}

/// `1.36` or `v1.36` → 36.
fn minor_only(text: &str) -> Option<u32> {
    let (major, minor) = text.strip_prefix('v').unwrap_or(text).split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (major == "1" && digits(minor)).then(|| minor.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KubeVersion {
        s.parse().unwrap()
    }

    #[test]
    fn table_parses_in_release_order_without_duplicates() {
        let rows = releases();
        assert!(rows.len() > 100);
        for pair in rows.windows(2) {
            let (a, b) = (&pair[0].version, &pair[1].version);
            assert!(key(a) <= key(b), "{a} before {b}");
            assert_ne!(a, b);
        }
    }

    #[test]
    fn every_ga_patch_from_1_29_0_is_there() {
        let ga: Vec<&KubeVersion> = releases()
            .iter()
            .map(|r| &r.version)
            .filter(|v| v.pre.is_none())
            .collect();
        assert_eq!(*ga[0], v("v1.29.0"));
        for pair in ga.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let next_patch = b.minor == a.minor && b.patch == a.patch + 1;
            let next_minor = b.minor == a.minor + 1 && b.patch == 0;
            assert!(next_patch || next_minor, "gap between {a} and {b}");
        }
    }

    #[test]
    fn values_have_kubeadms_shapes() {
        for row in releases() {
            assert!(row.coredns.starts_with('v'), "coredns {}", row.coredns);
            assert!(!row.pause.starts_with('v'), "pause {}", row.pause);
            let (etcd, rev) = row.etcd.rsplit_once('-').expect("etcd tag like 3.5.15-0");
            assert!(
                etcd.starts_with("3.") && rev.parse::<u32>().is_ok(),
                "{}",
                row.etcd
            );
        }
    }

    #[test]
    fn newest_and_resolve() {
        assert_eq!(newest(Some(36)).unwrap().version, v("v1.36.3"));
        assert_eq!(resolve("1.36").unwrap(), v("v1.36.3"));
        assert_eq!(resolve("v1.29").unwrap(), v("v1.29.15"));
        assert_eq!(resolve("1.36.2").unwrap(), v("v1.36.2"));
        assert_eq!(resolve("v1.37.0-rc.0").unwrap(), v("v1.37.0-rc.0"));
        let err = resolve("1.37").unwrap_err().to_string();
        assert!(err.contains("no release of 1.37"), "{err}");
        for bad in ["latest", "stable-1", "2.1", "1.x", ""] {
            let err = resolve(bad).unwrap_err().to_string();
            assert!(err.contains("not a Kubernetes version"), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_versions_say_why_and_what_to_do() {
        let err = |s: &str| release(&v(s)).unwrap_err().to_string();
        let e = err("v1.38.0");
        assert!(
            e.contains("newer than kiln's image table") && e.contains("--kubeadm"),
            "{e}"
        );
        assert!(err("v1.28.15").contains("older than kiln's image table"));
        let e = err("v1.29.16");
        assert!(e.contains("(1.29 ends at v1.29.15)"), "{e}");
        let e = err("v1.36.2-rc.0");
        assert!(
            e.contains("not a Kubernetes release kiln's image table knows"),
            "{e}"
        );
    }

    /// The table equals the shared data it was copied from, for every GA release in it (run
    /// where `../shared/data` sits beside the checkout, as on the project's machines).
    #[test]
    fn table_equals_the_shared_data() {
        let beside = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/kubeadm-images.tsv"
        );
        let candidates = [beside, "/work/shared/data/kubeadm-images.tsv"];
        let Some(text) = candidates
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
        else {
            eprintln!("shared kubeadm-images.tsv not found ({candidates:?}): comparison skipped");
            return;
        };
        let theirs: Vec<Release> = parse(&text).unwrap();
        let ga = |rows: &[Release]| -> Vec<Release> {
            rows.iter()
                .filter(|r| r.version.pre.is_none())
                .cloned()
                .collect()
        };
        assert_eq!(ga(releases()), ga(&theirs));
    }
}
