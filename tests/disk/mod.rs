//! Helpers for the disk image tests: `kiln build` of images/debian-12.toml from a stand-in
//! Kubernetes release (the stand-in kubeadm — not the real kubeadm — and stand-in kubelet,
//! kubectl, crictl; tests/support/release.rs) and kubeadm's images as small stand-ins in a local
//! registry, plus a test overlay (report unit, console logging), and QEMU (TCG, OVMF) virtual
//! machines watched through the serial console.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::support::oci::Registry;
use super::support::{cargo_bin, release};
use kiln_testsupport::free_port;

/// The local Debian mirror .ci/setup makes (.ci/debian-mirror).
pub const LOCAL_MIRROR: &str = "/var/cache/kiln-test/debian";
/// The recipe under test.
pub const RECIPE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../images/debian-12.toml");
const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// arm64 UEFI firmware (package qemu-efi-aarch64).
const AAVMF_CODE: &str = "/usr/share/AAVMF/AAVMF_CODE.fd";
const AAVMF_VARS: &str = "/usr/share/AAVMF/AAVMF_VARS.fd";

/// The `--mirror` argument pointing the recipe at the local mirror.
pub fn mirror_arg() -> String {
    assert!(
        Path::new(LOCAL_MIRROR).join(".recipe").is_file(),
        "{LOCAL_MIRROR} is missing: run .ci/setup (it makes the local Debian mirror)"
    );
    format!("http://deb.debian.org/debian=file://{LOCAL_MIRROR}")
}

