#!/usr/bin/env bash
# mkservicetemplates.sh builds the e2e guests of the service-manager tests:
# two small Debian bookworm systems (debootstrap --variant=minbase from the
# Debian mirror), one booted with systemd as pid 1 and one with sysvinit,
# both on the host's cloud kernel and a busybox initrd as the tiny template
# (test/e2e/mktemplate.sh), so no bootloader or kernel package is installed
# in the guests and the root file system is made by mkfs.ext4 -d (no loop
# devices). debootstrap needs root and chroot.
#
# The result is a Lago template repository cached under
#   ${LAGO_E2E_CACHE:-/var/cache/lago-e2e}/svc-<hash of this recipe + kernel>/
# with templates "systemd" and "sysvinit" (systemd.qcow2, sysvinit.qcow2 and
# their .hash/.metadata). The path of repo.metadata is printed on stdout;
# everything else goes to stderr. A cached build is reused as is.
#
# Guest facts the e2e tests rely on:
#   - root password 123456 (Lago's default), sshd (the "ssh" service)
#     allows root logins with it and with keys;
#   - eth0 (net.ifnames=0) takes DHCP: systemd-networkd on the systemd
#     guest, ifupdown + dhclient on the sysvinit one;
#   - cron is installed and enabled: a harmless service to stop and start;
#   - only the systemd guest has /usr/bin/systemctl, both have
#     /sbin/service (init-system-helpers).
set -euo pipefail

die() {
	echo "mkservicetemplates: $*" >&2
	exit 1
}
log() { echo "mkservicetemplates: $*" >&2; }

exec 3>&1 1>&2

self="$(readlink -f "${BASH_SOURCE[0]}")"
cache_root="${LAGO_E2E_CACHE:-/var/cache/lago-e2e}"
mirror="${LAGO_E2E_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=bookworm

kver="${LAGO_E2E_KERNEL:-}"
if [ -z "$kver" ]; then
	kver="$(find /boot -maxdepth 1 -name 'vmlinuz-*-cloud-amd64' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -n1)"
fi
[ -n "$kver" ] || die "no /boot/vmlinuz-*-cloud-amd64: install linux-image-cloud-amd64 (test/e2e/deps.sh)"
kernel="/boot/vmlinuz-$kver"
moddir="/lib/modules/$kver"
[ -r "$kernel" ] || die "cannot read $kernel"
[ -d "$moddir" ] || die "missing $moddir"

key="$( {
	cat "$self"
	echo "$kver $mirror $suite"
	sha1sum "$kernel" | cut -d' ' -f1
} | sha256sum | cut -c1-16)"
out="$cache_root/svc-$key"

if [ -f "$out/repo.metadata" ]; then
	echo "$out/repo.metadata" >&3
	exit 0
fi
[ "$(id -u)" = 0 ] || die "debootstrap needs root"
for tool in debootstrap busybox sfdisk mkfs.fat mcopy syslinux mkfs.ext4 depmod qemu-img sha1sum; do
	command -v "$tool" >/dev/null || die "missing $tool: run test/e2e/deps.sh"
done
mbr=""
for f in /usr/lib/syslinux/mbr/mbr.bin /usr/lib/SYSLINUX/mbr.bin /usr/share/syslinux/mbr.bin; do
	if [ -r "$f" ]; then
		mbr="$f"
		break
	fi
done
[ -n "$mbr" ] || die "syslinux mbr.bin not found: install syslinux"

mkdir -p "$cache_root"
exec 9>"$cache_root/.build-svc.lock"
flock 9
if [ -f "$out/repo.metadata" ]; then
	echo "$out/repo.metadata" >&3
	exit 0
fi

start_ms=$(($(date +%s%N) / 1000000))
find "$cache_root" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended -regex '.*/svc-[0-9a-f]{16}' \
	! -name "svc-$key" -mtime +7 -exec rm -rf {} + 2>/dev/null || true
