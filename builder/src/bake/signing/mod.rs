//! Signing a build's outputs: the sysext as a verity-protected image whose root hash is signed
//! with an X.509 key (`--signing-key`, `--certificate`; see `outputs::sysext::verity`), the
//! disk image's dm-verity /usr root hash with the same key (a `usr-verity-sig` partition:
//! [`root_hash`]), and
//! `SHA256SUMS` with an OpenPGP key (`--gpg-key`, `--gpg-homedir`) into the detached
//! `SHA256SUMS.gpg` that systemd-sysupdate's `Verify=yes` checks.
//!
//! Everything is checked before any download ([`Signing::check`]): the key pair and its
//! certificate, the tools, and a trial signature with the OpenPGP key (so a key that needs a
//! passphrase or has no signing capability stops the build at once). Key material never enters
//! a message or a log line; kiln passes the key files' paths to the tools and copies nothing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use kiln_core::command::{find_tool, Detail, Run};
use kiln_core::fsutil::{publish, Replace};
use kiln_core::pki::SigningCert;

pub mod root_hash;

/// How a build signs, as given on the command line (unchecked).
#[derive(Debug, Clone, Default)]
pub struct SigningArgs {
    /// `--signing-key`: PEM private key for the sysext's verity signature.
    pub key: Option<PathBuf>,
    /// `--certificate`: the PEM certificate of that key.
    pub certificate: Option<PathBuf>,
    /// `--gpg-key`: the OpenPGP key (fingerprint, key id or user id) signing `SHA256SUMS`.
    pub gpg_key: Option<String>,
    /// `--gpg-homedir`: the GnuPG home holding it.
    pub gpg_homedir: Option<PathBuf>,
}

/// The checked signing setup of a build.
#[derive(Debug, Clone, Default)]
pub struct Signing {
    /// The sysext's verity signer.
    pub verity: Option<VeritySigner>,
    /// The `SHA256SUMS` signer.
    pub gpg: Option<GpgSigner>,
}

/// A checked X.509 key pair for verity root hash signatures.
#[derive(Debug, Clone)]
pub struct VeritySigner {
    /// The private key file (passed to systemd-repart, never read into a message).
    pub key: PathBuf,
    /// The certificate file.
    pub certificate: PathBuf,
    /// What the certificate is.
    pub cert: SigningCert,
    /// systemd-repart.
    pub repart: PathBuf,
    /// openssl, when a disk's /usr root hash is signed.
    pub openssl: Option<PathBuf>,
}

/// What a build's outputs give an X.509 key to sign.
#[derive(Debug, Clone, Copy, Default)]
pub struct Signable {
    /// A sysext (signed as a verity-protected image).
    pub sysext: bool,
    /// A disk image with a dm-verity /usr (its root hash signed).
    pub disk_verity: bool,
}

/// A checked OpenPGP signing key.
#[derive(Debug, Clone)]
pub struct GpgSigner {
    /// gpg.
    pub gpg: PathBuf,
    /// As given to `--gpg-key`.
    pub key: String,
    /// `--gpg-homedir`, else gpg's default (`$GNUPGHOME`, `~/.gnupg`).
    pub homedir: Option<PathBuf>,
    /// The primary key's fingerprint.
    pub fingerprint: String,
}

impl Signing {
    /// Checks `args` (files, tools, keys) for a build making `signable`.
    pub fn check(args: &SigningArgs, signable: Signable) -> anyhow::Result<Signing> {
        let verity = match (&args.key, &args.certificate) {
            (Some(key), Some(certificate)) => {
                anyhow::ensure!(
                    signable.sysext || signable.disk_verity,
                    "--signing-key: the recipe makes no sysext (outputs.sysext = \"none\") and \
                     no disk with dm-verity ([disk] verity = true); nothing to sign"
                );
                Some(VeritySigner::check(key, certificate, signable)?)
            }
            (None, None) => None,
            _ => anyhow::bail!("--signing-key and --certificate go together: give both"),
        };
        anyhow::ensure!(
            args.gpg_key.is_some() || args.gpg_homedir.is_none(),
            "--gpg-homedir needs --gpg-key: name the key that signs SHA256SUMS"
        );
        let gpg = match &args.gpg_key {
            Some(key) => Some(GpgSigner::check(key, args.gpg_homedir.as_deref())?),
            None => None,
        };
        Ok(Signing { verity, gpg })
    }
}