fn write(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn sh(cmd: &mut Command) {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `from` stripped of symbols into `dir` (debug builds are hundreds of MB).
fn stripped(from: &Path, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let to = dir.join(from.file_name().unwrap());
    sh(Command::new("strip").arg("-o").arg(&to).arg(from));
    to
}

/// The test-only files added to the image through the recipe's `overlay`: a drop-in sending
/// kiln-firstboot's log to the console and pointing the stand-in kubeadm's record into /var, a
/// stand-in kubelet that stays up, and a report unit printing what the test checks on every boot.
fn overlay_dir(dir: &Path, kube: &str) -> PathBuf {
    let tree = dir.join("overlay");
    let units = tree.join("usr/lib/systemd/system");
    write(
        &units.join("kiln-firstboot.service.d/50-test.conf"),
        "[Service]\nStandardError=journal+console\nEnvironment=KILN_STANDIN_RECORD=/var/lib/kiln-standin/kubeadm.yaml\nExecStartPre=/bin/mkdir -p /var/lib/kiln-standin\n",
        0o644,
    );
    write(
        &tree.join("usr/bin/kubelet"),
        &format!("#!/bin/sh\n# Stand-in kubelet (not the real kubelet).\ncase \"$1\" in --version) echo 'Kubernetes {kube}';; *) sleep infinity;; esac\n"),
        0o755,
    );
    write(
        &tree.join("usr/lib/kiln-test/report"),
        include_str!("report.sh"),
        0o755,
    );
    write(
        &units.join("kiln-test-report.service"),
        "[Unit]\nDescription=kiln test report\nAfter=kiln-firstboot.service containerd.service\n[Service]\nType=oneshot\nExecStart=/usr/lib/kiln-test/report\nStandardOutput=journal+console\n[Install]\nWantedBy=multi-user.target\n",
        0o644,
    );
    std::fs::create_dir_all(units.join("multi-user.target.wants")).unwrap();
    std::os::unix::fs::symlink(
        "../kiln-test-report.service",
        units.join("multi-user.target.wants/kiln-test-report.service"),
    )
    .unwrap();
    tree
}

/// Everything `kiln build` of a disk recipe reads in the tests, on 127.0.0.1 or local files:
/// the stand-in release, a registry with kubeadm's images (stand-ins), kiln-firstboot, the
/// overlay and the local Debian mirror.
pub struct Sources {
    server: release::Server,
    registry: Registry,
    firstboot: PathBuf,
    overlay: PathBuf,
    dir: PathBuf,
    arch: String,
}

/// kiln-firstboot and the stand-in kubeadm built for a guest architecture other than the host's.
pub struct GuestBins {
    /// kiln-firstboot.
    pub firstboot: PathBuf,
    /// The stand-in kubeadm (not the real kubeadm).
    pub kubeadm: PathBuf,
}

impl Sources {
    /// Starts the servers for the versions `recipe` (TOML text) names, for amd64 built here.
    pub fn start(dir: &Path, recipe: &str) -> Sources {
        Sources::start_for(dir, recipe, "amd64", None)
    }

    /// [`Sources::start`] for `arch` (`kiln build --arch`), with `bins` built for it (none:
    /// the host's own).
    pub fn start_for(dir: &Path, recipe: &str, arch: &str, bins: Option<GuestBins>) -> Sources {
        let value: toml::Value = toml::from_str(recipe).unwrap();
        let text = |v: &toml::Value| v.as_str().unwrap().to_owned();
        let versions = release::Versions {
            kube: text(&value["kubernetes_version"]),
            crictl: text(&value["components"]["crictl"]),
            ..Default::default()
        };
        let bin = dir.join("bin");
        let bins = bins.unwrap_or_else(|| GuestBins {
            firstboot: stripped(&cargo_bin("kiln-firstboot", "kiln-firstboot"), &bin),
            kubeadm: stripped(&cargo_bin("kiln-standins", "kubeadm"), &bin),
        });
        let files = release::files_for_arch(&bins.kubeadm, &versions, arch);
        let server = release::Server::start(files);
        let registry = Registry::start(&dir.join("registry"));
        release::push_kubeadm_images_for(&registry, &versions.kube, &dir.join("layouts"), arch);
        Sources {
            server,
            registry,
            firstboot: bins.firstboot,
            overlay: overlay_dir(dir, &versions.kube),
            dir: dir.to_owned(),
            arch: arch.to_owned(),
        }
    }

    /// Runs `kiln build` for `recipe` (TOML text, given the test overlay) into `out`; returns
    /// (success, stdout, stderr).
    pub fn build(
        &self,
        name: &str,
        recipe: &str,
        cache: &Path,
        out: &Path,
    ) -> (bool, String, String) {
        self.build_with(name, recipe, cache, out, &[])
    }

    /// [`Sources::build`] with more arguments (`--report FILE`).
    pub fn build_with(
        &self,
        name: &str,
        recipe: &str,
        cache: &Path,
        out: &Path,
        extra: &[&str],
    ) -> (bool, String, String) {
        let path = self.dir.join(format!("{name}.toml"));
        let text = format!(
            "overlay = \"{}\"\n{}",
            self.overlay.display(),
            release::without_pinned_checksums(recipe)
        );
        std::fs::write(&path, text).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("build")
            .arg(&path)
            .arg("--cache")
            .arg(cache)
            .arg("--out")
            .arg(out)
            .arg("--firstboot")
            .arg(format!("{}={}", self.arch, self.firstboot.display()))
            .args(["--arch", &self.arch])
            .args(["--mirror", &mirror_arg()])
            .args([
                "--mirror",
                &format!("registry.k8s.io=http://{}", self.registry.addr),
            ])
            .args(release::mirror_args(&self.server.base))
            .args(extra)
            .stderr(Stdio::piped())
            .output()
            .expect("running kiln build");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
}

/// Asserts that the guest's report lines (tests/disk/report.sh) show /usr on the dm-verity
/// volume `usr` (a `CRYPT-VERITY-` device-mapper volume, active and valid) opened with the root
/// hash `usrhash`; `how` names the boot.
pub fn assert_usr_verity(report: &[String], usrhash: &str, how: &str) {
    let has = |p: &str| report.iter().any(|l| l.starts_with(p));
    let all = report.join("\n");
    assert!(
        has("usr-source /dev/mapper/usr"),
        "{how}: /usr is not the dm-verity volume: {all}"
    );
    assert!(
        has("dm usr CRYPT-VERITY-"),
        "{how}: no verity volume named usr: {all}"
    );
    assert!(
        report
            .iter()
            .any(|l| l.starts_with("dm-status 0 ") && l.ends_with(" verity V")),
        "{how}: dm-verity not active and valid on usr: {all}"
    );
    assert!(has(&format!("usrhash {usrhash}")), "{how}: {all}");
}

/// A test RSA key and certificate made by openssl in `dir` (`signer.key`, `signer.crt`), as
/// `kiln build`'s `--signing-key`/`--certificate` arguments.
pub fn signing_args(dir: &Path) -> Vec<String> {
    let done = Command::new("openssl")
        .current_dir(dir)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-keyout",
            "signer.key",
            "-out",
            "signer.crt",
            "-subj",
            "/CN=kiln disk test",
        ])
        .output()
        .unwrap();
    assert!(done.status.success(), "openssl req: {done:?}");
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    vec![
        "--signing-key".into(),
        path("signer.key"),
        "--certificate".into(),
        path("signer.crt"),
    ]
}

/// The GPT of the disk image `raw` as `sfdisk --json` reads it (its `partitiontable`).
pub fn partition_table(raw: &Path) -> serde_json::Value {
    let o = Command::new("sfdisk")
        .arg("--json")
        .arg(raw)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    table["partitiontable"].clone()
}

/// A qcow2 overlay over `base` (raw), `size` large, so each boot scenario gets a fresh disk.
pub fn overlay(base: &Path, path: &Path, size: &str) {
    overlay_of(base, "raw", path, size)
}

/// A qcow2 overlay over `base` in qemu-img format `format` (`raw`, `vpc`, `vmdk`, ...).
pub fn overlay_of(base: &Path, format: &str, path: &Path, size: &str) {
    sh(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", format, "-b"])
        .arg(base)
        .arg(path)
        .arg(size));
}

/// How a VM boots.
pub enum Boot<'a> {
    /// UEFI (OVMF) from the disk: systemd-boot, kernel, initrd on the ESP.
    Uefi,
    /// arm64 UEFI (AAVMF) from the disk on QEMU's `virt` machine with `-cpu max,pauth-impdef=on`.
    UefiArm64,
    /// Direct kernel boot as PXE would: kernel, initrd, command line.
    Kernel {
        kernel: &'a Path,
        initrd: &'a Path,
        append: String,
    },
}

