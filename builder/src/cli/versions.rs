//! `kiln versions`: the Kubernetes releases this kiln knows, without a network lookup.

use anyhow::Context as _;
use clap::Args;
use kiln_core::images::table::{self, Release};
use kiln_core::version::KubeVersion;
use serde::Serialize;

use super::Output;
use crate::bake::checksums;

/// Options of `kiln versions`.
#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// Print the `[checksums.amd64]` / `[checksums.arm64]` tables for this release's kubeadm,
    /// kubelet and kubectl, ready to paste into a recipe (`1.36` means the newest 1.36 kiln
    /// knows).
    #[arg(long, value_name = "VERSION")]
    checksums: Option<String>,
    /// text: a table per minor; json: one object per minor.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// One minor release line.
#[derive(Debug, Serialize)]
struct Minor {
    /// `1.36`.
    minor: String,
    /// The newest GA patch kiln's image table knows (`v1.36.3`), if any.
    newest: Option<String>,
    /// GA patches in the image table.
    patches: usize,
    /// Pre-releases in the image table, oldest first.
    pre_releases: Vec<String>,
    /// The kubeadm config API kiln renders for it.
    kubeadm_api: String,
    /// Whether kiln knows independent SHA-256s for the newest patch's kubeadm, kubelet and
    /// kubectl.
    pinned_checksums: bool,
}

impl VersionsArgs {
    /// Prints the releases, or one release's checksum tables.
    pub fn run(self) -> anyhow::Result<()> {
        if let Some(text) = &self.checksums {
            let version = table::resolve(text).context("--checksums")?;
            let tables = checksums::recipe_tables(&version).with_context(|| {
                format!(
                    "--checksums {version}: kiln knows no independent checksums for it ({})",
                    checksums::DATA_PATH
                )
            })?;
            print!("{tables}");
            return Ok(());
        }
        let minors = minors();
        match self.output {
            Output::Json => println!("{}", serde_json::to_string_pretty(&minors)?),
            Output::Text => print_text(&minors),
        }
        Ok(())
    }
}

fn minors() -> Vec<Minor> {
    let mut numbers: Vec<u32> = table::releases().iter().map(|r| r.version.minor).collect();
    numbers.dedup();
    numbers.into_iter().map(minor).collect()
}

fn minor(m: u32) -> Minor {
    let rows: Vec<&Release> = (table::releases().iter())
        .filter(|r| r.version.minor == m)
        .collect();
    let newest = table::newest(Some(m)).map(|r| r.version.clone());
    let api_of = newest.clone().unwrap_or_else(|| rows[0].version.clone());
    Minor {
        minor: format!("1.{m}"),
        patches: rows.iter().filter(|r| r.version.pre.is_none()).count(),
        pre_releases: (rows.iter())
            .filter(|r| r.version.pre.is_some())
            .map(|r| r.version.to_string())
            .collect(),
        kubeadm_api: api_name(&api_of),
        pinned_checksums: newest
            .as_ref()
            .is_some_and(|v| checksums::for_version(v).len() == 6),
        newest: newest.map(|v| v.to_string()),
    }
}

fn api_name(version: &KubeVersion) -> String {
    version
        .kubeadm_api()
        .map(|a| a.name().to_owned())
        .unwrap_or_default()
}

fn print_text(minors: &[Minor]) {
    println!(
        "Kubernetes releases this kiln knows (images: {}; checksums: {}).",
        table::TABLE_PATH,
        checksums::DATA_PATH
    );
    println!("`kiln versions --checksums VERSION` prints a release's checksums for a recipe.\n");
    println!(
        "{:<6} {:<10} {:>7}  {:<8} {:<7} pre-releases",
        "minor", "newest", "patches", "kubeadm", "pinned"
    );
    for m in minors {
        let pre = match (m.pre_releases.first(), m.pre_releases.last()) {
            (Some(a), Some(b)) if a != b => format!("{a} … {b}"),
            (Some(a), _) => a.clone(),
            _ => String::new(),
        };
        println!(
            "{:<6} {:<10} {:>7}  {:<8} {:<7} {pre}",
            m.minor,
            m.newest.as_deref().unwrap_or("-"),
            m.patches,
            m.kubeadm_api,
            if m.pinned_checksums { "yes" } else { "no" },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_minor_from_1_29_with_its_newest_patch() {
        let all = minors();
        assert_eq!(all[0].minor, "1.29");
        let m136 = all.iter().find(|m| m.minor == "1.36").unwrap();
        assert_eq!(m136.newest.as_deref(), Some("v1.36.3"));
        assert_eq!(m136.patches, 4);
        assert!(m136.pinned_checksums);
        assert_eq!(m136.kubeadm_api, "v1beta4");
        let m137 = all.iter().find(|m| m.minor == "1.37").unwrap();
        assert!(m137.newest.is_none() && !m137.pre_releases.is_empty());
        assert_eq!(
            all.iter().find(|m| m.minor == "1.30").unwrap().kubeadm_api,
            "v1beta3"
        );
    }
}