/// The `--dry-run` lines: who signs what (empty without signing).
impl std::fmt::Display for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(v) = &self.verity {
            let what = match v.openssl {
                Some(_) => "verity root hashes (sysext, disk /usr)",
                None => "sysext verity root hash",
            };
            writeln!(
                f,
                "signing: {what} with {} (certificate SHA-256 {})",
                v.cert.subject, v.cert.sha256
            )?;
        }
        if let Some(g) = &self.gpg {
            writeln!(f, "signing: SHA256SUMS with OpenPGP key {}", g.fingerprint)?;
        }
        Ok(())
    }
}

impl VeritySigner {
    /// Checks the pair and that systemd-repart can make signed verity partitions here; for a
    /// disk's /usr, that openssl signs with the key (a trial signature: a key that needs a
    /// passphrase fails now, not after the build).
    fn check(key: &Path, certificate: &Path, signable: Signable) -> anyhow::Result<VeritySigner> {
        let cert =
            kiln_core::pki::check_signing_pair(certificate, key, time::OffsetDateTime::now_utc())
                .map_err(|e| anyhow::anyhow!("--signing-key/--certificate: {e}"))?;
        check_host()?;
        let repart = super::repart::find("--signing-key", true)?;
        let openssl = match signable.disk_verity {
            true => Some(root_hash::find_openssl()?),
            false => None,
        };
        let signer = VeritySigner {
            key: key.to_owned(),
            certificate: certificate.to_owned(),
            cert,
            repart,
            openssl,
        };
        if signable.disk_verity {
            signer.sign_root_hash(&"0".repeat(64))?;
        }
        Ok(signer)
    }
}

impl GpgSigner {
    /// Finds the secret key in the keyring and makes a trial signature with it.
    fn check(key: &str, homedir: Option<&Path>) -> anyhow::Result<GpgSigner> {
        anyhow::ensure!(
            !key.is_empty() && !key.starts_with('-'),
            "--gpg-key {key:?}: give a fingerprint, key id or user id"
        );
        if let Some(dir) = homedir {
            anyhow::ensure!(
                dir.is_dir(),
                "--gpg-homedir {}: not a directory",
                dir.display()
            );
        }
        let gpg = find_tool("gpg", "gnupg")?;
        let mut signer = GpgSigner {
            gpg,
            key: key.to_owned(),
            homedir: homedir.map(Path::to_owned),
            fingerprint: String::new(),
        };
        let listing = signer.run(&["--with-colons", "--list-secret-keys", "--", key])?;
        signer.fingerprint = signing_fingerprint(&listing, key)?;
        let dir = tempfile::tempdir().context("making a temporary directory")?;
        let probe = dir.path().join("probe");
        std::fs::write(&probe, b"kiln: trial signature\n")?;
        signer.sign(&probe, &dir.path().join("probe.gpg"))?;
        Ok(signer)
    }

    /// Writes the detached binary signature of `file` to `out` (atomically).
    pub fn sign(&self, file: &Path, out: &Path) -> anyhow::Result<()> {
        publish(out, Replace::Existing, |tmp| {
            let mut args: Vec<OsString> = ["--yes", "--local-user", &self.key, "--output"]
                .into_iter()
                .map(OsString::from)
                .collect();
            args.push(tmp.into());
            args.push("--detach-sign".into());
            args.push(file.into());
            self.run_os(&args).map(drop)
        })
        .with_context(|| format!("signing {} with --gpg-key {}", file.display(), self.key))
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        self.run_os(&args)
    }

    /// Runs gpg non-interactively (no pinentry: a key that needs a passphrase fails).
    fn run_os(&self, args: &[OsString]) -> anyhow::Result<String> {
        let mut cmd = Command::new(&self.gpg);
        cmd.args(["--batch", "--no-tty", "--pinentry-mode", "error"]);
        if let Some(dir) = &self.homedir {
            cmd.arg("--homedir").arg(dir);
        }
        cmd.args(args);
        let done = Run::new(&mut cmd, "gpg").detail(Detail::Last(5)).output()?;
        anyhow::ensure!(
            done.status.success(),
            "--gpg-key {}: gpg failed ({}): {}",
            self.key,
            done.status,
            done.detail()
        );
        Ok(String::from_utf8_lossy(&done.stdout).into_owned())
    }
}

