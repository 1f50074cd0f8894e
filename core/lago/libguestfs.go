package lago

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
// can exist, be accessible, create VMs and still fail: on some hosts
// (nested virtualisation half switched off) qemu aborts on "failed to set
// MSR" as it creates the vCPU, on others the firmware runs but a Linux
// kernel hangs at once, without a line on its console, and libguestfs'
// appliance with it. So after the ioctls, the host's own kernel must boot
// under KVM to its panic (no root filesystem) within kvmBootWindow. The
// answer is kept for the boot of the host (kvmCacheFile): probing a broken
// host takes those seconds.
func kvmUsable() bool {
	kvmOnce.Do(func() {
		if !probeKVM("/dev/kvm") {
			return
		}
		boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
		id := strings.TrimSpace(string(boot))
		cache := kvmCacheFile()
		if b, err := os.ReadFile(cache); err == nil && id != "" {
			if f := strings.Fields(string(b)); len(f) == 2 && f[0] == id {
				kvmOK = f[1] == "ok"
				return
			}
		}
		kvmOK = probeQEMUKVM()
		if id != "" && cache != "" {
			verdict := "broken"
			if kvmOK {
				verdict = "ok"
			}
			if os.MkdirAll(filepath.Dir(cache), 0o755) == nil {
				_ = os.WriteFile(cache, []byte(id+" "+verdict+"\n"), 0o644)
			}
		}
	})
	return kvmOK
}

// kvmCacheFile is where kvmUsable keeps its answer ("" for nowhere).
func kvmCacheFile() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "lago", "kvm-probe")
}

// kvmBootWindow is how long the host's kernel may take to boot to its
// panic under KVM (well under a second where KVM works); kvmProbeWindow
// how long a paused probe guest must survive where no kernel is found.
const (
	kvmBootWindow  = 8 * time.Second
	kvmProbeWindow = 1500 * time.Millisecond
)

// probeQEMUKVM runs qemu-system-x86_64 -accel kvm: with a kernel from
// /boot it boots it (panic=-1, -no-reboot: qemu exits at the panic) and
// KVM works if qemu exits cleanly in time; without one, a paused guest
// must survive kvmProbeWindow. Without qemu in PATH the ioctls' answer
// stands.
func probeQEMUKVM() bool {
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return true
	}
	args := []string{"-accel", "kvm", "-machine", "pc", "-cpu", "host", "-m", "256",
		"-nodefaults", "-display", "none", "-net", "none", "-monitor", "none", "-serial", "none"}
	kernel := hostKernel()
	boot := kernel != ""
	if boot {
		args = append(args, "-kernel", kernel, "-append", "panic=-1 quiet loglevel=0", "-no-reboot")
	} else {
		args = append(args, "-S")
	}
	ctx, cancel := context.WithTimeout(context.Background(), kvmBootWindow+5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	if err := cmd.Start(); err != nil {
		return false
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	window := kvmProbeWindow
	if boot {
		window = kvmBootWindow
	}
	select {
	case err := <-done:
		return boot && err == nil
	case <-time.After(window):
		cancel()
		<-done
		return !boot
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

// hostKernel returns a kernel of the host this user may read: the running
// one's first, then the newest by version order, else "". An unreadable
// kernel would make qemu fail and the probe say KVM is broken.
func hostKernel() string {
	var cands []string
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		cands = append(cands, "/boot/vmlinuz-"+unix.ByteSliceToString(u.Release[:]))
	}
	globbed, _ := filepath.Glob("/boot/vmlinuz-*")
	slices.SortFunc(globbed, func(a, b string) int { return compareVersions(b, a) })
	cands = append(append(cands, globbed...), "/boot/vmlinuz", "/vmlinuz")
	for _, c := range cands {
		if unix.Access(c, unix.R_OK) == nil {
			return c
		}
	}
	return ""
}

// compareVersions orders strings with their digit runs compared as
// numbers (vmlinuz-6.1.0-100 after vmlinuz-6.1.0-99).
func compareVersions(a, b string) int {
	for a != "" && b != "" {
		ra, rb := leadingDigits(a), leadingDigits(b)
		if ra != "" && rb != "" {
			na, nb := strings.TrimLeft(ra, "0"), strings.TrimLeft(rb, "0")
			if len(na) != len(nb) {
				return len(na) - len(nb)
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[len(ra):], b[len(rb):]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

// leadingDigits returns the run of digits s starts with.
func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}
