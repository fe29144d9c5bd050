//! Independent SHA-256s of the official kubeadm, kubelet and kubectl release binaries:
//! `builder/data/k8s-binary-sha256.tsv`, a copy of the shared `k8s-binary-sha256.tsv` (recorded
//! by kubespray, a second source beside dl.k8s.io's own `.sha256` files). `kiln versions` says
//! which releases have them and prints them as a recipe's `[checksums.ARCH]` tables, so a
//! tampered download server cannot supply both a binary and its checksum.

use std::fmt::Write as _;
use std::sync::OnceLock;

use kiln_core::version::KubeVersion;

/// Where the data lives in the source tree, for messages.
pub const DATA_PATH: &str = "builder/data/k8s-binary-sha256.tsv";

const DATA_TSV: &str = include_str!("../../data/k8s-binary-sha256.tsv");

/// One binary's checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownSum {
    /// The release.
    pub version: KubeVersion,
    /// `kubeadm`, `kubelet` or `kubectl`.
    pub binary: String,
    /// `amd64` or `arm64`.
    pub arch: String,
    /// Lower-case hex.
    pub sha256: String,
}

/// Parses the TSV: `#` comments, then `VERSION BINARY ARCH SHA256 SOURCE` rows (tab-separated).
pub fn parse(text: &str) -> Result<Vec<KnownSum>, String> {
    let row = |[version, binary, arch, sha256, _source]: [&str; 5]| {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "{version} {binary} {arch}: {sha256:?} is not a SHA-256"
            ));
        }
        Ok(KnownSum {
            version: version.parse().map_err(|e| format!("{version}: {e}"))?,
            binary: binary.to_owned(),
            arch: arch.to_owned(),
            sha256: sha256.to_ascii_lowercase(),
        })
    };
    kiln_core::tsv::rows(text)?.into_iter().map(row).collect()
}

/// Every known checksum (the data is compiled in and checked by the unit tests).
pub fn known() -> &'static [KnownSum] {
    static DATA: OnceLock<Vec<KnownSum>> = OnceLock::new();
    DATA.get_or_init(|| parse(DATA_TSV).unwrap_or_else(|e| panic!("{DATA_PATH}: {e}")))
}

/// The checksums kiln knows for `version`.
pub fn for_version(version: &KubeVersion) -> Vec<&'static KnownSum> {
    known().iter().filter(|s| s.version == *version).collect()
}

/// The `[checksums.ARCH]` tables of a recipe for `version`, or `None` if kiln knows none.
pub fn recipe_tables(version: &KubeVersion) -> Option<String> {
    let sums = for_version(version);
    if sums.is_empty() {
        return None;
    }
    let mut archs: Vec<&str> = sums.iter().map(|s| s.arch.as_str()).collect();
    archs.sort();
    archs.dedup();
    let mut out = format!("# {version}: SHA-256s from {DATA_PATH} (recorded by kubespray)\n");
    for arch in archs {
        let _ = writeln!(out, "[checksums.{arch}]");
        for s in sums.iter().filter(|s| s.arch == arch) {
            let _ = writeln!(out, "{} = \"{}\"", s.binary, s.sha256);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_parses_with_six_sums_per_release() {
        let sums = known();
        assert!(sums.len() >= 600);
        let v136: KubeVersion = "v1.36.3".parse().unwrap();
        assert_eq!(for_version(&v136).len(), 6);
        let tables = recipe_tables(&v136).unwrap();
        assert!(tables.contains("[checksums.amd64]\nkubeadm = \"bba1733c701bf70ec74ba1cc3fd5745404c1134a8a4b0a5f8560cc9832023421\"\n"), "{tables}");
        assert!(recipe_tables(&"v1.99.0".parse().unwrap()).is_none());
    }

    /// The shipped recipes bake the newest GA release kiln knows, with kubeadm, kubelet and
    /// kubectl pinned to the independent checksums for every architecture they build.
    #[test]
    fn shipped_recipes_pin_the_newest_release_from_the_second_source() {
        let newest = kiln_core::images::table::newest(None).unwrap();
        for name in ["flatcar-sysext", "debian-12"] {
            let path = format!("{}/../images/{name}.toml", env!("CARGO_MANIFEST_DIR"));
            let recipe = crate::bake::recipe::Recipe::load(std::path::Path::new(&path)).unwrap();
            let version = recipe.kube_version().unwrap();
            assert_eq!(version, newest.version, "{name}");
            for arch in &recipe.architectures {
                let pinned = &recipe.checksums[arch];
                for sum in for_version(&version)
                    .iter()
                    .filter(|s| s.arch == arch.kube())
                {
                    assert_eq!(
                        pinned.get(&sum.binary),
                        Some(&sum.sha256),
                        "{name} {}",
                        sum.binary
                    );
                }
            }
        }
    }

    #[test]
    fn bad_rows_are_named() {
        let err = parse("1.2.3\tkubeadm\tamd64\tnothex\tx\n").unwrap_err();
        assert!(err.contains("1.2.3 kubeadm amd64: \"nothex\""), "{err}");
        let err = parse("# c\n1.2.3\tkubeadm\n").unwrap_err();
        assert_eq!(err, "line 2: want 5 tab-separated fields");
    }

    /// The copy equals the shared data it came from (where `../shared/data` is beside the
    /// checkout, as on the project's machines).
    #[test]
    fn data_equals_the_shared_file() {
        let beside = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/k8s-binary-sha256.tsv"
        );
        let candidates = [beside, "/work/shared/data/k8s-binary-sha256.tsv"];
        let Some(text) = candidates
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
        else {
            eprintln!(
                "shared k8s-binary-sha256.tsv not found ({candidates:?}): comparison skipped"
            );
            return;
        };
        assert_eq!(parse(&text).unwrap(), known());
    }
}
