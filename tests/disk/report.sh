#!/bin/sh
# Test image only: prints what the e2e test asserts to the serial console, on every boot; with
# `analyze`, systemd-analyze's view once the boot finished (a transient unit started below).
r() { echo "KILN-TEST $*"; }
if [ "$1" = analyze ]; then
  systemctl is-system-running --wait >/dev/null
  # multi-user.target is reached after kiln-firstboot (a oneshot it wants) and this report.
  r "multi-user-at $(systemctl show -p ActiveEnterTimestampMonotonic --value multi-user.target | awk '{ printf "%.2f", $1 / 1000000 }')"
  systemd-analyze critical-chain containerd.service kiln-firstboot.service serial-getty@ttyS0.service | sed 's/^/KILN-TEST chain: /'
  systemd-analyze blame | head -n 20 | sed 's/^/KILN-TEST blame: /'
  r "analyze-end"
  exit 0
fi
state=/var/lib/kiln-test
mkdir -p "$state/boots"
touch "$state/boots/$(cat /proc/sys/kernel/random/boot_id)"
r "boots $(ls "$state/boots" | wc -l)"
r "firstboot $(systemctl show -p ActiveState -p Result -p ConditionResult kiln-firstboot.service | tr '\n' ' ')"
r "done $(test -e /var/lib/kiln/done && echo yes || echo no)"
r "sentinel $(cat /run/cluster-api/bootstrap-success.complete 2>/dev/null || echo none)"
r "containerd $(systemctl is-active containerd)"
r "images $(ctr -n k8s.io images ls -q 2>/dev/null | tr '\n' ' ')"
# Complete and unpacked images with their digests (name@digest), as containerd's own check says.
r "image-digests $(ctr -n k8s.io images check 2>/dev/null | awk 'NR > 1 && $4 == "complete" && $NF == "true" { printf "%s@%s ", $1, $3 }')"
# The baked manifest's images as name@digest (kiln-firstboot checks the store against them).
r "baked $(sed -n '/"image_digests": {/,/}/s/^ *"\([^"]*\)": "\([^"]*\)",\{0,1\}$/\1@\2/p' /usr/share/kiln/manifest.json | tr '\n' ' ')"
r "imported-at-boot $(journalctl -b -o cat -u kiln-firstboot | grep -c 'imported pre-pulled images')"
r "containerd-starts $(journalctl -b -o cat -u containerd | grep -c 'containerd successfully booted')"
r "sandbox-image $(sed -n 's/^sandbox_image = //p' /etc/containerd/config.toml | tr -d '"')"
# Seconds since the kernel started (guest clock): serial getty (login prompt), kiln-firstboot's
# start, kubeadm invoked; then kiln-firstboot's status.json on one line (step timings, peak RSS).
mono() { echo "$(systemctl show -p "$2" --value "$1")" | awk '{ printf "%.2f", $1 / 1000000 }'; }
kubeadm_at=$(journalctl -b -o short-monotonic -u kiln-firstboot | grep -m1 'running kubeadm' | sed 's/^\[ *\([0-9.]*\)\].*/\1/')
# containerd: its start (ExecMainStart), its "successfully booted" (socket served) and when it
# was ready (ActiveEnter: Type=notify). The serial getty is Type=idle: its prompt waits for the
# job queue (kiln-firstboot's start job) up to systemd's 5 s idle timeout.
booted_at=$(journalctl -b -o short-monotonic -u containerd | grep -m1 'successfully booted' | sed 's/^\[ *\([0-9.]*\)\].*/\1/')
r "times getty=$(mono serial-getty@ttyS0.service ExecMainStartTimestampMonotonic) firstboot=$(mono kiln-firstboot.service ExecMainStartTimestampMonotonic) kubeadm=${kubeadm_at:-none} containerd=$(mono containerd.service ExecMainStartTimestampMonotonic) containerd-booted=${booted_at:-none} containerd-active=$(mono containerd.service ActiveEnterTimestampMonotonic)"
r "containerd-boot $(journalctl -b -o cat -u containerd | grep -m1 -o 'successfully booted in [0-9.]*s')"
journalctl -b -o short-monotonic -u kiln-firstboot | sed 's/^/KILN-TEST firstboot-log: /'
# containerd's own log: exec to its first line (binary read and Go start), plugins, CRI start.
journalctl -b -o short-monotonic -u containerd | sed 's/^/KILN-TEST containerd-log: /'
# CPU since boot (/proc/stat jiffies: user nice system idle iowait irq softirq).
r "cpu $(head -n 1 /proc/stat)"
r "firstboot-bytes $(stat -c %s /usr/bin/kiln-firstboot)"
r "status $(tr -d '\n' < /var/lib/kiln/status.json 2>/dev/null | tr -s ' ')"
r "kubeadm-calls $(grep -c -- '- join' /var/lib/kiln-standin/kubeadm.yaml 2>/dev/null || echo 0)"
sed 's/^/KILN-TEST record: /' /var/lib/kiln-standin/kubeadm.yaml 2>/dev/null
r "usr $(findmnt -no FSTYPE,OPTIONS /usr | cut -d, -f1-2)"
r "usr-source $(findmnt -no SOURCE /usr)"
# dm-verity: the device-mapper volumes (cryptsetup names verity volumes CRYPT-VERITY-...), the
# root hash the kernel was given, and systemd's view of the volume after switch-root.
for d in /sys/block/dm-*; do
  [ -e "$d/dm/name" ] && r "dm $(cat "$d/dm/name") $(cat "$d/dm/uuid")"
done
r "usrhash $(tr ' ' '\n' < /proc/cmdline | sed -n 's/^usrhash=//p')"
r "veritysetup-usr $(systemctl is-active systemd-veritysetup@usr.service)"
r "dm-status $(dmsetup status usr 2>&1)"
r "machine-id $(cat /etc/machine-id)"
r "root-mib $(df -B1M --output=size / | tail -1 | tr -d ' ')"
r "kubelet-args $(cat /etc/default/kubelet | grep -v '^#')"
r "end"
systemd-run --quiet --no-block --unit kiln-test-analyze -p StandardOutput=journal+console /usr/lib/kiln-test/report analyze
