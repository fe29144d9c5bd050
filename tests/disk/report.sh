#!/bin/sh
# Test image only: prints what the e2e test asserts to the serial console, on every boot.
state=/var/lib/kiln-test
mkdir -p "$state/boots"
touch "$state/boots/$(cat /proc/sys/kernel/random/boot_id)"
r() { echo "KILN-TEST $*"; }
r "boots $(ls "$state/boots" | wc -l)"
r "firstboot $(systemctl show -p ActiveState -p Result -p ConditionResult kiln-firstboot.service | tr '\n' ' ')"
r "done $(test -e /var/lib/kiln/done && echo yes || echo no)"
r "sentinel $(cat /run/cluster-api/bootstrap-success.complete 2>/dev/null || echo none)"
r "containerd $(systemctl is-active containerd)"
r "images $(ctr -n k8s.io images ls -q 2>/dev/null | tr '\n' ' ')"
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
