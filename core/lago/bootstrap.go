package lago

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/hostcheck"
	"github.com/lago-go/lago/core/lago/internal/shacrypt"
)

// guestfishBootstrap implements env.Bootstrapper with one guestfish
// process, and so one libguestfs appliance, for every disk of an init.
//
// Why this and not virt-sysprep (the original's way, still selectable with
// [init] bootstrap_tool = virt-sysprep): on a host without KVM the
// appliance's start and guest inspection are ~40 s of the ~60 s a
// virt-sysprep run takes, and virt-sysprep starts one appliance per disk
// (three disks on two cores: three appliances competing for them). Adding
// every disk to one appliance pays that start once, and doing only what a
// clone needs (hostname, root password, the prefix's key, machine-id, ssh
// host keys, SELinux relabel) instead of virt-sysprep's ~35 default
// operations saves the rest.
//
// Why guestfish and not the Go bindings (Debian's golang-guestfs-dev):
// both drive the same appliance through the same library, so the appliance
// start, which dominates, is the same, and so is a command's round trip:
// measured under TCG, ~7 ms a call both ways (the appliance's own time),
// launch 9-10 s both ways (docs/BOOTSTRAP.md). The bindings would make the
// engine a cgo binary linked against libguestfs, which every host running
// lago would then need even with bootstrap off, and a crash in the library
// would take the engine down. guestfish gets its commands on stdin, never
// through a shell, and every argument is quoted (see fishQuote), so
// nothing from the init file or the guest becomes a command.
type guestfishBootstrap struct {
	// Binary defaults to "guestfish".
	Binary string
	// Env is added to guestfish's environment (LIBGUESTFS_BACKEND...),
	// then what EnvFunc returns (may be nil).
	Env     []string
	EnvFunc func() []string
	// MemSize is the appliance's memory in MiB (0: libguestfs' default).
	MemSize int
	// start opens a session; nil runs Binary (tests put a fake here).
	start func(ctx context.Context) (fish, error)
}

var _ env.Bootstrapper = (*guestfishBootstrap)(nil)

// fish is one guestfish session: commands run one at a time, in order.
type fish interface {
	// Do runs one command (its name, then its arguments) and returns
	// its output lines. After an error the session is gone: guestfish
	// exits on the first failing command of a script.
	Do(ctx context.Context, args ...string) ([]string, error)
	// Close ends the session and waits for guestfish to exit.
	Close() error
}

// Size caps for guest files read into lago: nothing from a guest is
// trusted, and these are far above any real file of the kind.
const (
	maxAccountsFile = 8 << 20 // /etc/passwd, /etc/shadow
	maxSmallFile    = 1 << 20 // /etc/hosts, authorized_keys
)

// Bootstrap steps, as progress and errors name them.
const (
	stepAppliance    = "start the libguestfs appliance"
	stepInspect      = "inspect"
	stepMount        = "mount"
	stepHostname     = "hostname"
	stepRootPassword = "root-password"
	stepSSHKey       = "ssh-inject"
	stepMachineID    = "machine-id"
	stepHostKeys     = "ssh-hostkeys"
	stepSELinux      = "selinux-relabel"
	stepFinish       = "write back"
)

// bootstrapJob is one request with what BootstrapAll prepared for it.
type bootstrapJob struct {
	req       env.BootstrapRequest
	pubKey    string
	hash      string
	machineID string
	hostKeys  *hostKeySet
	// took is the time spent on this VM's own steps.
	took time.Duration
}

// maxDisksPerAppliance bounds the disks one appliance prepares (see
// BootstrapAll); a variable for tests.
var maxDisksPerAppliance = 4

