//! Which kubeadm release the stand-in kubeadm (not the real kubeadm) pretends to be:
//! `$KILN_STANDIN_KUBEADM_VERSION`, else a trailer at the very end of its own executable, else
//! [`DEFAULT_VERSION`]. The trailer lets a stand-in "release" kubeadm downloaded from the test
//! release server know its version, as the real one does; ELF files tolerate trailing bytes.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The environment variable that sets the stand-in's version.
pub const VERSION_ENV: &str = "KILN_STANDIN_KUBEADM_VERSION";
/// The version without the variable or a trailer.
pub const DEFAULT_VERSION: &str = "v1.31.2";
/// How the trailer's line starts; the whole trailer is `\n#kiln-standin-kubeadm-version=vX.Y.Z\n`.
pub const TRAILER_KEY: &str = "#kiln-standin-kubeadm-version=";

/// `binary` with the version trailer for `version` appended (its last line then names the
/// version).
pub fn with_version_trailer(mut binary: Vec<u8>, version: &str) -> Vec<u8> {
    binary.extend_from_slice(format!("\n{TRAILER_KEY}{version}\n").as_bytes());
    binary
}

/// The version in the trailer at the end of `tail` (the end of a file), if it has one.
pub fn version_trailer(tail: &[u8]) -> Option<String> {
    let body = tail.strip_suffix(b"\n")?;
    let start = body.iter().rposition(|&b| b == b'\n')? + 1;
    let line = std::str::from_utf8(&body[start..]).ok()?;
    let version = line.strip_prefix(TRAILER_KEY)?;
    (!version.is_empty() && version.bytes().all(|b| b.is_ascii_graphic())).then(|| version.into())
}

/// The version in the trailer of the file at `path`, if it has one (reads only its last bytes).
pub fn file_version_trailer(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(128))).ok()?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).ok()?;
    version_trailer(&tail)
}

/// The stand-in's version: `$KILN_STANDIN_KUBEADM_VERSION`, else its executable's trailer, else
/// [`DEFAULT_VERSION`].
pub fn own_version() -> String {
    std::env::var(VERSION_ENV)
        .ok()
        .or_else(|| file_version_trailer(Path::new("/proc/self/exe")))
        .unwrap_or_else(|| DEFAULT_VERSION.into())
}

/// `(major, minor, patch)` of `v1.31.2`, `1.31.2` or `v1.37.0-rc.0`.
pub fn parse(version: &str) -> Option<(u32, u32, u32)> {
    let core = version.strip_prefix('v').unwrap_or(version);
    let core = core.split_once('-').map_or(core, |(c, _)| c);
    let mut nums = core.split('.').map(|n| n.parse::<u32>().ok());
    match (nums.next(), nums.next(), nums.next(), nums.next()) {
        (Some(Some(a)), Some(Some(b)), Some(Some(c)), None) => Some((a, b, c)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_round_trips_and_the_last_line_wins() {
        let bin = with_version_trailer(b"\x7fELF\0\x01binary".to_vec(), "v1.36.3");
        assert!(bin.ends_with(b"\n#kiln-standin-kubeadm-version=v1.36.3\n"));
        assert_eq!(version_trailer(&bin).as_deref(), Some("v1.36.3"));
        let again = with_version_trailer(bin, "v1.99.0");
        assert_eq!(version_trailer(&again).as_deref(), Some("v1.99.0"));
        for bad in [
            &b"\x7fELF binary"[..],
            b"x\n",
            b"\n#kiln-standin-kubeadm-version=\n",
        ] {
            assert_eq!(version_trailer(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn versions_parse() {
        assert_eq!(parse("v1.37.0-rc.0"), Some((1, 37, 0)));
        assert_eq!(parse("1.31.2"), Some((1, 31, 2)));
        for bad in ["", "v1.31", "stable-1", "v1.31.x", "v1.2.3.4"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
