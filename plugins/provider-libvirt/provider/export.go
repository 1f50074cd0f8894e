package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
)

// Export writes the VM's disks (iso disks excluded) into dst_dir with
// qemu-img convert: standalone flattens template overlays into one image,
// otherwise a template disk stays an overlay on its template (-B);
// compress adds -c. The VM must be off. In remote mode the volumes are
// first downloaded through libvirt streams (and, for a standalone export of
// a template disk, the overlay is rebased onto the local template copy).
func (p *Provider) Export(ctx context.Context, req *providerv1.ExportRequest) ([]string, error) {
	c, cfg, _, warns, err := p.connect(ctx)
	if err != nil {
		return nil, err
	}
	env, vm := req.GetEnv(), req.GetVm()
	label := vmLabel(env, vm)
	st, err := c.DomainState(domainName(env.GetUuid(), vm.GetName()))
	if err == nil && isActive(st) {
		return nil, withWarnings(warns, errorDiag(label+": export needs the VM off (run lago stop or shutdown first)", nil))
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, withWarnings(warns, errorDiag(label+": cannot read state", err))
	}
	dst := req.GetDstDir()
	if dst == "" {
		dst = "."
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, withWarnings(warns, errorDiag(label+": cannot create the export folder", err))
	}
	srcs, err := diskSources(cfg, env, vm)
	if err != nil {
		return nil, withWarnings(warns, errorDiag(label+": cannot export", err))
	}
	var paths []string
	for i, d := range vm.GetDisks() {
		if d.GetType() == "iso" {
			continue
		}
		out := filepath.Join(dst, exportName(vm, d, srcs[i]))
		var err error
		if cfg.Remote {
			err = exportRemote(ctx, c, cfg, req, d, srcs[i], out)
		} else {
			err = convertDisk(ctx, cfg.QemuImg, d, srcs[i].Path, out, req.GetStandalone(), req.GetCompress())
		}
		if err != nil {
			return nil, withWarnings(warns, errorDiag(fmt.Sprintf("%s: cannot export disk '%s'", label, d.GetName()), err))
		}
		paths = append(paths, out)
	}
	return paths, withWarnings(warns, nil)
}

func exportName(vm *providerv1.VM, d *providerv1.Disk, src diskSource) string {
	if src.Path != "" {
		return filepath.Base(src.Path)
	}
	return vm.GetName() + "_" + d.GetName() + "." + volExt(src.Format)
}

// convertDisk runs qemu-img convert src -> out.
func convertDisk(ctx context.Context, qemuImg string, d *providerv1.Disk, src, out string, standalone, compress bool) error {
	args := []string{"convert", "-O", "qcow2"}
	if compress {
		args = append(args, "-c")
	}
	if d.GetType() == "template" && !standalone {
		tfmt := d.GetTemplateFormat()
		if tfmt == "" {
			info, err := imageInfo(ctx, qemuImg, d.GetTemplatePath())
			if err != nil {
				return err
			}
			tfmt = info.Format
		}
		args = append(args, "-B", d.GetTemplatePath(), "-F", tfmt)
	}
	args = append(args, "--", src, out)
	_, err := runCmd(ctx, qemuImg, args...)
	return err
}

// exportRemote downloads the disk's volume next to out and converts it
// locally. A template overlay is rebased (unsafe, metadata only) onto the
// core's local copy of its template, which has the same content as the
// uploaded template volume.
func exportRemote(ctx context.Context, c Conn, cfg settings, req *providerv1.ExportRequest, d *providerv1.Disk, src diskSource, out string) error {
	tmp := out + ".download"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	defer os.Remove(tmp)
	if err := c.DownloadVolume(src.Pool, src.Volume, f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if d.GetType() == "template" {
		tfmt := d.GetTemplateFormat()
		if tfmt == "" {
			info, err := imageInfo(ctx, cfg.QemuImg, d.GetTemplatePath())
			if err != nil {
				return err
			}
			tfmt = info.Format
		}
		if _, err := runCmd(ctx, cfg.QemuImg, "rebase", "-u", "-f", "qcow2", "-F", tfmt, "-b", d.GetTemplatePath(), tmp); err != nil {
			return err
		}
	}
	return convertDisk(ctx, cfg.QemuImg, d, tmp, out, req.GetStandalone(), req.GetCompress())
}