// BootstrapAll implements env.Bootstrapper.
func (g *guestfishBootstrap) BootstrapAll(ctx context.Context, reqs []env.BootstrapRequest, progress func(env.BootstrapEvent)) error {
	if len(reqs) == 0 {
		return nil
	}
	if progress == nil {
		progress = func(env.BootstrapEvent) {}
	}
	// Memory grows with the disks of one appliance (qemu's TCG code
	// cache mostly: the largest process took 546 MiB with 1 disk, 736
	// with 3, 987 with 6, measured): more disks than maxDisksPerAppliance
	// go in appliances one after another, so the peak stays under 1 GiB
	// whatever the number of VMs, at one more appliance start (~9 s) per
	// batch.
	if len(reqs) > maxDisksPerAppliance {
		for i := 0; i < len(reqs); i += maxDisksPerAppliance {
			if err := g.BootstrapAll(ctx, reqs[i:min(i+maxDisksPerAppliance, len(reqs))], progress); err != nil {
				return err
			}
		}
		return nil
	}
	// The scratch folder holds the shadow file and private host keys on
	// their way to the guest: inside the prefix (beside its key), so a
	// bootstrap killed before its cleanup leaves them where destroy
	// removes them, not in /tmp.
	scratch := ""
	if k := reqs[0].PublicKeyPath; k != "" {
		scratch = filepath.Dir(k)
	}
	tmp, err := os.MkdirTemp(scratch, ".bootstrap-")
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	defer os.RemoveAll(tmp)
	jobs := make([]*bootstrapJob, len(reqs))
	for i, r := range reqs {
		j := &bootstrapJob{req: r, hostKeys: newHostKeySet(r.Hostname)}
		if r.PublicKeyPath != "" {
			b, err := os.ReadFile(r.PublicKeyPath)
			if err != nil {
				return &env.BootstrapError{VM: r.VM, Step: stepSSHKey, Err: fmt.Errorf("read the prefix's public key: %w", err)}
			}
			j.pubKey = strings.TrimSpace(string(b))
			if j.pubKey == "" || strings.ContainsAny(j.pubKey, "\n\r") {
				return &env.BootstrapError{VM: r.VM, Step: stepSSHKey, Err: fmt.Errorf("%s is not one public key line", r.PublicKeyPath)}
			}
		}
		if r.RootPassword != "" {
			if j.hash, err = shacrypt.Hash(r.RootPassword); err != nil {
				return &env.BootstrapError{VM: r.VM, Step: stepRootPassword, Err: err}
			}
		}
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return fmt.Errorf("bootstrap: machine-id: %w", err)
		}
		j.machineID = hex.EncodeToString(id)
		jobs[i] = j
	}
	// Host keys are made while the appliance starts (RSA takes a while);
	// a guest that turns out to have none of a type never gets it.
	for _, j := range jobs {
		j.hostKeys.pregenerate()
	}
	retry, err := g.session(ctx, tmp, jobs, progress)
	if err != nil {
		return err
	}
	// A disk whose guest could not be told apart from the others' (its
	// filesystems on LVM or RAID, or its root not found among several
	// identical clones) gets an appliance of its own, where everything
	// found belongs to it.
	for _, j := range retry {
		progress(env.BootstrapEvent{VM: j.req.VM, Step: "again in an appliance of its own: its filesystems cannot be told apart from the other disks'"})
		again, err := g.session(ctx, tmp, []*bootstrapJob{j}, progress)
		if err != nil {
			return err
		}
		if len(again) > 0 {
			return &env.BootstrapError{VM: j.req.VM, Step: stepInspect, Err: errors.New("no operating system found on the disk (libguestfs inspection found no root filesystem)")}
		}
	}
	return nil
}