work="$(mktemp -d "$cache_root/.build-svc-$key.XXXXXX")"
cleanup() {
	# debootstrap may leave its mounts behind on failure.
	local m
	awk -v w="$work" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
# .debs are kept between builds (and between the two guests).
debs="$cache_root/.debs"
mkdir -p "$debs"

modchain() {
	local name="$1" line path deps i
	line="$(grep -E "(^|/)${name}\.ko(\.[a-z]+)?:" "$moddir/modules.dep" | head -n1)" ||
		die "module $name not in $moddir/modules.dep"
	path="${line%%:*}"
	read -r -a deps <<<"${line#*:}"
	for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
		echo "${deps[$i]}"
	done
	echo "$path"
}
modlist() {
	local m
	for m in "$@"; do modchain "$m"; done | awk '!seen[$0]++'
}

# ---------------------------------------------------------------- initrd
# The tiny template's: load the virtio block stack, mount /dev/vda2
# read-only, switch_root to /sbin/init (the guest's init remounts it).
initrd="$work/initrd"
mkdir -p "$initrd"/{bin,dev,proc,sys,newroot,lib/modules}
cp /bin/busybox "$initrd/bin/busybox"
for a in sh mount umount insmod switch_root sleep cat echo; do ln -s busybox "$initrd/bin/$a"; done
: >"$initrd/modules"
while read -r m; do
	cp "$moddir/$m" "$initrd/lib/modules/"
	basename "$m" >>"$initrd/modules"
done < <(modlist virtio_pci virtio_blk)
cat >"$initrd/init" <<'INIT'
#!/bin/sh
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
while read -r m; do insmod "/lib/modules/$m" || echo "initrd: insmod $m failed"; done </modules
i=0
while [ ! -b /dev/vda2 ]; do
	i=$((i + 1))
	if [ "$i" -gt 500 ]; then echo "initrd: /dev/vda2 did not appear"; exec sh; fi
	sleep 0.02
done
mount -t ext4 -o ro /dev/vda2 /newroot || { echo "initrd: cannot mount /dev/vda2"; exec sh; }
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
INIT
chmod 0755 "$initrd/init"
(cd "$initrd" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$work/initrd.img"

boot_mib=24
mkfs.fat -F 16 -n LAGOBOOT -C "$work/boot.fat" $((boot_mib * 1024)) >/dev/null
syslinux --install "$work/boot.fat"
cat >"$work/syslinux.cfg" <<'EOF'
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND root=/dev/vda2 ro console=ttyS0 net.ifnames=0 quiet no_timer_check
EOF
mcopy -i "$work/boot.fat" "$kernel" ::vmlinuz
mcopy -i "$work/boot.fat" "$work/initrd.img" ::initrd.img
mcopy -i "$work/boot.fat" "$work/syslinux.cfg" ::syslinux.cfg

stage="$work/repo"
mkdir -p "$stage"

# build NAME PACKAGES: debootstrap, configure, make NAME.qcow2 in $stage.
build() {
	local name="$1" include="$2" root t0
	root="$work/root-$name"
	t0=$(date +%s)
	log "$name: debootstrap $suite ($include)"
	debootstrap --variant=minbase --cache-dir="$debs" --include="$include" \
		"$suite" "$root" "$mirror" >"$work/debootstrap-$name.log" 2>&1 ||
		{ tail -n 30 "$work/debootstrap-$name.log" >&2; die "$name: debootstrap failed"; }
	log "$name: debootstrap took $(($(date +%s) - t0)) s"

	echo "root:123456" | chroot "$root" chpasswd
	echo "$name" >"$root/etc/hostname"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$name" >"$root/etc/hosts"
	printf '/dev/vda2\t/\text4\tdefaults\t0\t0\n' >"$root/etc/fstab"
	mkdir -p "$root/etc/ssh/sshd_config.d" "$root/root/.ssh"
	printf 'PermitRootLogin yes\nUseDNS no\n' >"$root/etc/ssh/sshd_config.d/lago-e2e.conf"
	chmod 0700 "$root/root/.ssh"
	# Each VM makes its own machine id at first boot.
	: >"$root/etc/machine-id"
	rm -f "$root/var/lib/dbus/machine-id"

	# The host kernel's modules the guest needs beyond the initrd's.
	while read -r m; do
		install -D -m 0644 "$moddir/$m" "$root/lib/modules/$kver/$m"
	done < <(modlist virtio_pci virtio_blk virtio_net virtio-rng virtio_console button evdev)
	cp "$moddir/modules.order" "$moddir/modules.builtin" "$moddir/modules.builtin.modinfo" "$root/lib/modules/$kver/" 2>/dev/null || true
	depmod -b "$root" "$kver"
	printf 'virtio_net\nvirtio_rng\nvirtio_console\nbutton\n' >>"$root/etc/modules"

	case "$name" in
	systemd)
		mkdir -p "$root/etc/systemd/network" "$root/etc/modules-load.d"
		cp "$root/etc/modules" "$root/etc/modules-load.d/lago-e2e.conf"
		printf '[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\n' >"$root/etc/systemd/network/10-eth0.network"
		chroot "$root" systemctl enable systemd-networkd.service ssh.service cron.service >/dev/null 2>&1
		# No waiting for "network online" nor for a clock sync.
		chroot "$root" systemctl mask systemd-networkd-wait-online.service systemd-timesyncd.service >/dev/null 2>&1 || true
		[ -e "$root/usr/bin/systemctl" ] || die "systemd: no systemctl in the guest"
		;;
	sysvinit)
		mkdir -p "$root/etc/network"
		printf 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n' >"$root/etc/network/interfaces"
		[ ! -e "$root/usr/bin/systemctl" ] || die "sysvinit: systemctl got installed"
		case "$(readlink -f "$root/sbin/init")" in
		*systemd*) die "sysvinit: /sbin/init is systemd" ;;
		esac
		;;
	esac
	[ -e "$root/usr/sbin/service" ] || die "$name: no /usr/sbin/service"

	# Smaller image: no package lists, .debs, docs, man pages or locales.
	rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
		"$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log
	find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true

	local used root_mib disk
	used=$(du -sm "$root" | cut -f1)
	root_mib=$((used + used / 2 + 128))
	mkfs.ext4 -q -F -L lagoroot -d "$root" "$work/root-$name.ext4" "${root_mib}M"
	disk="$work/$name.raw"
	truncate -s $((1 + boot_mib + root_mib))M "$disk"
	sfdisk -q "$disk" <<EOF
