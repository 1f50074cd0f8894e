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

// poolDir is the folder of a dir storage pool on its host.
func poolDir(c Conn, pool string) (string, error) {
	x, err := c.PoolXML(pool)
	if err != nil {
		return "", fmt.Errorf("look up storage pool %s: %w", pool, err)
	}
	var p libvirtxml.StoragePool
	if err := p.Unmarshal(x); err != nil {
		return "", fmt.Errorf("parse storage pool %s: %w", pool, err)
	}
	if p.Target == nil || p.Target.Path == "" {
		return "", fmt.Errorf("storage pool %s has no target folder", pool)
	}
	return p.Target.Path, nil
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

// prepareRemote stages the VM's disks locally, exactly as in local mode,
// so the core can build and bootstrap them (virt-customize and virt-sysprep
// work on local files), and uploads each template once per host through a
// libvirt stream into a shared volume named from its key and hash (reused
// when present). StartVM then pushes the staged disks into volumes of their
// own (pushDisks): nothing assumes the hypervisor sees the client's files.
func (p *Provider) prepareRemote(ctx context.Context, c Conn, cfg settings, env *providerv1.EnvRef, vm *providerv1.VM) ([]*providerv1.PreparedDisk, error) {
	if err := ensurePool(c, cfg); err != nil {
		return nil, errorDiag("remote storage pool unavailable", err)
	}
	var out []*providerv1.PreparedDisk
	for _, d := range vm.GetDisks() {
		fail := func(what string, err error) ([]*providerv1.PreparedDisk, error) {
			return nil, errorDiag(fmt.Sprintf("vm '%s' disk '%s': %s", vm.GetName(), d.GetName(), what), err)
		}
		if d.GetType() == "template" {
			if _, err := p.ensureTemplateVolume(ctx, c, cfg, d); err != nil {
				return fail("cannot upload the template to the remote host", err)
			}
		}
		pd, err := prepareLocal(ctx, cfg, d)
		if err != nil {
			return fail("cannot prepare", err)
		}
		out = append(out, pd)
	}
	return out, nil
}

// templateFormat is the template's format, asking qemu-img when the core
// did not say.
func templateFormat(ctx context.Context, cfg settings, d *providerv1.Disk) (string, error) {
	if d.GetTemplateFormat() != "" {
		return d.GetTemplateFormat(), nil
	}
	info, err := imageInfo(ctx, cfg.QemuImg, d.GetTemplatePath())
	if err != nil {
		return "", err
	}
	return info.Format, nil
}

// ensureTemplateVolume uploads the template of d into its shared volume
// unless it is there already, and returns the volume's path on the host.
func (p *Provider) ensureTemplateVolume(ctx context.Context, c Conn, cfg settings, d *providerv1.Disk) (string, error) {
	tfmt, err := templateFormat(ctx, cfg, d)
	if err != nil {
		return "", err
	}
	tname := templateVolumeName(d.GetTemplateKey(), d.GetTemplateHash(), tfmt)
	lock := p.volumeLock(tname)
	lock.Lock()
	defer lock.Unlock()
	_, err = c.VolumeXML(cfg.Pool, tname)
	if errors.Is(err, ErrNotFound) {
		p.log.Info("uploading template", "template", d.GetTemplateKey(), "volume", cfg.Pool+"/"+tname)
		err = uploadFile(c, cfg.Pool, tname, d.GetTemplatePath())
	}
	if err != nil {
		return "", err
	}
	return volumePath(c, cfg.Pool, tname)
}

// pushDisks creates the volume of every disk of vm that has none yet from
// its staged local file. A template overlay is first rebased (metadata
// only, on a temporary copy) onto the template volume's path on the host,
// so the uploaded overlay finds its backing file there. Volumes that exist
// are authoritative and never overwritten.
func (p *Provider) pushDisks(ctx context.Context, c Conn, cfg settings, env *providerv1.EnvRef, vm *providerv1.VM) error {
	srcs, err := diskSources(settings{}, env, vm) // the staged local files
	if err != nil {
		return err
	}
	for i, d := range vm.GetDisks() {
		name := diskVolumeName(env.GetUuid(), vm.GetName(), d.GetName(), diskFormat(d))
		if _, err := c.VolumeXML(cfg.Pool, name); err == nil {
			continue
		} else if !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("look up volume %s/%s: %w", cfg.Pool, name, err)
		}
		local := srcs[i].Path
		if d.GetType() != "template" {
			if err := uploadFile(c, cfg.Pool, name, local); err != nil {
				return fmt.Errorf("disk '%s': %w", d.GetName(), err)
			}
			continue
		}
		tpath, err := p.ensureTemplateVolume(ctx, c, cfg, d)
		if err != nil {
			return fmt.Errorf("disk '%s': template volume: %w", d.GetName(), err)
		}
		tfmt, err := templateFormat(ctx, cfg, d)
		if err != nil {
			return err
		}
		tmp := filepath.Join(filepath.Dir(local), "."+filepath.Base(local)+".upload")
		if _, err := runCmd(ctx, "cp", "--sparse=always", "--", local, tmp); err != nil {
			return fmt.Errorf("disk '%s': %w", d.GetName(), err)
		}
		_, err = runCmd(ctx, cfg.QemuImg, "rebase", "-u", "-f", "qcow2", "-F", tfmt, "-b", tpath, tmp)
		if err == nil {
			err = uploadFile(c, cfg.Pool, name, tmp)
		}
		os.Remove(tmp)
		if err != nil {
			return fmt.Errorf("disk '%s': %w", d.GetName(), err)
		}
	}
	return nil
}