// session runs one appliance over jobs' disks and prepares each one whose
// root filesystem it finds; it returns the jobs it could not place (only
// when there are several).
func (g *guestfishBootstrap) session(ctx context.Context, tmp string, jobs []*bootstrapJob, progress func(env.BootstrapEvent)) (retry []*bootstrapJob, err error) {
	start := g.start
	if start == nil {
		envv := g.Env
		if g.EnvFunc != nil {
			envv = append(slices.Clip(envv), g.EnvFunc()...)
		}
		start = func(ctx context.Context) (fish, error) { return startGuestfish(ctx, g.Binary, envv) }
	}
	began := time.Now()
	progress(env.BootstrapEvent{Step: fmt.Sprintf("%s for %d disk(s)", stepAppliance, len(jobs))})
	f, err := start(ctx)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: start guestfish: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("bootstrap: %s: %w", stepFinish, cerr)
		}
	}()
	shared := func(err error) error {
		return fmt.Errorf("bootstrap: %s: %w", stepAppliance, err)
	}
	if g.MemSize > 0 {
		if _, err := f.Do(ctx, "set-memsize", strconv.Itoa(g.MemSize)); err != nil {
			return nil, shared(err)
		}
	}
	for _, j := range jobs {
		args := []string{"add-drive", j.req.DiskPath}
		if j.req.DiskFormat != "" {
			args = append(args, "format:"+j.req.DiskFormat)
		}
		if _, err := f.Do(ctx, append(args, "readonly:false")...); err != nil {
			return nil, &env.BootstrapError{VM: j.req.VM, Step: stepAppliance, Err: fmt.Errorf("add disk %s: %w", j.req.DiskPath, err)}
		}
	}
	if _, err := f.Do(ctx, "run"); err != nil {
		// The appliance boots a host kernel: one this user may not read
		// is the usual reason on a shared host (Ubuntu's are 0600).
		if k := hostcheck.KernelReadable(); !k.OK {
			err = fmt.Errorf("%w (%s; fix: %s)", err, k.Detail, k.Fix)
		}
		return nil, shared(err)
	}
	progress(env.BootstrapEvent{Step: stepAppliance, Done: true, Took: time.Since(began)})

	// Find each disk's root filesystem: first by looking (mount each
	// partition read-only, is there an /etc/passwd?), which takes a
	// second a disk; only the disks that leaves unknown (LVM, RAID, btrfs
	// subvolumes) go through libguestfs' inspection, which under TCG takes
	// ~10 s a disk, most of it probing every device.
	parts, err := f.Do(ctx, "list-partitions")
	if err != nil {
		return nil, shared(err)
	}
	devs, err := f.Do(ctx, "list-devices")
	if err != nil {
		return nil, shared(err)
	}
	roots := make([][]string, len(jobs))
	inspected := make([]bool, len(jobs))
	var unknown []int
	for i, j := range jobs {
		jbegan := time.Now()
		progress(env.BootstrapEvent{VM: j.req.VM, Step: stepInspect})
		r, err := findRoot(ctx, f, i, parts, devs)
		if err != nil {
			return nil, &env.BootstrapError{VM: j.req.VM, Step: stepInspect, Err: err}
		}
		j.took += time.Since(jbegan)
		if r == "" {
			unknown = append(unknown, i)
			continue
		}
		roots[i] = []string{r}
	}
	if len(unknown) > 0 {
		progress(env.BootstrapEvent{Step: "inspect the disks with libguestfs (no root filesystem found by looking)"})
		found, err := f.Do(ctx, "inspect-os")
		if err != nil {
			return nil, shared(fmt.Errorf("inspect the disks: %w", err))
		}
		for _, r := range found {
			r = strings.TrimSpace(r)
			if r == "" {
				continue
			}
			i := 0
			if len(jobs) > 1 {
				var ok bool
				if i, ok = driveIndex(r); !ok || i >= len(jobs) {
					continue // on LVM, RAID...: its disk is unknown here
				}
			}
			if roots[i] == nil || inspected[i] {
				roots[i] = append(roots[i], r)
				inspected[i] = true
			}
		}
	}
	for i, j := range jobs {
		if len(roots[i]) == 0 {
			if len(jobs) > 1 {
				retry = append(retry, j)
				continue
			}
			return nil, &env.BootstrapError{VM: j.req.VM, Step: stepInspect, Err: errors.New("no operating system found on the disk (no filesystem with an /etc/passwd, and libguestfs inspection found no root filesystem)")}
		}
		jbegan := time.Now()
		for _, root := range roots[i] {
			p := &guestPlan{f: f, tmp: tmp, job: j, root: root, drive: i, single: len(jobs) == 1, inspected: inspected[i], parts: parts, progress: progress}
			if err := p.run(ctx); err != nil {
				return nil, err
			}
		}
		j.took += time.Since(jbegan)
		progress(env.BootstrapEvent{VM: j.req.VM, Done: true, Took: j.took})
	}
	// guestfish syncs and stops the appliance when its input ends (Close);
	// a write that does not reach the disk fails there.
	return retry, nil
}

// guestPlan prepares one root filesystem of one disk.
type guestPlan struct {
	f      fish
	tmp    string
	job    *bootstrapJob
	root   string
	drive  int
	single bool
	// inspected says the root came from libguestfs' inspection, which
	// also knows its other mount points; else /etc/fstab tells them.
	inspected bool
	parts     []string
	progress  func(env.BootstrapEvent)
	step      string
	files     int
}

func (p *guestPlan) fail(err error) error {
	if strings.Contains(err.Error(), "Read-only file system") {
		err = fmt.Errorf("the filesystem is read-only: %w", err)
	}
	return &env.BootstrapError{VM: p.job.req.VM, Step: p.step, Err: err}
}

func (p *guestPlan) begin(step string) {
	p.step = step
	p.progress(env.BootstrapEvent{VM: p.job.req.VM, Step: step})
}

func (p *guestPlan) run(ctx context.Context) error {
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{stepMount, p.mount},
		{stepHostname, p.hostname},
		{stepRootPassword, p.rootPassword},
		{stepSSHKey, p.sshInject},
		{stepMachineID, p.machineID},
		{stepHostKeys, p.hostKeys},
		{stepSELinux, p.selinux},
	}
	for _, s := range steps {
		if s.name == stepRootPassword && p.job.hash == "" || s.name == stepSSHKey && p.job.pubKey == "" {
			continue
		}
		p.begin(s.name)
		if err := s.fn(ctx); err != nil {
			return p.fail(err)
		}
	}
	p.step = stepFinish
	if _, err := p.f.Do(ctx, "umount-all"); err != nil {
		return p.fail(err)
	}
	return nil
}

