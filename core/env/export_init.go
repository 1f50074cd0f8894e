package env

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lago-go/lago/core/spec"
)

// exportInitFile is the init file that recreates the exported VMs (vms)
// from the exported images: every non-iso disk's path is
// $LAGO_INITFILE_PATH/<its file>; a template disk becomes a template of
// template_type qcow2 on that file (init overlays a new layer, so the
// export stays untouched and can be used again), an empty disk a file
// disk with make_a_copy. What the original's export filtered out is left
// out (disk metadata, deploy scripts, net mappings and DNS records), and
// also what belongs to the exported prefix rather than to its recipe:
// build steps (their effect is in the images), sizes (the images have
// them), the nets' subnets and the VMs' addresses, so the new environment
// leases its own and can run next to the old one. An iso disk keeps its
// image's absolute path.
func exportInitFile(e *Environment, vms []*spec.VM, standalone bool) map[string]any {
	domains := map[string]any{}
	for _, vm := range vms {
		d := map[string]any{"memory": vm.Memory}
		if vm.VCPU != 0 {
			d["vcpu"] = vm.VCPU
		}
		setStr(d, "cpu_model", vm.CPUModel)
		if len(vm.CPUCustom) > 0 {
			d["cpu_custom"] = vm.CPUCustom
		}
		if len(vm.Numa) > 0 {
			cells := make([]any, 0, len(vm.Numa))
			for _, c := range vm.Numa {
				cells = append(cells, map[string]any{"id": c.ID, "cpus": c.CPUs, "memory": c.Memory})
			}
			d["numa"] = cells
		}
		nics := make([]any, 0, len(vm.NICs))
		for _, n := range vm.NICs {
			nic := map[string]any{"net": n.Net}
			if n.MTU != 0 {
				nic["mtu"] = n.MTU
			}
			nics = append(nics, nic)
		}
		d["nics"] = nics
		disks := make([]any, 0, len(vm.Disks))
		for _, sd := range vm.Disks {
			disks = append(disks, exportDisk(e, sd))
		}
		d["disks"] = disks
		if len(vm.Artifacts) > 0 {
			d["artifacts"] = append([]string(nil), vm.Artifacts...)
		}
		if len(vm.Groups) > 0 {
			d["groups"] = []string(vm.Groups)
		}
		if vm.Bootstrap != nil {
			d["bootstrap"] = *vm.Bootstrap
		}
		setStr(d, "ssh-user", vm.SSHUser)
		setStr(d, "ssh-password", vm.SSHPassword)
		setStr(d, "root-password", vm.RootPassword)
		setStr(d, "vm-provider", vm.VMProvider)
		setStr(d, "vm-type", vm.VMType)
		setStr(d, "service_provider", vm.ServiceProvider)
		setStr(d, "distro", vm.Distro)
		meta := map[string]any{}
		for k, v := range vm.Metadata {
			if k != "deploy-scripts" {
				meta[k] = v
			}
		}
		if len(meta) > 0 {
			d["metadata"] = meta
		}
		domains[vm.Name] = d
	}
	nets := map[string]any{}
	for _, n := range e.Nets {
		net := map[string]any{"type": n.Type, "management": n.Management}
		if n.Type == "" {
			net["type"] = spec.NetNAT
		}
		if n.DHCP != nil {
			net["dhcp"] = map[string]any{"start": n.DHCP.Start, "end": n.DHCP.End}
		}
		setStr(net, "dns_domain_name", n.DNSDomainName)
		if n.MTU != 0 {
			net["mtu"] = n.MTU
		}
		nets[n.Name] = net
	}
	return map[string]any{"domains": domains, "nets": nets}
}

// exportDisk is one disk of the exported init file.
func exportDisk(e *Environment, sd spec.Disk) map[string]any {
	d := map[string]any{"dev": sd.Dev}
	setStr(d, "name", sd.Name)
	if sd.Type == spec.DiskISO {
		d["type"] = spec.DiskISO
		setStr(d, "format", sd.Format)
		src := sd.SourcePath
		if src == "" {
			src = sd.Path
		}
		d["path"] = spec.ExpandPrefixPath(src, e.Path)
		return d
	}
	d["path"] = initFilePathVar + "/" + filepath.Base(spec.ExpandPrefixPath(sd.Path, e.Path))
	switch sd.Type {
	case spec.DiskTemplate:
		d["type"] = spec.DiskTemplate
		d["template_type"] = "qcow2"
		d["format"] = "qcow2"
	default: // file, empty
		d["type"] = spec.DiskFile
		setStr(d, "format", sd.Format)
		if sd.Type == spec.DiskEmpty || sd.MakeACopy {
			d["make_a_copy"] = true
		}
	}
	return d
}

func setStr(m map[string]any, key, v string) {
	if v != "" {
		m[key] = v
	}
}

// sparseBlock is the unit sparseCopy reads and checks for zeros.
const sparseBlock = 1 << 20

// sparseCopy copies src to dst (through dst.tmp) without writing blocks
// of zeros, so a sparse template stays sparse: seeking past them leaves
// holes.
func sparseCopy(ctx context.Context, src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	zero := make([]byte, sparseBlock)
	buf := make([]byte, sparseBlock)
	var size int64
	for {
		if err := ctx.Err(); err != nil {
			out.Close()
			return err
		}
		n, rerr := io.ReadFull(in, buf)
		if n > 0 {
			if bytes.Equal(buf[:n], zero[:n]) {
				if _, err := out.Seek(int64(n), io.SeekCurrent); err != nil {
					out.Close()
					return err
				}
			} else if _, err := out.Write(buf[:n]); err != nil {
				out.Close()
				return err
			}
			size += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			out.Close()
			return rerr
		}
	}
	if err := out.Truncate(size); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}
