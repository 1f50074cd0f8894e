package initfile

import (
	"fmt"
	"path"

	"github.com/lago-go/lago/core/prefix"
)

// The original Lago names a disk's image images/<vm>_<disk>.<format> and a
// deploy script's copy scripts/<source path with / replaced by _>. Both
// names may contain '_', so two disks (VM a_b disk c, VM a disk b_c) or two
// scripts (/x/a_b.sh, /x/a/b.sh) can get the same name, and then two VMs
// share one disk or a VM runs another's script. Prefixes made by the
// original and by earlier versions of lago find their images by these
// names, so the names are kept and an init file in which two of them
// collide is refused, naming both disks or scripts with their positions.

// place is where a disk or script was written, for an error about it.
type place struct {
	path string // field path, such as domains.vm0.disks[1]
	node *node
	what string // "disk c of vm a_b", "deploy script /x/a_b.sh of vm vm0"
}

func (p place) position(file string) string {
	if p.node == nil || p.node.line == 0 {
		return file + ", " + p.path
	}
	return fmt.Sprintf("%s:%d:%d, %s", file, p.node.line, p.node.col, p.path)
}

// imageStem is the name a disk's image file has without its extension,
// images/<vm>_<disk> (see imagePath).
func imageStem(vm, disk string) string {
	return path.Join("images", vm+"_"+disk)
}

// scriptCopy is where init copies a deploy script inside the prefix,
// relative to it (prefix.Prefix.ScriptPath decides).
func scriptCopy(src string) string {
	return (&prefix.Prefix{}).ScriptPath(src)
}

// checkCollisions refuses two disks whose images would share a name and
// two different deploy scripts whose copies would. Disks are compared by
// image name without the extension: tools that name a disk <vm>_<disk>
// (export, the volume a remote disk is kept in) would confuse them even
// when their formats differ. Disks used in place get no image and are not
// compared; the same script used by several VMs is one copy, not a
// collision.
func (d *decoder) checkCollisions(vms []*vmInfo) {
	images := map[string]place{}
	scripts := map[string]place{}
	scriptSrc := map[string]string{}
	for _, vi := range vms {
		vm := &vi.vm
		if items := seqItems(vi.node, "disks"); len(items) == len(vm.Disks) {
			for i := range vm.Disks {
				disk := &vm.Disks[i]
				if imagePath(vm.Name, disk) == "" {
					continue
				}
				p := place{
					path: fmt.Sprintf("%s.disks[%d]", vi.path, i),
					node: items[i],
					what: fmt.Sprintf("disk %s of vm %s", disk.Name, vm.Name),
				}
				if v := items[i].get("name"); v != nil {
					p.path, p.node = p.path+".name", v
				}
				stem := imageStem(vm.Name, disk.Name)
				first, dup := images[stem]
				if !dup {
					images[stem] = p
					continue
				}
				d.errorf(p.node, p.path, "%s and %s (%s) would share the image file %s.*, as images are named <vm>_<disk>: rename one of the disks or VMs",
					p.what, first.what, first.position(d.file), stem)
			}
		}
		srcs := vm.DeployScripts()
		items := seqItems(vi.node.get("metadata"), "deploy-scripts")
		if len(items) != len(srcs) {
			continue
		}
		for i, src := range srcs {
			if src == "" {
				continue
			}
			p := place{
				path: fmt.Sprintf("%s.metadata.deploy-scripts[%d]", vi.path, i),
				node: items[i],
				what: fmt.Sprintf("deploy script %s of vm %s", src, vm.Name),
			}
			dst := scriptCopy(src)
			first, dup := scripts[dst]
			if !dup {
				scripts[dst], scriptSrc[dst] = p, src
				continue
			}
			if scriptSrc[dst] == src {
				continue
			}
			d.errorf(p.node, p.path, "%s and %s (%s) would share the copy %s, as copies are named after the path with every / replaced by _: rename or move one of the scripts",
				p.what, first.what, first.position(d.file), dst)
		}
	}
}

// seqItems returns the items of the list under key in map n, or nil.
func seqItems(n *node, key string) []*node {
	v := n.get(key)
	if v == nil || v.kind != kSeq {
		return nil
	}
	return v.items
}