/// A running QEMU whose serial console is collected.
pub struct Vm {
    child: Child,
    console: Arc<Mutex<String>>,
    qmp: PathBuf,
    /// When QEMU was started.
    pub started: Instant,
}

impl Vm {
    /// Starts QEMU (TCG) with `disk`; `forwards` are (guest port on 10.0.2.100, host port on
    /// 127.0.0.1); with none the VM has no NIC. `extra` are more QEMU arguments.
    pub fn start(
        dir: &Path,
        name: &str,
        disk: &Path,
        boot: Boot,
        forwards: &[(u16, u16)],
        extra: &[String],
    ) -> Vm {
        let qmp = dir.join(format!("{name}.qmp"));
        let arm64 = matches!(boot, Boot::UefiArm64);
        let mut cmd = match arm64 {
            true => {
                let mut c = Command::new("qemu-system-aarch64");
                // pauth-impdef: a cheaper pointer-authentication algorithm under TCG.
                c.args(["-M", "virt", "-cpu", "max,pauth-impdef=on"]);
                c
            }
            false => Command::new("qemu-system-x86_64"),
        };
        cmd.args([
            "-accel", "tcg", "-m", "2048", "-smp", "2", "-display", "none",
        ])
        .args(["-monitor", "none", "-serial", "stdio", "-no-reboot"])
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", qmp.display()))
        .arg("-drive")
        .arg(format!("file={},format=qcow2,if=virtio", disk.display()));
        match boot {
            Boot::Uefi | Boot::UefiArm64 => {
                let (code, vars_from) = match arm64 {
                    false => (OVMF_CODE, OVMF_VARS),
                    true => (AAVMF_CODE, AAVMF_VARS),
                };
                let vars = dir.join(format!("{name}.vars.fd"));
                std::fs::copy(vars_from, &vars).unwrap();
                cmd.arg("-drive")
                    .arg(format!("if=pflash,format=raw,readonly=on,file={code}"))
                    .arg("-drive")
                    .arg(format!("if=pflash,format=raw,file={}", vars.display()));
            }
            Boot::Kernel {
                kernel,
                initrd,
                append,
            } => {
                cmd.arg("-kernel")
                    .arg(kernel)
                    .arg("-initrd")
                    .arg(initrd)
                    .arg("-append")
                    .arg(append);
            }
        }
        if forwards.is_empty() {
            cmd.args(["-nic", "none"]);
        } else {
            // restrict=on: the guest reaches nothing but these forwards to the test's servers.
            let mut nic = "user,model=virtio-net-pci,restrict=on".to_owned();
            for (guest, host) in forwards {
                nic.push_str(&format!(
                    ",guestfwd=tcp:10.0.2.100:{guest}-cmd:socat - TCP:127.0.0.1:{host}"
                ));
            }
            cmd.arg("-nic").arg(nic);
        }
        cmd.args(extra);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting qemu-system (run .ci/setup)");
        let console = Arc::new(Mutex::new(String::new()));
        let log = dir.join(format!("{name}.serial.log"));
        let (sink, stdout) = (console.clone(), child.stdout.take().unwrap());
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(log).unwrap();
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            while reader
                .read_until(b'\n', &mut line)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                let _ = file.write_all(&line);
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&line));
                line.clear();
            }
        });
        Vm {
            child,
            console,
            qmp,
            started: Instant::now(),
        }
    }

    /// The console so far.
    pub fn console(&self) -> String {
        self.console.lock().unwrap().clone()
    }

    /// Waits until the console contains `needle`; returns seconds since start. Panics with the
    /// console's tail on timeout or when QEMU exits.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> f64 {
        let deadline = Instant::now() + timeout;
        loop {
            if self.console().contains(needle) {
                return self.started.elapsed().as_secs_f64();
            }
            let exited = self.child.try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                let c = self.console();
                let tail: String = c
                    .chars()
                    .skip(c.chars().count().saturating_sub(6000))
                    .collect();
                panic!("{needle:?} not on the console ({exited:?}); console tail:\n{tail}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Lines starting with `KILN-TEST ` (without the prefix) of the last report.
    pub fn report(&self) -> Vec<String> {
        let c = self.console();
        let start = c.rfind("KILN-TEST boots").unwrap_or(0);
        c[start..]
            .lines()
            .filter_map(|l| {
                l.find("KILN-TEST ")
                    .map(|i| l[i + 10..].trim_end().to_owned())
            })
            .collect()
    }

    /// ACPI power button through QMP, then waits for QEMU to exit (killed after 90 s).
    pub fn shutdown(mut self) {
        if let Ok(mut s) = std::os::unix::net::UnixStream::connect(&self.qmp) {
            let _ = s.write_all(
                b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"system_powerdown\"}\n",
            );
            let mut buf = [0u8; 4096];
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.read(&mut buf);
        }
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A fake API server for the join's readiness wait: `openssl s_server -WWW` answering
/// `GET /readyz` with 200 on 127.0.0.1. Returns the child (kill it) and its port.
pub fn readyz_server(dir: &Path) -> (Child, u16) {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("readyz"), "ok").unwrap();
    sh(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", "/CN=kube-apiserver", "-days", "1", "-keyout"])
        .arg(www.join("key.pem"))
        .arg("-out")
        .arg(www.join("cert.pem")));
    let port = free_port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-WWW", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-cert", "cert.pem", "-key", "key.pem"])
        .current_dir(&www)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, port)
}

/// A plain HTTP server on 127.0.0.1 answering every GET with `body`; returns its port.
pub fn http_server(body: String) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    port
}

/// A NoCloud seed ISO (volume id `cidata`) with `user_data`.
pub fn seed_iso(dir: &Path, user_data: &str) -> PathBuf {
    let seed = dir.join("seed");
    write(&seed.join("user-data"), user_data, 0o644);
    write(
        &seed.join("meta-data"),
        "instance-id: kiln-e2e\nlocal-hostname: worker-1\n",
        0o644,
    );
    let iso = dir.join("seed.iso");
    sh(Command::new("genisoimage")
        .args(["-quiet", "-output"])
        .arg(&iso)
        .args(["-volid", "cidata", "-joliet", "-rock"])
        .arg(seed.join("user-data"))
        .arg(seed.join("meta-data")));
    iso
}
