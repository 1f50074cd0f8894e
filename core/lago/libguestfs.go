package lago

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lago-go/lago/core/config"
)

// libguestfsSettings are the [init] libguestfs_* settings as the
// LIBGUESTFS_* environment variables that libguestfs itself reads, so that
// guestfish, virt-sysprep and the virt-customize builder plugin all run
// the appliance the same way.
type libguestfsSettings struct {
	Backend string
	// ForceTCG is yes, no or auto (TCG when this host's KVM is unusable,
	// found out on first use: probing takes up to 1.5 s).
	ForceTCG string
	MemSize  int
	// fromConfig marks the settings given in a file, a LAGO__ variable or
	// a flag; the others give way to LIBGUESTFS_* variables already set.
	fromConfig map[string]bool
}

// libguestfsFromConfig reads the settings.
func libguestfsFromConfig(c *config.Config) libguestfsSettings {
	s := libguestfsSettings{Backend: "direct", fromConfig: map[string]bool{}}
	get := func(key string) (string, bool) {
		v, ok := c.Get(config.SectionInit, key)
		if !ok {
			return "", false
		}
		if v.Source.Kind != config.FromDefault {
			s.fromConfig[key] = true
		}
		return v.Value, true
	}
	if v, ok := get("libguestfs_backend"); ok && v != "" {
		s.Backend = v
	}
	s.ForceTCG, _ = get("libguestfs_force_tcg")
	if v, ok := get("libguestfs_memsize"); ok {
		s.MemSize, _ = strconv.Atoi(v) // Load has vetted it
	}
	return s
}

// Env returns the variables to add to a libguestfs tool's environment: a
// setting from the configuration always, a default one only when the
// variable is not set already (a user who exported LIBGUESTFS_BACKEND
// means it).
func (s libguestfsSettings) Env() []string {
	var env []string
	add := func(key, name, value string) {
		if value == "" {
			return
		}
		if !s.fromConfig[key] && os.Getenv(name) != "" {
			return
		}
		env = append(env, name+"="+value)
	}
	add("libguestfs_backend", "LIBGUESTFS_BACKEND", s.Backend)
	if s.ForceTCG == "yes" || s.ForceTCG != "no" && !kvmUsable() {
		add("libguestfs_force_tcg", "LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
	}
	if s.MemSize > 0 {
		add("libguestfs_memsize", "LIBGUESTFS_MEMSIZE", strconv.Itoa(s.MemSize))
	}
	return env
}

// Config is the settings as the virt-customize builder's component
// configuration (its libguestfs_* keys).
func (s libguestfsSettings) Config() map[string]string {
	m := map[string]string{}
	for _, kv := range s.Env() {
		for name, key := range map[string]string{
			"LIBGUESTFS_BACKEND=":          "libguestfs_backend",
			"LIBGUESTFS_BACKEND_SETTINGS=": "libguestfs_backend_settings",
			"LIBGUESTFS_MEMSIZE=":          "libguestfs_memsize",
		} {
			if len(kv) > len(name) && kv[:len(name)] == name {
				m[key] = kv[len(name):]
			}
		}
	}
	return m
}

var (
	kvmOnce sync.Once
	kvmOK   bool
)

// kvmUsable reports whether qemu can run a guest with KVM here. /dev/kvm
// can exist, be accessible, create VMs and still fail (nested
// virtualisation half switched off: qemu aborts on "failed to set MSR"
// as it creates the vCPU), and libguestfs' qemu then dies instead of
// falling back to TCG. So after the ioctls, a paused qemu with -accel kvm
// must survive a moment, as the libvirt provider's domain_type=auto
// probe does.
func kvmUsable() bool {
	kvmOnce.Do(func() { kvmOK = probeKVM("/dev/kvm") && probeQEMUKVM() })
	return kvmOK
}

// kvmProbeWindow is how long the paused probe guest must survive.
const kvmProbeWindow = 1500 * time.Millisecond

// probeQEMUKVM starts qemu-system-x86_64 -accel kvm paused, without
// devices; an exit within kvmProbeWindow means KVM does not work. Without
// qemu in PATH the ioctls' answer stands.
func probeQEMUKVM() bool {
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-accel", "kvm", "-machine", "pc", "-cpu", "host",
		"-nodefaults", "-display", "none", "-net", "none", "-monitor", "none", "-serial", "none", "-S")
	if err := cmd.Start(); err != nil {
		return false
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return false
	case <-time.After(kvmProbeWindow):
		cancel()
		<-done
		return true
	}
}

// KVM ioctls (linux/kvm.h).
const (
	kvmGetAPIVersion = 0xAE00
	kvmCreateVM      = 0xAE01
	kvmAPIVersion    = 12
)

func probeKVM(dev string) bool {
	fd, err := unix.Open(dev, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	v, err := unix.IoctlRetInt(fd, kvmGetAPIVersion)
	if err != nil || v != kvmAPIVersion {
		return false
	}
	vm, err := unix.IoctlRetInt(fd, kvmCreateVM)
	if err != nil {
		return false
	}
	unix.Close(vm)
	return true
}
