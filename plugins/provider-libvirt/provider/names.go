package provider

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
)

// Name limits kept from the original Lago: network names fit in 15
// characters and bridge names in 12, so the bridge plus a libvirt suffix
// ("-nic") still fits Linux's 15-character interface names.
const (
	maxNetNameLen    = 15
	maxBridgeNameLen = 12
)

// prefixedName is the original Lago's Prefix.prefixed_name: uuid[:8]-name
// without a limit; with one, uuid[:4] (limits under 16) or uuid[:8], and a
// sha1 of the name cut to fit when the name is too long.
func prefixedName(uuid, name string, maxLen int) string {
	if maxLen == 0 {
		return short(uuid, 8) + "-" + name
	}
	u := short(uuid, 8)
	if maxLen < 16 {
		u = short(uuid, 4)
	}
	room := maxLen - len(u) - 1
	if room < len(name) {
		sum := sha1.Sum([]byte(name))
		name = hex.EncodeToString(sum[:])[:room]
	}
	return u + "-" + name
}

func short(s string, n int) string {
	if len(s) < n {
		return s
	}
	return s[:n]
}

// domainName is the libvirt name of a VM: <uuid[:8]>-<vm>.
func domainName(uuid, vm string) string { return prefixedName(uuid, vm, 0) }

// networkName is the libvirt name of a network: <uuid[:4]>-<net>, at most
// 15 characters.
func networkName(uuid, net string) string { return prefixedName(uuid, net, maxNetNameLen) }

// bridgeName is the Linux bridge of a network, at most 12 characters. The
// original cut "<libvirt name>-nic" to 12 characters, which lets two long
// network names share a bridge; when the name does not fit we use a hash of
// the network name instead, so distinct networks get distinct bridges.
func bridgeName(uuid, net string) string {
	n := networkName(uuid, net) + "-nic"
	if len(n) <= maxBridgeNameLen {
		return n
	}
	sum := sha1.Sum([]byte(net))
	u := short(uuid, 4)
	return u + "-" + hex.EncodeToString(sum[:])[:maxBridgeNameLen-len(u)-1]
}

var unsafeVolChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// volumeOwnerPrefix starts the name of every volume an environment owns in
// remote mode; the full uuid lets ListOwned find the owner from the name
// alone (volumes carry no metadata).
func volumeOwnerPrefix(uuid string) string { return "lago-" + uuid + "-" }

// diskVolumeName is the remote volume of a VM disk. It is computed, not
// recorded, each time a disk is pushed or a domain defined, so it must not
// change between versions: environments made earlier keep their volumes.
// Since both names may contain '-', two disks can get the same name (vm
// a-b disk c and vm a disk b-c); ValidateSpec refuses such environments
// (see diskVolumeCollisions).
func diskVolumeName(uuid, vm, disk, format string) string {
	return volumeOwnerPrefix(uuid) + unsafeVolChars.ReplaceAllString(vm+"-"+disk, "_") + "." + volExt(format)
}

// volumeCollision is a disk whose remote volume would be another's.
type volumeCollision struct {
	VM      string // the VM of the later disk, for the diagnostic's attribute
	Summary string
}

// diskVolumeCollisions lists the disks of vms (one environment) whose
// remote volume name another disk already has, each naming both disks.
// Sharing a volume would make two VMs write one disk.
func diskVolumeCollisions(uuid string, vms []*providerv1.VM) []volumeCollision {
	type owner struct{ vm, disk string }
	seen := map[string]owner{}
	var out []volumeCollision
	for _, vm := range vms {
		for _, d := range vm.GetDisks() {
			name := diskVolumeName(uuid, vm.GetName(), d.GetName(), diskFormat(d))
			first, dup := seen[name]
			if !dup {
				seen[name] = owner{vm.GetName(), d.GetName()}
				continue
			}
			out = append(out, volumeCollision{VM: vm.GetName(), Summary: fmt.Sprintf(
				"disk '%s' of vm '%s' and disk '%s' of vm '%s' would share the remote volume %s, as volumes are named <vm>-<disk>: rename one of the disks or VMs",
				d.GetName(), vm.GetName(), first.disk, first.vm, name)})
		}
	}
	return out
}

// serialVolumeName is the file a remote VM's serial console is logged to,
// in the storage pool's folder, so that it is a volume of the environment.
func serialVolumeName(uuid, vm string) string {
	return volumeOwnerPrefix(uuid) + unsafeVolChars.ReplaceAllString(vm, "_") + ".serial.log"
}

// templateVolumeName is the shared, read-only volume holding a template on
// a remote host, named from its key and hash so it is uploaded once per
// host and reused by every environment.
func templateVolumeName(key, hash, format string) string {
	k := unsafeVolChars.ReplaceAllString(strings.ReplaceAll(key, ":", "_"), "_")
	h := short(hash, 12)
	if h == "" {
		h = "nohash"
	}
	return "lago-template-" + k + "-" + h + "." + volExt(format)
}

func volExt(format string) string {
	if format == "" {
		return "qcow2"
	}
	return format
}