// findRoot returns the root filesystem of drive (the partition, or the
// whole device when it has none, holding /etc/passwd), or "" when none
// is found by looking. Probes are read-only and may fail (a swap
// partition, an LVM volume): guestfish goes on after a "-" command.
func findRoot(ctx context.Context, f fish, drive int, parts, devs []string) (string, error) {
	var cands []string
	for _, p := range parts {
		if i, ok := driveIndex(p); ok && i == drive {
			cands = append(cands, p)
		}
	}
	if len(cands) == 0 {
		for _, d := range devs {
			if i, ok := driveIndex(d); ok && i == drive {
				cands = append(cands, d)
			}
		}
	}
	for _, c := range cands {
		if _, err := f.Do(ctx, "-mount-ro", c, "/"); err != nil {
			return "", err
		}
		out, err := f.Do(ctx, "-is-file", "/etc/passwd")
		if err != nil {
			return "", err
		}
		if _, err := f.Do(ctx, "umount-all"); err != nil {
			return "", err
		}
		if len(out) == 1 && out[0] == "true" {
			return c, nil
		}
	}
	return "", nil
}

// mount mounts the root filesystem at / and those of the guest's other
// mount points that hold files bootstrap writes (/root, the ssh user's
// home, /var/lib/dbus) and are on the same disk. A clone's fstab names its
// filesystems by UUID or label, which every clone of a template shares:
// another disk's filesystem must never be taken for this one's, so they
// are looked for among this disk's partitions only.
func (p *guestPlan) mount(ctx context.Context) error {
	if _, err := p.f.Do(ctx, "mount", p.root, "/"); err != nil {
		return fmt.Errorf("mount the root filesystem %s: %w", p.root, err)
	}
	var mps []mountPoint
	var err error
	if p.inspected {
		mps, err = p.inspectedMounts(ctx)
	} else {
		mps, err = p.fstabMounts(ctx)
	}
	if err != nil {
		return err
	}
	sort.Slice(mps, func(a, b int) bool { return len(mps[a].dir) < len(mps[b].dir) })
	for _, m := range mps {
		if ok, err := p.is(ctx, "is-dir", m.dir); err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		if _, err := p.f.Do(ctx, "mount", m.dev, m.dir); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.dev, m.dir, err)
		}
	}
	return nil
}

type mountPoint struct{ dir, dev string }

// inspectedMounts are inspection's mount points on this drive.
func (p *guestPlan) inspectedMounts(ctx context.Context) ([]mountPoint, error) {
	lines, err := p.f.Do(ctx, "inspect-get-mountpoints", p.root)
	if err != nil {
		return nil, err
	}
	var mps []mountPoint
	for _, l := range lines {
		dir, dev, ok := cutLast(l, ": ")
		if !ok || dir == "/" || !path.IsAbs(dir) || path.Clean(dir) != dir {
			continue
		}
		if i, ok := driveIndex(dev); ok && i != p.drive {
			continue
		} else if !ok && !p.single {
			continue
		}
		mps = append(mps, mountPoint{dir, dev})
	}
	return mps, nil
}

// needsMount reports whether a mount point holds a file bootstrap writes.
func (p *guestPlan) needsMount(dir string, homes []string) bool {
	for _, t := range append([]string{"/root", "/var/lib/dbus"}, homes...) {
		if t == dir || strings.HasPrefix(t, dir+"/") {
			return true
		}
	}
	return false
}

// fstabMounts resolves the guest's /etc/fstab entries bootstrap needs to
// this disk's partitions.
func (p *guestPlan) fstabMounts(ctx context.Context) ([]mountPoint, error) {
	fstab, ok, err := p.read(ctx, "/etc/fstab", maxSmallFile)
	if err != nil || !ok {
		return nil, err
	}
	var homes []string
	if u := p.job.req.SSHUser; u != "" && u != "root" {
		if passwd, ok, err := p.read(ctx, "/etc/passwd", maxAccountsFile); err == nil && ok {
			if a, err := lookupAccount(passwd, u); err == nil {
				homes = append(homes, a.home)
			}
		}
	}
	var mine []string
	for _, c := range p.parts {
		if i, ok := driveIndex(c); ok && i == p.drive {
			mine = append(mine, c)
		}
	}
	var mps []mountPoint
	for _, l := range strings.Split(string(fstab), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || strings.HasPrefix(f[0], "#") || f[1] == "/" || !path.IsAbs(f[1]) || path.Clean(f[1]) != f[1] || !p.needsMount(f[1], homes) {
			continue
		}
		if f[2] == "swap" || f[2] == "tmpfs" || f[2] == "proc" || f[2] == "sysfs" || f[2] == "none" {
			continue
		}
		dev, err := p.resolveFstab(ctx, f[0], mine)
		if err != nil {
			return nil, err
		}
		if dev == "" {
			return nil, fmt.Errorf("cannot tell which filesystem /etc/fstab's %s (mounted on %s) is among the disk's partitions %v; use [init] bootstrap_tool = virt-sysprep", f[0], f[1], mine)
		}
		mps = append(mps, mountPoint{f[1], dev})
	}
	return mps, nil
}

