//! A dm-verity root hash signed the way systemd signs one (systemd-repart's `Verity=signature`,
//! which kiln cannot use for the disk's /usr: see `outputs::disk::verity`): a detached PKCS#7
//! over the root hash's hex text, carrying the signer's certificate and no signed attributes
//! (so an RSA signature is a function of key and hash), made by `openssl smime`; and the
//! signature partition that holds it (the Discoverable Partitions Specification's
//! `*-verity-sig`: a JSON object with `rootHash`, `certificateFingerprint` and `signature`,
//! padded with NUL bytes), which systemd-dissect and the kernel keyring path read.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context as _;
use base64::Engine as _;
use kiln_core::command::{find_tool, Detail, Run};

use super::VeritySigner;

/// The size of a verity signature partition (what systemd-repart gives one).
pub const PARTITION_SIZE: u64 = 16 * 1024;

/// openssl, which makes the PKCS#7 signature.
pub fn find_openssl() -> anyhow::Result<PathBuf> {
    find_tool("openssl", "openssl").map_err(|e| anyhow::anyhow!("--signing-key: {e}"))
}

impl VeritySigner {
    /// The DER PKCS#7 signature of `root_hash` (hex text, as systemd signs it).
    pub fn sign_root_hash(&self, root_hash: &str) -> anyhow::Result<Vec<u8>> {
        let openssl = self
            .openssl
            .as_ref()
            .context("--signing-key: no openssl was found for signing the disk's /usr")?;
        let mut cmd = Command::new(openssl);
        cmd.args(["smime", "-sign", "-binary", "-noattr", "-md", "sha256"])
            .args(["-outform", "DER", "-passin", "pass:"])
            .arg("-signer")
            .arg(&self.certificate)
            .arg("-inkey")
            .arg(&self.key);
        let done = Run::new(&mut cmd, "openssl smime -sign (verity root hash)")
            .stdin(root_hash.as_bytes())
            .detail(Detail::Last(3))
            .run()
            .context("--signing-key: signing the verity root hash")?;
        anyhow::ensure!(
            !done.stdout.is_empty(),
            "--signing-key: openssl made an empty signature"
        );
        Ok(done.stdout)
    }

    /// The contents of the signature partition for `root_hash`: [`PARTITION_SIZE`] bytes.
    pub fn signature_partition(&self, root_hash: &str) -> anyhow::Result<Vec<u8>> {
        let signature = self.sign_root_hash(root_hash)?;
        partition_bytes(root_hash, &self.cert.sha256, &signature)
    }
}

/// The signature partition's JSON for `root_hash`, the certificate's SHA-256 `fingerprint` and
/// the DER `signature`, padded with NULs to [`PARTITION_SIZE`].
fn partition_bytes(
    root_hash: &str,
    fingerprint: &str,
    signature: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let json = serde_json::json!({
        "rootHash": root_hash,
        "certificateFingerprint": fingerprint,
        "signature": base64::engine::general_purpose::STANDARD.encode(signature),
    });
    let mut bytes = serde_json::to_vec(&json)?;
    anyhow::ensure!(
        bytes.len() < PARTITION_SIZE as usize,
        "the verity signature ({} bytes of JSON) does not fit its {PARTITION_SIZE}-byte partition",
        bytes.len()
    );
    bytes.resize(PARTITION_SIZE as usize, 0);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn openssl(dir: &Path, args: &[&str]) -> std::process::Output {
        Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl")
    }

    /// A signer for a fresh RSA key made by openssl in `dir`.
    fn signer(dir: &Path) -> VeritySigner {
        let req = [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "k.pem",
            "-out",
            "c.pem",
            "-days",
            "2",
            "-subj",
            "/CN=kiln test",
        ];
        assert!(openssl(dir, &req).status.success());
        let (key, certificate) = (dir.join("k.pem"), dir.join("c.pem"));
        let now = time::OffsetDateTime::now_utc();
        VeritySigner {
            cert: kiln_core::pki::check_signing_pair(&certificate, &key, now).unwrap(),
            key,
            certificate,
            repart: PathBuf::new(),
            openssl: Some(find_openssl().unwrap()),
        }
    }

    #[test]
    fn openssl_verifies_the_signature_and_it_is_the_same_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let signer = signer(d);
        let hash = "597d7083690cfe5626cea4ed44c923dd122e36a0e597de09c89802cb18f5360e";
        let der = signer.sign_root_hash(hash).unwrap();
        assert_eq!(
            der,
            signer.sign_root_hash(hash).unwrap(),
            "not deterministic"
        );
        std::fs::write(d.join("sig.der"), &der).unwrap();
        let verify = |content: &str| {
            std::fs::write(d.join("roothash"), content).unwrap();
            let args = [
                "smime",
                "-verify",
                "-binary",
                "-inform",
                "DER",
                "-nointern",
                "-noverify",
                "-in",
                "sig.der",
                "-content",
                "roothash",
                "-certfile",
                "c.pem",
                "-out",
                "/dev/null",
            ];
            openssl(d, &args).status.success()
        };
        assert!(verify(hash));
        assert!(!verify(&hash.replace('5', "6")));
    }

    #[test]
    fn the_partition_is_systemds_json_padded_with_nuls() {
        let bytes = partition_bytes("ab12", "cd34", &[1, 2, 3]).unwrap();
        assert_eq!(bytes.len() as u64, PARTITION_SIZE);
        let json = bytes.split(|&b| b == 0).next().unwrap();
        let v: serde_json::Value = serde_json::from_slice(json).unwrap();
        assert_eq!(v["rootHash"], "ab12");
        assert_eq!(v["certificateFingerprint"], "cd34");
        assert_eq!(v["signature"], "AQID");
        assert!(bytes[json.len()..].iter().all(|&b| b == 0));
        assert!(partition_bytes("ab", "cd", &[0; 20_000]).is_err());
    }
}
