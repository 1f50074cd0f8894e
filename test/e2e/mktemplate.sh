#!/usr/bin/env bash
# mktemplate.sh builds the tiny e2e template: a disk that boots from its own
# MBR (syslinux) into a busybox + dropbear guest in a few seconds under TCG,
# made only from Debian packages already on the host, without mounting anything
# and without loop devices (so it works in containers and CI).
#
# The result is a Lago template repository cached under
#   ${LAGO_E2E_CACHE:-/var/cache/lago-e2e}/<hash of this recipe + kernel>/
# holding repo.metadata, tiny.qcow2, tiny.qcow2.hash, tiny.qcow2.metadata and
# tiny.qcow2.xz (for http source tests). The path of repo.metadata is printed on
# stdout; everything else goes to stderr. A cached build is reused as is.
#
# Guest facts the e2e tests rely on:
#   - root password 123456 (Lago's default), /root/.ssh/authorized_keys honoured
#     (and empty: the only key a guest accepts is one bootstrap put there);
#   - /etc/machine-id is one fixed id, dropbear host keys are made at build
#     time: clones share them until bootstrap gives each its own;
#   - every NIC runs udhcpc; the lease carrying a domain sets the hostname,
#     /etc/resolv.conf (search <domain>) and /etc/hosts, so `hostname -f`
#     prints <vm>.<domain> and other VMs resolve by short name;
#   - dropbear on port 22 with scp and sftp-server, /bin/bash wraps busybox sh;
#   - acpid powers off on the ACPI power button; getty on ttyS0;
#   - qemu-guest-agent serves the org.qemu.guest_agent.0 channel when the
#     domain has one (fsfreeze, reboot), logging to /run/qemu-ga.log.
set -euo pipefail

die() {
	echo "mktemplate: $*" >&2
	exit 1
}
log() { echo "mktemplate: $*" >&2; }

# Only the repo.metadata path goes to the caller's stdout (fd 3); tool chatter
# goes to stderr so callers can use $(mktemplate.sh).
exec 3>&1 1>&2

self="$(readlink -f "${BASH_SOURCE[0]}")"
cache_root="${LAGO_E2E_CACHE:-/var/cache/lago-e2e}"

# The newest Debian cloud kernel installed on the host is the guest's kernel.
kver="${LAGO_E2E_KERNEL:-}"
if [ -z "$kver" ]; then
	kver="$(find /boot -maxdepth 1 -name 'vmlinuz-*-cloud-amd64' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -n1)"
fi
[ -n "$kver" ] || die "no /boot/vmlinuz-*-cloud-amd64: install linux-image-cloud-amd64 (test/e2e/deps.sh)"
kernel="/boot/vmlinuz-$kver"
moddir="/lib/modules/$kver"
[ -r "$kernel" ] || die "cannot read $kernel"
[ -d "$moddir" ] || die "missing $moddir"

# The cache key covers the recipe and the inputs that change the image.
key="$( {
	cat "$self"
	echo "$kver"
	sha1sum "$kernel" | cut -d' ' -f1
	dpkg-query -W -f='${Package} ${Version}\n' busybox-static dropbear-bin openssh-client openssh-sftp-server qemu-guest-agent 2>/dev/null || true
} | sha256sum | cut -c1-16)"
out="$cache_root/$key"
handle="tiny.qcow2"

if [ -f "$out/repo.metadata" ]; then
	echo "$out/repo.metadata" >&3
	exit 0
fi

for tool in busybox dropbear dropbearkey qemu-ga sfdisk mkfs.fat mcopy syslinux mkfs.ext4 qemu-img xz sha1sum; do
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
# One builder at a time per cache root; a second caller waits, then finds the cache.
exec 9>"$cache_root/.build.lock"
flock 9
if [ -f "$out/repo.metadata" ]; then
	echo "$out/repo.metadata" >&3
	exit 0
fi