// resolveFstab finds an fstab device spec among the disk's partitions: by
// UUID or label, or a /dev/[shvx]vda<N> name as the first disk of the VM.
func (p *guestPlan) resolveFstab(ctx context.Context, spec string, mine []string) (string, error) {
	probe := ""
	want := ""
	switch {
	case strings.HasPrefix(spec, "UUID="):
		probe, want = "-vfs-uuid", strings.Trim(spec[5:], `"`)
	case strings.HasPrefix(spec, "/dev/disk/by-uuid/"):
		probe, want = "-vfs-uuid", spec[len("/dev/disk/by-uuid/"):]
	case strings.HasPrefix(spec, "LABEL="):
		probe, want = "-vfs-label", strings.Trim(spec[6:], `"`)
	case strings.HasPrefix(spec, "/dev/disk/by-label/"):
		probe, want = "-vfs-label", spec[len("/dev/disk/by-label/"):]
	default:
		if m := firstDiskPart.FindStringSubmatch(spec); m != nil {
			for _, c := range mine {
				if partNumber(c) == m[1] {
					return c, nil
				}
			}
		}
		return "", nil
	}
	for _, c := range mine {
		out, err := p.f.Do(ctx, probe, c)
		if err != nil {
			return "", err
		}
		if len(out) == 1 && strings.EqualFold(strings.TrimSpace(out[0]), want) {
			return c, nil
		}
	}
	return "", nil
}

var (
	firstDiskPart = regexp.MustCompile(`^/dev/(?:[shv]|xv)da([0-9]+)$`)
	partNum       = regexp.MustCompile(`[0-9]+$`)
)

func partNumber(dev string) string { return partNum.FindString(dev) }

// hostname writes /etc/hostname and names the VM on /etc/hosts' 127.0.1.1
// line (Debian's way of resolving the own name), if it has one.
func (p *guestPlan) hostname(ctx context.Context) error {
	name := p.job.req.Hostname
	if name == "" {
		return nil
	}
	if _, err := p.f.Do(ctx, "write", "/etc/hostname", name+"\n"); err != nil {
		return fmt.Errorf("write /etc/hostname: %w", err)
	}
	hosts, ok, err := p.read(ctx, "/etc/hosts", maxSmallFile)
	if err != nil || !ok {
		return err
	}
	if out, changed := setHostsName(hosts, name); changed {
		return p.write(ctx, "/etc/hosts", out)
	}
	return nil
}

// setHostsName replaces the names on the 127.0.1.1 lines of hosts by name.
func setHostsName(hosts []byte, name string) ([]byte, bool) {
	lines := strings.SplitAfter(string(hosts), "\n")
	changed := false
	for i, l := range lines {
		fields := strings.Fields(l)
		if len(fields) < 2 || fields[0] != "127.0.1.1" {
			continue
		}
		nl := ""
		if strings.HasSuffix(l, "\n") {
			nl = "\n"
		}
		if repl := "127.0.1.1\t" + name + nl; repl != l {
			lines[i], changed = repl, true
		}
	}
	return []byte(strings.Join(lines, "")), changed
}

// rootPassword puts the password's SHA-512 crypt hash into root's
// /etc/shadow entry. The file is written in place (upload onto the
// existing file keeps its owner, mode and SELinux label).
func (p *guestPlan) rootPassword(ctx context.Context) error {
	shadow, ok, err := p.read(ctx, "/etc/shadow", maxAccountsFile)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("the guest has no /etc/shadow, so lago cannot set the root password (use a template with shadow passwords, or bootstrap: false)")
	}
	out, err := setShadowHash(shadow, "root", p.job.hash)
	if err != nil {
		return err
	}
	return p.write(ctx, "/etc/shadow", out)
}

