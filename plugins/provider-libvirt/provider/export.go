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
// qemu-img convert, which writes only allocated clusters (sparse, compact).
// standalone flattens template overlays into one qcow2 image; otherwise a
// template disk stays a one-layer qcow2 overlay whose backing file is
// "./" + the file name of template_path: relative to the exported image,
// so the core puts the template beside it and the folder can be moved
// (the "./" keeps qemu from reading "repo:name:version" as a protocol).
// A file or empty disk keeps its format. compress adds qcow2's own -c;
// the core never asks for it (it xz-compresses the results itself). The
// VM must be off. In remote mode the volumes are first downloaded through
// libvirt streams and the overlay is rebased onto the local template copy.
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

// exportBacking is the backing file name a layered export gives an image
// of a template disk whose template is templatePath.
func exportBacking(templatePath string) string { return "./" + filepath.Base(templatePath) }

// convertDisk runs qemu-img convert src -> out: a template disk to qcow2
// (flattened when standalone, else an overlay rebased onto
// exportBacking), other disks to their own format.
func convertDisk(ctx context.Context, qemuImg string, d *providerv1.Disk, src, out string, standalone, compress bool) error {
	layered := d.GetType() == "template" && !standalone
	ofmt := "qcow2"
	if d.GetType() != "template" && d.GetFormat() == "raw" {
		ofmt = "raw"
	}
	args := []string{"convert", "-O", ofmt}
	if compress && ofmt == "qcow2" {
		args = append(args, "-c")
	}
	var tfmt string
	if layered {
		tfmt = d.GetTemplateFormat()
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
	if _, err := runCmd(ctx, qemuImg, args...); err != nil {
		return err
	}
	if !layered {
		return nil
	}
	// Unsafe: only the header changes; the template beside the image is
	// the same file the core copies there.
	_, err := runCmd(ctx, qemuImg, "rebase", "-u", "-f", "qcow2", "-F", tfmt, "-b", exportBacking(d.GetTemplatePath()), "--", out)
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