start_ms=$(($(date +%s%N) / 1000000))
# Builds of older recipes, unused for a week, go.
find "$cache_root" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended -regex '.*/[0-9a-f]{16}' \
	! -name "$key" -mtime +7 -exec rm -rf {} + 2>/dev/null || true
work="$(mktemp -d "$cache_root/.build-$key.XXXXXX")"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

# modchain prints the modules.dep paths that load NAME, dependencies first.
# modules.dep lists a module's dependencies so that the last one loads first.
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

# modlist NAME... prints the load order for several modules without duplicates.
modlist() {
	local m
	for m in "$@"; do modchain "$m"; done | awk '!seen[$0]++'
}

# copy_with_libs copies an executable and the shared libraries ldd names.
copy_with_libs() {
	local bin="$1" dest="$2" lib
	install -D -m 0755 "$bin" "$root$dest"
	while read -r lib; do
		[ -n "$lib" ] || continue
		[ -e "$root$lib" ] && continue
		install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
	done < <(ldd "$bin" | grep -oE '/[^ ]+')
}

# ---------------------------------------------------------------- initrd
# A busybox initrd: load the virtio block stack, wait for /dev/vda2, switch_root.
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

# ---------------------------------------------------------------- root fs
root="$work/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/lib,lib64,dev,proc,sys,run,tmp,var/log,root/.ssh,etc/dropbear,etc/init.d,etc/acpi/PWRF,usr/share/udhcpc,home,mnt}
chmod 1777 "$root/tmp"
ln -s /run "$root/var/run"
chmod 0700 "$root/root" "$root/root/.ssh"
cp /bin/busybox "$root/bin/busybox"
while read -r applet; do
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done < <(busybox --list-full | grep -v '^linuxrc$')
# Tools run `bash -s`: a wrapper is enough for the scripts the tests feed.
rm -f "$root/bin/bash"
printf '#!/bin/sh\nexec /bin/sh "$@"\n' >"$root/bin/bash"
chmod 0755 "$root/bin/bash"

copy_with_libs /usr/sbin/dropbear /usr/sbin/dropbear
copy_with_libs /usr/bin/dbclient /usr/bin/dbclient
copy_with_libs /usr/bin/dropbearkey /usr/bin/dropbearkey
copy_with_libs /usr/sbin/qemu-ga /usr/sbin/qemu-ga
if [ -x /usr/bin/scp ]; then copy_with_libs /usr/bin/scp /usr/bin/scp; fi
# dropbear execs /usr/lib/sftp-server for the sftp subsystem.
if [ -x /usr/lib/openssh/sftp-server ]; then copy_with_libs /usr/lib/openssh/sftp-server /usr/lib/sftp-server; fi
# glibc's NSS modules let the static busybox resolve names (hostname -f, ping vm).
for lib in /lib/x86_64-linux-gnu/libnss_files.so.2 /lib/x86_64-linux-gnu/libnss_dns.so.2 /lib/x86_64-linux-gnu/libresolv.so.2; do
	if [ -e "$lib" ]; then install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"; fi
done

# Modules: networking, virtio-rng (with an <rng> device the crng is ready
# before dropbear instead of seconds later), ACPI power button, evdev for acpid,
# virtio_console for the guest agent's channel.
mkdir -p "$root/lib/modules/$kver"
: >"$root/etc/modules-boot"
while read -r m; do
	install -D -m 0644 "$moddir/$m" "$root/lib/modules/$kver/$m"
	echo "/lib/modules/$kver/$m" >>"$root/etc/modules-boot"
done < <(modlist virtio_pci virtio_blk virtio_net virtio-rng button evdev virtio_console)
for f in "$moddir"/modules.*; do
	case "$f" in *.bin) ;; *) cp "$f" "$root/lib/modules/$kver/" ;; esac
done

