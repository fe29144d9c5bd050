//! Waiting for the network only for what needs it. kiln-firstboot.service is not ordered after
//! network-online.target: a node whose user-data comes from local media (NoCloud `cidata`,
//! config drive, QEMU fw_cfg) provisions while the network comes up, and the run waits for
//! network-online.target (`systemctl start`, which joins the boot's own job) only before it
//! asks a remote datasource or runs kubeadm.

use std::path::Path;
use std::process::Command;
use std::sync::Once;
use std::time::Duration;

use kiln_core::command::Run;

/// The longest the wait may take: systemd-networkd-wait-online's own timeout is 120 s.
const TIMEOUT: Duration = Duration::from_secs(150);

/// Waits (once per process) until network-online.target is reached, when running under systemd;
/// a failure is logged and the run goes on, as the unit's ordering did before.
pub fn wait() {
    static ONCE: Once = Once::new();
    if !Path::new("/run/systemd/system").exists() {
        return;
    }
    ONCE.call_once(|| {
        let mut cmd = Command::new("systemctl");
        cmd.args(["start", "network-online.target"]);
        let what = "systemctl start network-online.target";
        match Run::new(&mut cmd, what).timeout(TIMEOUT).run() {
            Ok(_) => tracing::info!("network online"),
            Err(e) => tracing::warn!("{what}: {e}; going on"),
        }
    });
}
