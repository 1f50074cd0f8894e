package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"libvirt.org/go/libvirtxml"
)

// PrepareDisks creates the VM's disks. Locally: template disks become qcow2
// overlays with an explicit backing format (current qemu-img refuses
// overlays without -F), empty disks new images of their size, file disks
// are used in place or copied (make_a_copy), isos are used as they are.
// Remotely every disk is a volume in the storage pool (see prepareRemote).
// A disk that already exists is kept, so a retried init does not wipe it.
func (p *Provider) PrepareDisks(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) ([]*providerv1.PreparedDisk, error) {
	p.mu.Lock()
	cfg := p.cfg
	if !p.configured {
		cfg, _ = parseSettings(nil)
	}
	p.mu.Unlock()
	if cfg.Remote {
		c, cfg, _, warns, err := p.connect(ctx)
		if err != nil {
			return nil, err
		}
		out, err := p.prepareRemote(ctx, c, cfg, env, vm)
		return out, withWarnings(warns, err)
	}
	var out []*providerv1.PreparedDisk
	for _, d := range vm.GetDisks() {
		pd, err := prepareLocal(ctx, cfg, d)
		if err != nil {
			return nil, errorDiag(fmt.Sprintf("vm '%s' disk '%s': cannot prepare", vm.GetName(), d.GetName()), err)
		}
		out = append(out, pd)
	}
	return out, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func prepareLocal(ctx context.Context, cfg settings, d *providerv1.Disk) (*providerv1.PreparedDisk, error) {
	pd := &providerv1.PreparedDisk{Name: d.GetName(), Format: diskFormat(d), Path: d.GetPath()}
	mkdir := func() error {
		if d.GetPath() == "" {
			return errors.New("no path for the disk")
		}
		return os.MkdirAll(filepath.Dir(d.GetPath()), 0o755)
	}
	switch d.GetType() {
	case "template":
		if err := mkdir(); err != nil {
			return nil, err
		}
		if exists(d.GetPath()) {
			return pd, nil
		}
		tfmt := d.GetTemplateFormat()
		if tfmt == "" {
			info, err := imageInfo(ctx, cfg.QemuImg, d.GetTemplatePath())
			if err != nil {
				return nil, err
			}
			tfmt = info.Format
		}
		args := []string{"create", "-f", "qcow2", "-F", tfmt, "-b", d.GetTemplatePath(), d.GetPath()}
		if d.GetSizeBytes() > 0 {
			args = append(args, strconv.FormatInt(d.GetSizeBytes(), 10))
		}
		if _, err := runCmd(ctx, cfg.QemuImg, args...); err != nil {
			return nil, err
		}
	case "empty":
		if err := mkdir(); err != nil {
			return nil, err
		}
		if d.GetSizeBytes() <= 0 {
			return nil, errors.New("empty disk needs a size")
		}
		if exists(d.GetPath()) {
			return pd, nil
		}
		if _, err := runCmd(ctx, cfg.QemuImg, "create", "-f", pd.Format, d.GetPath(), strconv.FormatInt(d.GetSizeBytes(), 10)); err != nil {
			return nil, err
		}
	case "file":
		if d.GetSourcePath() == "" {
			return nil, errors.New("file disk has no source path")
		}
		if !d.GetMakeACopy() {
			pd.Path = d.GetSourcePath()
			return pd, nil
		}
		if err := mkdir(); err != nil {
			return nil, err
		}
		if exists(d.GetPath()) {
			return pd, nil
		}
		if _, err := runCmd(ctx, "cp", "--sparse=always", "--", d.GetSourcePath(), d.GetPath()); err != nil {
			return nil, err
		}
	case "iso":
		if d.GetSourcePath() != "" {
			pd.Path = d.GetSourcePath()
		}
		if pd.Path == "" {
			return nil, errors.New("iso disk has no source path")
		}
	default:
		return nil, fmt.Errorf("unknown disk type %q", d.GetType())
	}
	return pd, nil
}

// imgInfo is the part of `qemu-img info --output=json` we read.
type imgInfo struct {
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
}

func imageInfo(ctx context.Context, qemuImg, path string) (imgInfo, error) {
	out, err := runCmd(ctx, qemuImg, "info", "--output=json", "--", path)
	if err != nil {
		return imgInfo{}, err
	}
	var info imgInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return imgInfo{}, fmt.Errorf("parse qemu-img info of %s: %w", path, err)
	}
	return info, nil
}

// ensurePool makes sure the storage pool exists and runs, creating a dir
// pool at storage_pool_path when it is missing.
func ensurePool(c Conn, cfg settings) error {
	_, err := c.PoolXML(cfg.Pool)
	if errors.Is(err, ErrNotFound) {
		x, err := (&libvirtxml.StoragePool{Type: "dir", Name: cfg.Pool, Target: &libvirtxml.StoragePoolTarget{Path: cfg.PoolPath}}).Marshal()
		if err != nil {
			return fmt.Errorf("marshal storage pool: %w", err)
		}
		if err := c.DefinePool(x); err != nil {
			return fmt.Errorf("create storage pool %s at %s: %w", cfg.Pool, cfg.PoolPath, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up storage pool %s: %w", cfg.Pool, err)
	}
	if err := c.StartPool(cfg.Pool); err != nil {
		return fmt.Errorf("start storage pool %s: %w", cfg.Pool, err)
	}
	return nil
}

// volumeLock serialises work on one shared volume name in this process,
// so VMs prepared in parallel upload a template once.
func (p *Provider) volumeLock(name string) *sync.Mutex {
	p.volMu.Lock()
	defer p.volMu.Unlock()
	if p.volLock == nil {
		p.volLock = map[string]*sync.Mutex{}
	}
	m, ok := p.volLock[name]
	if !ok {
		m = &sync.Mutex{}
		p.volLock[name] = m
	}
	return m
}

func volumeXML(name string, capacity int64, format string, backing *libvirtxml.StorageVolumeBackingStore) (string, error) {
	v := &libvirtxml.StorageVolume{
		Name:         name,
		Capacity:     &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: uint64(capacity)},
		Allocation:   &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: 0},
		Target:       &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: format}},
		BackingStore: backing,
	}
	return v.Marshal()
}