// setShadowHash sets user's password field in a shadow file.
func setShadowHash(shadow []byte, user, hash string) ([]byte, error) {
	lines := strings.SplitAfter(string(shadow), "\n")
	for i, l := range lines {
		body := strings.TrimSuffix(l, "\n")
		fields := strings.Split(body, ":")
		if len(fields) < 2 || fields[0] != user {
			continue
		}
		fields[1] = hash
		lines[i] = strings.Join(fields, ":") + l[len(body):]
		return []byte(strings.Join(lines, "")), nil
	}
	return nil, fmt.Errorf("/etc/shadow has no entry for %s", user)
}

// account is a /etc/passwd entry.
type account struct {
	name     string
	uid, gid int
	home     string
}

// lookupAccount finds name in a passwd file.
func lookupAccount(passwd []byte, name string) (account, error) {
	for _, l := range strings.Split(string(passwd), "\n") {
		f := strings.Split(l, ":")
		if len(f) < 7 || f[0] != name {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
			return account{}, fmt.Errorf("/etc/passwd: bad uid or gid for %s", name)
		}
		home := f[5]
		if !path.IsAbs(home) || path.Clean(home) == "/" {
			return account{}, fmt.Errorf("/etc/passwd: %s's home %q is not an absolute folder below /", name, home)
		}
		return account{name: name, uid: uid, gid: gid, home: path.Clean(home)}, nil
	}
	return account{}, fmt.Errorf("user %s is not in the guest's /etc/passwd", name)
}

// sshInject adds the prefix's key to root's authorized_keys and to the ssh
// user's when that is not root: .ssh 0700 and authorized_keys 0600, owned
// by the user, as sshd's StrictModes wants.
func (p *guestPlan) sshInject(ctx context.Context) error {
	passwd, ok, err := p.read(ctx, "/etc/passwd", maxAccountsFile)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("the guest has no /etc/passwd")
	}
	users := []string{"root"}
	if u := p.job.req.SSHUser; u != "" && u != "root" {
		users = append(users, u)
	}
	for _, u := range users {
		a, err := lookupAccount(passwd, u)
		if err != nil {
			return err
		}
		if err := p.authorize(ctx, a); err != nil {
			return fmt.Errorf("user %s: %w", u, err)
		}
	}
	return nil
}

func (p *guestPlan) authorize(ctx context.Context, a account) error {
	uid, gid := strconv.Itoa(a.uid), strconv.Itoa(a.gid)
	dirs := []string{a.home, a.home + "/.ssh"}
	for i, d := range dirs {
		ok, err := p.is(ctx, "is-dir", d)
		if err != nil {
			return err
		}
		if ok && i == 0 {
			continue // an existing home keeps its owner and mode
		}
		if !ok {
			if _, err := p.f.Do(ctx, "mkdir-p", d); err != nil {
				return fmt.Errorf("create %s: %w", d, err)
			}
		}
		if err := p.own(ctx, d, "0700", uid, gid); err != nil {
			return err
		}
	}
	ak := a.home + "/.ssh/authorized_keys"
	cur, ok, err := p.read(ctx, ak, maxSmallFile)
	if err != nil {
		return err
	}
	if ok && slices.Contains(strings.Split(string(cur), "\n"), p.job.pubKey) {
		return p.own(ctx, ak, "0600", uid, gid)
	}
	if len(cur) > 0 && !strings.HasSuffix(string(cur), "\n") {
		cur = append(cur, '\n')
	}
	if err := p.write(ctx, ak, append(cur, p.job.pubKey+"\n"...)); err != nil {
		return err
	}
	return p.own(ctx, ak, "0600", uid, gid)
}

func (p *guestPlan) own(ctx context.Context, file, mode, uid, gid string) error {
	if _, err := p.f.Do(ctx, "chown", uid, gid, file); err != nil {
		return fmt.Errorf("chown %s: %w", file, err)
	}
	if _, err := p.f.Do(ctx, "chmod", mode, file); err != nil {
		return fmt.Errorf("chmod %s: %w", file, err)
	}
	return nil
}

// machineID gives the clone a machine-id of its own where the template
// has one (/etc/machine-id, and D-Bus' copy when it is a file rather than
// a link). A new random id, not an empty file: systemd (since 247) treats
// only a missing or "uninitialized" machine-id as a first boot, an empty
// one it fills in at boot without committing it on some setups, and
// non-systemd guests (D-Bus alone) never fill it; a fresh id is unique
// from the very first boot for all of them and runs no first-boot units
// (presets) that could undo what the template or the build steps set up.
// A template without the file keeps having none: there the guest's own
// first boot makes one.
func (p *guestPlan) machineID(ctx context.Context) error {
	for _, f := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		ok, err := p.is(ctx, "is-file", f)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if _, err := p.f.Do(ctx, "write", f, p.job.machineID+"\n"); err != nil {
			return fmt.Errorf("write %s: %w", f, err)
		}
	}
	return nil
}