hash="$(busybox mkpasswd -m sha512 123456)"
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
printf 'root:%s:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' "$hash" >"$root/etc/shadow"
chmod 0600 "$root/etc/shadow"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf '/bin/sh\n/bin/ash\n/bin/bash\n' >"$root/etc/shells"
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
echo tiny >"$root/etc/hostname"
# A fixed machine-id, as a template made from an installed system has: each
# clone must get its own from bootstrap.
echo 6c61676f746966796d616368696e6569 >"$root/etc/machine-id"
printf '127.0.0.1\tlocalhost\n' >"$root/etc/hosts"
: >"$root/etc/resolv.conf"
cat >"$root/etc/os-release" <<'EOF'
NAME="Lago e2e tiny"
ID=busybox
VERSION_ID=1
PRETTY_NAME="Lago e2e tiny (busybox)"
EOF
cat >"$root/etc/fstab" <<'EOF'
/dev/vda2	/	ext4	defaults	0	1
proc	/proc	proc	defaults	0	0
sysfs	/sys	sysfs	defaults	0	0
EOF
cat >"$root/etc/profile" <<'EOF'
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
EOF

cat >"$root/etc/inittab" <<'EOF'
::sysinit:/etc/init.d/rcS
ttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/sync
::shutdown:/bin/umount -a -r
EOF

cat >"$root/etc/init.d/rcS" <<'EOF'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
grep -q ' /dev ' /proc/mounts || mount -t devtmpfs dev /dev
mount -t sysfs sys /sys
mount -o remount,rw /
mkdir -p /dev/pts /run /tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755 run /run
while read -r m; do insmod "$m" 2>/dev/null; done </etc/modules-boot
hostname -F /etc/hostname
ip link set lo up
# No syslogd runs: dropbear logs to a file, for post-mortems of failed logins.
dropbear -R -p 22 -E 2>>/var/log/dropbear.log
acpid
for dev in /sys/class/net/*; do
	ifc="${dev##*/}"
	[ "$ifc" = lo ] && continue
	ip link set "$ifc" up
	udhcpc -f -i "$ifc" -s /usr/share/udhcpc/default.script -p "/run/udhcpc.$ifc.pid" >/dev/null 2>&1 &
done
# The guest agent, on the port libvirt named for it (no udev here, so no
# /dev/virtio-ports/ link), last and in the background: loading its shared
# libraries takes ~150 ms of emulated CPU, which DHCP and sshd should not
# wait for. Its log is on tmpfs (qemu-ga stops logging while filesystems
# are frozen).
for port in /sys/class/virtio-ports/*; do
	[ "$(cat "$port/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] || continue
	qemu-ga -m virtio-serial -p "/dev/${port##*/}" -l /run/qemu-ga.log </dev/null >/dev/null 2>&1 &
done
EOF
chmod 0755 "$root/etc/init.d/rcS"

# The DHCP hook writes names before it configures the address, so a guest
# reachable over ssh already answers `hostname -f` correctly. Only a lease
# that carries a domain (Lago's management network) touches the hostname,
# /etc/hosts and /etc/resolv.conf: leases of the other networks name the NIC
# (<vm>-eth1) and have DNS disabled, and the udhcpc instances run
# concurrently, so letting them write would race with the management lease.
cat >"$root/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
# udhcpc hook: $1 is deconfig|bound|renew|nak, options arrive in the environment.
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface"
	ip link set "$interface" up
	;;
bound | renew)
	if [ -n "$domain" ]; then
		domain="${domain%% *}"
		if [ -n "$hostname" ]; then
			short="${hostname%%.*}"
			hostname "$short"
			echo "$short" >/etc/hostname
			printf '127.0.0.1\tlocalhost\n%s\t%s.%s %s\n' "$ip" "$short" "$domain" "$short" >/etc/hosts.tmp
			mv /etc/hosts.tmp /etc/hosts
		fi
		{
			echo "search $domain"
			for ns in $dns; do echo "nameserver $ns"; done
		} >/etc/resolv.conf.tmp
		mv /etc/resolv.conf.tmp /etc/resolv.conf
	fi
	ip -4 addr flush dev "$interface"
	ip -4 addr add "$ip/${mask:-24}" dev "$interface"
	if [ -n "$router" ] && [ -n "$domain" ]; then
		# The management network's gateway is the default route.
		ip -4 route del default 2>/dev/null
		for r in $router; do
			ip -4 route add default via "$r" dev "$interface" && break
		done
	elif [ -n "$router" ] && ! ip -4 route show default | grep -q .; then
		for r in $router; do
			ip -4 route add default via "$r" dev "$interface" && break
		done
	fi
	;;