// uploadFile creates volume name holding the bytes of the local file path.
// The volume is created raw (libvirt then just allocates a file) and the
// image is streamed in as it is; the dir pool probes the real format on
// refresh, and we always name the format explicitly where it matters.
func uploadFile(c Conn, pool, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	x, err := volumeXML(name, st.Size(), "raw", nil)
	if err != nil {
		return fmt.Errorf("marshal volume %s: %w", name, err)
	}
	if err := c.CreateVolume(pool, x); err != nil {
		return fmt.Errorf("create volume %s/%s: %w", pool, name, err)
	}
	if err := c.UploadVolume(pool, name, f, st.Size()); err != nil {
		// Never leave a half-uploaded volume that later runs would reuse.
		_ = c.DeleteVolume(pool, name)
		return fmt.Errorf("upload %s to volume %s/%s: %w", path, pool, name, err)
	}
	return nil
}

func volumePath(c Conn, pool, name string) (string, error) {
	x, err := c.VolumeXML(pool, name)
	if err != nil {
		return "", err
	}
	var v libvirtxml.StorageVolume
	if err := v.Unmarshal(x); err != nil {
		return "", fmt.Errorf("parse volume %s/%s: %w", pool, name, err)
	}
	if v.Target == nil || v.Target.Path == "" {
		return "", fmt.Errorf("volume %s/%s has no path", pool, name)
	}
	return v.Target.Path, nil
}

// prepareRemote makes every disk a volume in the storage pool, assuming
// nothing about the hypervisor's filesystem:
//   - template: the template is uploaded once per host into a shared volume
//     named from its key and hash (reused when present), and the disk is a
//     qcow2 overlay volume whose <backingStore> is that volume;
//   - empty: a new volume of the disk's size;
//   - file and iso: the image is uploaded into a volume of its own.
func (p *Provider) prepareRemote(ctx context.Context, c Conn, cfg settings, env *providerv1.EnvRef, vm *providerv1.VM) ([]*providerv1.PreparedDisk, error) {
	if err := ensurePool(c, cfg); err != nil {
		return nil, errorDiag("remote storage pool unavailable", err)
	}
	var out []*providerv1.PreparedDisk
	for _, d := range vm.GetDisks() {
		f := diskFormat(d)
		name := diskVolumeName(env.GetUuid(), vm.GetName(), d.GetName(), f)
		fail := func(err error) ([]*providerv1.PreparedDisk, error) {
			return nil, errorDiag(fmt.Sprintf("vm '%s' disk '%s': cannot prepare volume %s/%s", vm.GetName(), d.GetName(), cfg.Pool, name), err)
		}
		pd := &providerv1.PreparedDisk{Name: d.GetName(), Format: f, Path: cfg.Pool + "/" + name}
		if _, err := c.VolumeXML(cfg.Pool, name); err == nil {
			out = append(out, pd)
			continue
		} else if !errors.Is(err, ErrNotFound) {
			return fail(err)
		}
		switch d.GetType() {
		case "template":
			info, err := imageInfo(ctx, cfg.QemuImg, d.GetTemplatePath())
			if err != nil {
				return fail(err)
			}
			tfmt := d.GetTemplateFormat()
			if tfmt == "" {
				tfmt = info.Format
			}
			tname := templateVolumeName(d.GetTemplateKey(), d.GetTemplateHash(), tfmt)
			lock := p.volumeLock(tname)
			lock.Lock()
			_, err = c.VolumeXML(cfg.Pool, tname)
			if errors.Is(err, ErrNotFound) {
				p.log.Info("uploading template", "template", d.GetTemplateKey(), "volume", cfg.Pool+"/"+tname)
				err = uploadFile(c, cfg.Pool, tname, d.GetTemplatePath())
			}
			lock.Unlock()
			if err != nil {
				return fail(err)
			}
			tpath, err := volumePath(c, cfg.Pool, tname)
			if err != nil {
				return fail(err)
			}
			size := info.VirtualSize
			if d.GetSizeBytes() > size {
				size = d.GetSizeBytes()
			}
			x, err := volumeXML(name, size, "qcow2", &libvirtxml.StorageVolumeBackingStore{
				Path: tpath, Format: &libvirtxml.StorageVolumeTargetFormat{Type: tfmt}})
			if err != nil {
				return fail(err)
			}
			if err := c.CreateVolume(cfg.Pool, x); err != nil {
				return fail(err)
			}
		case "empty":
			if d.GetSizeBytes() <= 0 {
				return fail(errors.New("empty disk needs a size"))
			}
			x, err := volumeXML(name, d.GetSizeBytes(), f, nil)
			if err != nil {
				return fail(err)
			}
			if err := c.CreateVolume(cfg.Pool, x); err != nil {
				return fail(err)
			}
		case "file", "iso":
			if d.GetSourcePath() == "" {
				return fail(errors.New("no source path"))
			}
			if err := uploadFile(c, cfg.Pool, name, d.GetSourcePath()); err != nil {
				return fail(err)
			}
		default:
			return fail(fmt.Errorf("unknown disk type %q", d.GetType()))
		}
		out = append(out, pd)
	}
	return out, nil
}