/// The fingerprint of the one secret key in gpg's `--with-colons` listing, if it can sign: not
/// expired or revoked (field 2), `S` among the key's usable capabilities (field 12).
fn signing_fingerprint(listing: &str, key: &str) -> anyhow::Result<String> {
    let mut found = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in listing.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        match fields[0] {
            "sec" => current = Some(fields),
            "fpr" if current.is_some() => {
                let sec = current.take().expect("checked");
                found.push((sec, fields.get(9).copied().unwrap_or_default()));
            }
            _ => {}
        }
    }
    let [(sec, fingerprint)] = found.as_slice() else {
        anyhow::bail!(
            "--gpg-key {key}: {} secret keys match; name exactly one (its fingerprint)",
            found.len()
        );
    };
    let validity = sec.get(1).copied().unwrap_or_default();
    anyhow::ensure!(
        !matches!(validity, "e" | "r" | "d" | "i"),
        "--gpg-key {key}: the key is expired, revoked, disabled or invalid"
    );
    let caps = sec.get(11).copied().unwrap_or_default();
    anyhow::ensure!(
        caps.contains('S'),
        "--gpg-key {key}: the key has no usable signing capability"
    );
    Ok((*fingerprint).to_owned())
}

/// Refuses a build without root (which attaching a loop device needs) and a host without loop
/// devices: systemd-repart computes the verity hash tree through one.
fn check_host() -> anyhow::Result<()> {
    anyhow::ensure!(
        nix::unistd::geteuid().is_root(),
        "--signing-key: run kiln build as root; systemd-repart computes the verity hash tree \
         through a loop device"
    );
    anyhow::ensure!(
        Path::new("/dev/loop-control").exists(),
        "--signing-key: no /dev/loop-control; systemd-repart computes the verity hash tree \
         through a loop device (run as root on a host with loop devices)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "sec:u:255:22:AAAA:1700000000:::u:::scESC:::+:::ed25519:::0:\n\
        fpr:::::::::0123456789ABCDEF0123456789ABCDEF01234567:\n\
        grp:::::::::X:\nuid:u::::1700000000::Y::kiln test::::::::::0:\n\
        ssb:u:255:18:BBBB:1700000000::::::e:::+:::cv25519::\n\
        fpr:::::::::FEDCBA9876543210FEDCBA9876543210FEDCBA98:\n";

    #[test]
    fn the_signing_key_fingerprint_is_the_primary_one() {
        assert_eq!(
            signing_fingerprint(LISTING, "k").unwrap(),
            "0123456789ABCDEF0123456789ABCDEF01234567"
        );
    }

    #[test]
    fn unusable_keys_are_refused() {
        let expired = LISTING.replacen("sec:u:", "sec:e:", 1);
        assert!(signing_fingerprint(&expired, "k")
            .unwrap_err()
            .to_string()
            .contains("expired"));
        let no_sign = LISTING.replacen(":scESC:", ":eE:", 1);
        assert!(signing_fingerprint(&no_sign, "k")
            .unwrap_err()
            .to_string()
            .contains("signing capability"));
        let two = format!("{LISTING}{LISTING}");
        assert!(signing_fingerprint(&two, "k")
            .unwrap_err()
            .to_string()
            .contains("2 secret keys"));
        assert!(signing_fingerprint("", "k").is_err());
    }

    #[test]
    fn a_key_without_a_sysext_is_refused() {
        let args = SigningArgs {
            key: Some("k.pem".into()),
            certificate: Some("c.pem".into()),
            ..Default::default()
        };
        let err = Signing::check(&args, Signable::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("nothing to sign"), "{err}");
    }

    #[test]
    fn half_a_pair_is_refused() {
        let args = SigningArgs {
            key: Some("k.pem".into()),
            ..Default::default()
        };
        let sysext = Signable {
            sysext: true,
            ..Signable::default()
        };
        let err = Signing::check(&args, sysext).unwrap_err().to_string();
        assert!(err.contains("go together"), "{err}");
        let args = SigningArgs {
            gpg_homedir: Some("/tmp".into()),
            ..Default::default()
        };
        assert!(Signing::check(&args, sysext).is_err());
    }
}