esac
exit 0
EOF
chmod 0755 "$root/usr/share/udhcpc/default.script"

printf '#!/bin/sh\npoweroff\n' >"$root/etc/acpi/PWRF/00000080"
chmod 0755 "$root/etc/acpi/PWRF/00000080"

# Host keys made now so the first login does not wait for key generation;
# dropbear -R still makes any missing ones (after virt-sysprep removed them).
dropbearkey -t ed25519 -f "$root/etc/dropbear/dropbear_ed25519_host_key" >/dev/null 2>&1
dropbearkey -t ecdsa -f "$root/etc/dropbear/dropbear_ecdsa_host_key" >/dev/null 2>&1
: >"$root/root/.ssh/authorized_keys"
chmod 0600 "$root/root/.ssh/authorized_keys"

# ---------------------------------------------------------------- disk
boot_mib=24
root_mib=200
disk="$work/disk.raw"
mkfs.fat -F 16 -n LAGOBOOT -C "$work/boot.fat" $((boot_mib * 1024)) >/dev/null
syslinux --install "$work/boot.fat"
# no_timer_check, as cloud images have it: on a starved host (three TCG
# guests on two cores) the kernel's early check of the IO-APIC timer can
# miss its ticks and panic ("IO-APIC + timer doesn't work!"); the guest
# then spins at 100% CPU and never answers ssh.
cat >"$work/syslinux.cfg" <<'EOF'
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND root=/dev/vda2 console=ttyS0 quiet no_timer_check
EOF
mcopy -i "$work/boot.fat" "$kernel" ::vmlinuz
mcopy -i "$work/boot.fat" "$work/initrd.img" ::initrd.img
mcopy -i "$work/boot.fat" "$work/syslinux.cfg" ::syslinux.cfg

mkfs.ext4 -q -F -L lagoroot -d "$root" "$work/root.ext4" "${root_mib}M"

truncate -s $((1 + boot_mib + root_mib))M "$disk"
sfdisk -q "$disk" <<EOF
label: dos
start=2048, size=$((boot_mib * 2048)), type=6, bootable
start=$((2048 + boot_mib * 2048)), size=$((root_mib * 2048)), type=83
EOF
dd if="$mbr" of="$disk" bs=440 count=1 conv=notrunc status=none
dd if="$work/boot.fat" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$work/root.ext4" of="$disk" bs=1M seek=$((1 + boot_mib)) conv=notrunc,sparse status=none

stage="$work/repo"
mkdir -p "$stage"
qemu-img convert -f raw -O qcow2 "$disk" "$stage/$handle"
sha1sum "$stage/$handle" | cut -d' ' -f1 | tr -d '\n' >"$stage/$handle.hash"
printf '{"distro": "busybox", "root-password": "123456"}\n' >"$stage/$handle.metadata"
xz -T2 -3 -k -c "$stage/$handle" >"$stage/$handle.xz"
cat >"$stage/repo.metadata" <<EOF
{
    "name": "e2e",
    "sources": {
        "local": {"type": "file", "args": {"root": "$out"}}
    },
    "templates": {
        "tiny": {"versions": {"v1": {"source": "local", "handle": "$handle", "timestamp": $(date +%s)}}}
    }
}
EOF
chmod 0644 "$stage"/*
rm -rf "$out"
mv "$stage" "$out"
log "built $out in $(($(date +%s%N) / 1000000 - start_ms)) ms"
echo "$out/repo.metadata" >&3
