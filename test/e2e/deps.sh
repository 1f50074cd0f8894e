#!/usr/bin/env bash
# deps.sh installs every Debian package the e2e harness, the tiny template recipe
# and the demo need. It is the one list: .ci/run and demo.sh call it, so a package
# added to a recipe is added here and nowhere else.
set -euo pipefail

packages=(
	# hypervisor and daemons the harness starts inside its network namespace
	libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients libvirt-dev
	qemu-system-x86 qemu-utils dnsmasq-base iptables iproute2
	# a subreaper for libvirtd's daemonized children (see lib.sh)
	tini
	# the tiny template: kernel, userland, boot loader, filesystems
	linux-image-cloud-amd64 busybox-static dropbear-bin openssh-client openssh-sftp-server
	qemu-guest-agent
	syslinux syslinux-common mtools dosfstools e2fsprogs fdisk xz-utils
	# the systemd and sysvinit guests of the service tests (mkservicetemplates.sh)
	debootstrap
	# libguestfs for the bootstrap/builder paths the e2e tests exercise
	libguestfs-tools
	# misc tools the scripts call (acl: setfacl for the shared-host test's homes)
	ca-certificates curl util-linux coreutils shellcheck acl
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "deps: all ${#packages[@]} packages present"
	exit 0
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
