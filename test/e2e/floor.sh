#!/usr/bin/env bash
# floor.sh measures the boot-to-ssh floor of the tiny template: a NAT network
# and a TCG domain created straight through virsh (no lago involved), ssh
# polled every 0.2 s from inside the network namespace. The figure is what
# lago's own start can at best approach. It removes what it created.
#
# usage: floor.sh NETNS [RUNS]    (run as root; libvirtd must serve qemu:///system)
set -euo pipefail

ns="${1:?usage: floor.sh NETNS [RUNS]}"
runs="${2:-3}"
uri="${LAGO_LIBVIRT_TEST_URI:-qemu:///system}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$("$here/mktemplate.sh")"
img="$(dirname "$repo")/tiny.qcow2"

tag="e2ef$$"
net="$tag-net"
dom="$tag-vm"
work="$(mktemp -d /tmp/lago-floor.XXXXXX)"
chmod 0755 "$work" # qemu runs as another user
ip=10.254.77.10
mac=54:52:0a:fe:4d:0a

cleanup() {
	virsh -q -c "$uri" destroy "$dom" >/dev/null 2>&1 || true
	virsh -q -c "$uri" undefine "$dom" >/dev/null 2>&1 || true
	virsh -q -c "$uri" net-destroy "$net" >/dev/null 2>&1 || true
	virsh -q -c "$uri" net-undefine "$net" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/net.xml" <<EOF
<network>
  <name>$net</name>
  <forward mode='nat'/>
  <bridge name='${tag}br' stp='off' delay='0'/>
  <domain name='lago.local' localOnly='yes'/>
  <ip address='10.254.77.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.254.77.100' end='10.254.77.200'/>
      <host mac='$mac' name='floor' ip='$ip'/>
    </dhcp>
  </ip>
</network>
EOF
virsh -q -c "$uri" net-define "$work/net.xml" >/dev/null
virsh -q -c "$uri" net-start "$net" >/dev/null

cat >"$work/dom.xml" <<EOF
<domain type='qemu'>
  <name>$dom</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$work/disk.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <source network='$net'/>
      <mac address='$mac'/>
      <model type='virtio'/>
    </interface>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <serial type='file'><source path='$work/console.log'/><target port='0'/></serial>
  </devices>
</domain>
EOF
virsh -q -c "$uri" define "$work/dom.xml" >/dev/null

# ready reports whether sshd completed a handshake and answered authentication.
ready() {
	local out
	out="$(ip netns exec "$ns" timeout 2 ssh -o BatchMode=yes -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o ConnectTimeout=1 -o LogLevel=ERROR \
		-o PreferredAuthentications=publickey "root@$ip" true 2>&1)" && return 0
	case "$out" in *"Permission denied"*) return 0 ;; esac
	return 1
}

for ((r = 1; r <= runs; r++)); do
	rm -f "$work/disk.qcow2"
	qemu-img create -q -f qcow2 -F qcow2 -b "$img" "$work/disk.qcow2"
	t0=$(date +%s%N)
	virsh -q -c "$uri" start "$dom" >/dev/null
	until ready; do
		if (($(date +%s%N) - t0 > 120000000000)); then
			echo "floor: no ssh after 120 s; console:" >&2
			tail -n 40 "$work/console.log" >&2 || true
			exit 1
		fi
		sleep 0.2
	done
	t1=$(date +%s%N)
	echo "run $r: boot-to-ssh $(((t1 - t0) / 1000000)) ms"
	if [ "${FLOOR_SHOW_CONSOLE:-}" = 1 ]; then tail -n 30 "$work/console.log"; fi
	virsh -q -c "$uri" destroy "$dom" >/dev/null
done