label: dos
start=2048, size=$((boot_mib * 2048)), type=6, bootable
start=$((2048 + boot_mib * 2048)), size=$((root_mib * 2048)), type=83
EOF
	dd if="$mbr" of="$disk" bs=440 count=1 conv=notrunc status=none
	dd if="$work/boot.fat" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
	dd if="$work/root-$name.ext4" of="$disk" bs=1M seek=$((1 + boot_mib)) conv=notrunc,sparse status=none
	qemu-img convert -f raw -O qcow2 "$disk" "$stage/$name.qcow2"
	rm -f "$disk" "$work/root-$name.ext4"
	rm -rf "$root"
	sha1sum "$stage/$name.qcow2" | cut -d' ' -f1 | tr -d '\n' >"$stage/$name.qcow2.hash"
	printf '{"distro": "debian", "init": "%s", "root-password": "123456"}\n' "$name" >"$stage/$name.qcow2.metadata"
	log "$name: ${used} MiB of files, $(du -m "$stage/$name.qcow2" | cut -f1) MiB qcow2, $(($(date +%s) - t0)) s"
}

build systemd systemd-sysv,udev,openssh-server,iproute2,kmod,cron
build sysvinit sysvinit-core,openssh-server,ifupdown,isc-dhcp-client,iproute2,kmod,cron,procps

now=$(date +%s)
cat >"$stage/repo.metadata" <<EOF
{
    "name": "e2e-service",
    "sources": {
        "local": {"type": "file", "args": {"root": "$out"}}
    },
    "templates": {
        "systemd": {"versions": {"v1": {"source": "local", "handle": "systemd.qcow2", "timestamp": $now}}},
        "sysvinit": {"versions": {"v1": {"source": "local", "handle": "sysvinit.qcow2", "timestamp": $now}}}
    }
}
EOF
chmod 0644 "$stage"/*
rm -rf "$out"
mv "$stage" "$out"
log "built $out in $(($(date +%s%N) / 1000000 - start_ms)) ms"
echo "$out/repo.metadata" >&3