var (
	opensshHostKey  = regexp.MustCompile(`^/etc/ssh/ssh_host_(rsa|ecdsa|ed25519|dsa)_key(\.pub)?$`)
	dropbearHostKey = regexp.MustCompile(`^/etc/dropbear/dropbear_[a-z0-9]+_host_key$`)
)

// hostKeys replaces the template's OpenSSH host keys by new ones of the
// same types, made on the host (no entropy-starved first boot, no
// ssh-keygen run in the guest), written over the old files so their owner
// and mode (Fedora's 0640 root:ssh_keys) stay. DSA keys, which current
// OpenSSH no longer loads, are removed. Dropbear's host keys are removed:
// `dropbear -R`, as distributions run it, makes new ones on first use.
func (p *guestPlan) hostKeys(ctx context.Context) error {
	found, err := p.f.Do(ctx, "glob-expand", "/etc/ssh/ssh_host_*")
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for _, l := range found {
		if opensshHostKey.MatchString(l) {
			present[l] = true
		}
	}
	for _, kind := range []string{"rsa", "ecdsa", "ed25519", "dsa"} {
		priv := "/etc/ssh/ssh_host_" + kind + "_key"
		pub := priv + ".pub"
		if !present[priv] {
			if present[pub] {
				if _, err := p.f.Do(ctx, "rm", pub); err != nil {
					return fmt.Errorf("remove %s: %w", pub, err)
				}
			}
			continue
		}
		if kind == "dsa" {
			for _, f := range []string{priv, pub} {
				if present[f] {
					if _, err := p.f.Do(ctx, "rm", f); err != nil {
						return fmt.Errorf("remove %s: %w", f, err)
					}
				}
			}
			continue
		}
		k, err := p.job.hostKeys.get(kind)
		if err != nil {
			return fmt.Errorf("make a new %s host key: %w", kind, err)
		}
		if err := p.write(ctx, priv, k.private); err != nil {
			return err
		}
		if err := p.write(ctx, pub, k.public); err != nil {
			return err
		}
		if !present[pub] {
			if _, err := p.f.Do(ctx, "chmod", "0644", pub); err != nil {
				return fmt.Errorf("chmod %s: %w", pub, err)
			}
		}
	}
	found, err = p.f.Do(ctx, "glob-expand", "/etc/dropbear/*_host_key")
	if err != nil {
		return err
	}
	for _, l := range found {
		if !dropbearHostKey.MatchString(l) {
			continue
		}
		if _, err := p.f.Do(ctx, "rm", l); err != nil {
			return fmt.Errorf("remove %s: %w", l, err)
		}
	}
	return nil
}

// selinux makes an SELinux guest relabel its filesystems on first boot, as
// the original's selinux-relabel did: the files written here have no
// label yet.
func (p *guestPlan) selinux(ctx context.Context) error {
	ok, err := p.is(ctx, "is-file", "/etc/selinux/config")
	if err != nil || !ok {
		return err
	}
	if _, err := p.f.Do(ctx, "touch", "/.autorelabel"); err != nil {
		return fmt.Errorf("touch /.autorelabel: %w", err)
	}
	return nil
}

// is runs a predicate command (is-file, is-dir: false for a symlink).
func (p *guestPlan) is(ctx context.Context, cmd, file string) (bool, error) {
	out, err := p.f.Do(ctx, cmd, file)
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", cmd, file, err)
	}
	if len(out) != 1 || (out[0] != "true" && out[0] != "false") {
		return false, fmt.Errorf("%s %s: unexpected answer %q", cmd, file, out)
	}
	return out[0] == "true", nil
}

// read returns a guest file's content (false when it is not a regular
// file), refusing one larger than limit. It goes through a host file: the
// content never passes through guestfish's output.
func (p *guestPlan) read(ctx context.Context, file string, limit int64) ([]byte, bool, error) {
	ok, err := p.is(ctx, "is-file", file)
	if err != nil || !ok {
		return nil, false, err
	}
	out, err := p.f.Do(ctx, "filesize", file)
	if err != nil {
		return nil, false, fmt.Errorf("size of %s: %w", file, err)
	}
	var size int64
	if len(out) == 1 {
		size, err = strconv.ParseInt(out[0], 10, 64)
	}
	if len(out) != 1 || err != nil {
		return nil, false, fmt.Errorf("size of %s: unexpected answer %q", file, out)
	}
	if size > limit {
		return nil, false, fmt.Errorf("%s is %d bytes, more than the %d lago reads", file, size, limit)
	}
	host := p.hostFile()
	defer os.Remove(host)
	if _, err := p.f.Do(ctx, "download", file, host); err != nil {
		return nil, false, fmt.Errorf("read %s: %w", file, err)
	}
	st, err := os.Stat(host)
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", file, err)
	}
	if st.Size() > limit {
		return nil, false, fmt.Errorf("%s grew past the %d bytes lago reads", file, limit)
	}
	b, err := os.ReadFile(host)
	return b, true, err
}

// write replaces a guest file's content (creating it if needed) through a
// 0600 host file, so no content (a password hash, a private key) is ever
// on a command line.
func (p *guestPlan) write(ctx context.Context, file string, data []byte) error {
	host := p.hostFile()
	defer os.Remove(host)
	if err := os.WriteFile(host, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	if _, err := p.f.Do(ctx, "upload", host, file); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

func (p *guestPlan) hostFile() string {
	p.files++
	return filepath.Join(p.tmp, fmt.Sprintf("%s-%d-%d", safeName(p.job.req.VM), p.drive, p.files))
}

// safeName keeps a VM name usable in a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r < ' ' {
			return '_'
		}
		return r
	}, s)
}

// driveIndex returns the index of the drive a device or filesystem of the
// appliance is on (/dev/sdb2 -> 1), false for those on LVM, RAID... whose
// drive the name does not tell.
func driveIndex(dev string) (int, bool) {
	dev = strings.TrimPrefix(dev, "btrfsvol:")
	m := driveName.FindStringSubmatch(dev)
	if m == nil {
		return 0, false
	}
	n := 0
	for _, c := range m[1] {
		n = n*26 + int(c-'a') + 1
	}
	return n - 1, true
}

var driveName = regexp.MustCompile(`^/dev/[sv]d([a-z]+)(?:[0-9]+)?(?:/.*)?$`)

// cutLast splits s around the last sep.
func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// virtSysprepAll implements env.Bootstrapper the original's way: one
// virt-sysprep per disk, in parallel ([init] bootstrap_tool =
// virt-sysprep).
type virtSysprepAll struct{ virtSysprep }

// BootstrapAll implements env.Bootstrapper.
func (v virtSysprepAll) BootstrapAll(ctx context.Context, reqs []env.BootstrapRequest, progress func(env.BootstrapEvent)) error {
	if progress == nil {
		progress = func(env.BootstrapEvent) {}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			began := time.Now()
			progress(env.BootstrapEvent{VM: r.VM, Step: "virt-sysprep"})
			if err := v.Bootstrap(ctx, r); err != nil {
				errs[i] = &env.BootstrapError{VM: r.VM, Step: "virt-sysprep", Err: err}
				cancel()
				return
			}
			progress(env.BootstrapEvent{VM: r.VM, Done: true, Took: time.Since(began)})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errors.Join(errs...)
}

// terminalBootstrap shows a bootstrapper's progress on the terminal too
// (Out, as "lago: <vm>: <step>" lines, like the build steps'), while env
// logs each event to the prefix log: bootstrap is the longest part of an
// init and would otherwise print nothing for a minute.
type terminalBootstrap struct {
	env.Bootstrapper
	Out io.Writer
	mu  *sync.Mutex
}

// BootstrapAll implements env.Bootstrapper.
func (t terminalBootstrap) BootstrapAll(ctx context.Context, reqs []env.BootstrapRequest, progress func(env.BootstrapEvent)) error {
	return t.Bootstrapper.BootstrapAll(ctx, reqs, func(ev env.BootstrapEvent) {
		if t.Out != nil {
			t.mu.Lock()
			fmt.Fprintln(t.Out, progressLine(ev))
			t.mu.Unlock()
		}
		if progress != nil {
			progress(ev)
		}
	})
}

// progressLine is an event as the terminal shows it.
func progressLine(ev env.BootstrapEvent) string {
	who := "bootstrap"
	if ev.VM != "" {
		who = ev.VM
	}
	switch {
	case ev.Done && ev.VM == "":
		return fmt.Sprintf("lago: %s: %s: done in %s", who, ev.Step, ev.Took.Round(100*time.Millisecond))
	case ev.Done:
		return fmt.Sprintf("lago: %s: bootstrapped in %s", who, ev.Took.Round(100*time.Millisecond))
	case ev.VM == "":
		return fmt.Sprintf("lago: %s: %s", who, ev.Step)
	default:
		return fmt.Sprintf("lago: %s: bootstrap %s", who, ev.Step)
	}
}
