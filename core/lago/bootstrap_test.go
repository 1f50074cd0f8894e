package lago

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/lago/internal/shacrypt"
)

func init() { rsaHostKeyBits = 1024 }

// fakeFile is a file or folder of a fake guest.
type fakeFile struct {
	data     []byte
	dir      bool
	mode     int
	uid, gid int
}

// fakeGuest is one disk's root filesystem.
type fakeGuest struct {
	files    map[string]*fakeFile
	readOnly bool
	// noOS hides the disk's root from inspection.
	noOS bool
}

// tinyGuest is a guest like the e2e tiny template, plus OpenSSH host keys,
// a machine-id, a user and SELinux.
func tinyGuest() *fakeGuest {
	g := &fakeGuest{files: map[string]*fakeFile{}}
	for _, d := range []string{"/", "/etc", "/etc/ssh", "/etc/dropbear", "/etc/selinux", "/root", "/root/.ssh", "/home", "/var", "/var/lib", "/var/lib/dbus"} {
		g.files[d] = &fakeFile{dir: true, mode: 0o755}
	}
	g.files["/root"].mode = 0o700
	add := func(p, data string, mode int) { g.files[p] = &fakeFile{data: []byte(data), mode: mode} }
	add("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1001:Alice:/home/alice:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644)
	add("/etc/shadow", "root:$6$old$oldhash:19000:0:99999:7:::\nalice:!:19000::::::\n", 0o640)
	add("/etc/hostname", "tiny\n", 0o644)
	add("/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\ttiny.example tiny\n", 0o644)
	add("/etc/machine-id", "0123456789abcdef0123456789abcdef\n", 0o444)
	add("/var/lib/dbus/machine-id", "0123456789abcdef0123456789abcdef\n", 0o444)
	add("/etc/ssh/ssh_host_ed25519_key", "old ed25519", 0o640)
	add("/etc/ssh/ssh_host_ed25519_key.pub", "ssh-ed25519 old", 0o644)
	add("/etc/ssh/ssh_host_rsa_key", "old rsa", 0o600)
	add("/etc/ssh/ssh_host_dsa_key", "old dsa", 0o600)
	add("/etc/ssh/ssh_host_dsa_key.pub", "old dsa pub", 0o644)
	add("/etc/dropbear/dropbear_ed25519_host_key", "old", 0o600)
	add("/etc/dropbear/dropbear_ecdsa_host_key", "old", 0o600)
	add("/etc/selinux/config", "SELINUX=enforcing\n", 0o644)
	add("/root/.ssh/authorized_keys", "", 0o600)
	return g
}

// fakeFish is a guestfish session over fake guests, one per add-drive
// (looked up by disk path), recording every command.
type fakeFish struct {
	mu       sync.Mutex
	guests   map[string]*fakeGuest
	drives   []string
	mounted  int // drive index mounted at /, -1 for none
	launched bool
	cmds     [][]string
	// sessions counts the sessions started.
	sessions *int
	closed   bool
}

func (f *fakeFish) guest() (*fakeGuest, error) {
	if f.mounted < 0 {
		return nil, errors.New("you must call 'mount' first to mount the root filesystem")
	}
	return f.guests[f.drives[f.mounted]], nil
}

func devName(i, part int) string { return fmt.Sprintf("/dev/sd%c%d", 'a'+i, part) }

var fakeDev = regexp.MustCompile(`^/dev/sd([a-z])2$`)

func (f *fakeFish) Do(ctx context.Context, args ...string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, errors.New("session closed")
	}
	f.cmds = append(f.cmds, args)
	tolerant := strings.HasPrefix(args[0], "-")
	if tolerant {
		args = append([]string{args[0][1:]}, args[1:]...)
	}
	fail := func(format string, a ...any) ([]string, error) {
		if tolerant {
			return nil, nil // guestfish goes on after a "-" command
		}
		f.closed = true // guestfish exits on the first error
		return nil, fmt.Errorf(args[0]+": "+format, a...)
	}
	writable := func(g *fakeGuest) error {
		if g.readOnly {
			return errors.New("Read-only file system")
		}
		return nil
	}
	switch args[0] {
	case "set-memsize":
		return nil, nil
	case "add-drive":
		if f.launched {
			return fail("after launch")
		}
		if _, ok := f.guests[args[1]]; !ok {
			return fail("%s: No such file or directory", args[1])
		}
		f.drives = append(f.drives, args[1])
		return nil, nil
	case "run":
		f.launched = true
		return nil, nil
	case "list-partitions":
		var out []string
		for i := range f.drives {
			out = append(out, devName(i, 1), devName(i, 2))
		}
		return out, nil
	case "list-devices":
		var out []string
		for i := range f.drives {
			out = append(out, fmt.Sprintf("/dev/sd%c", 'a'+i))
		}
		return out, nil
	case "vfs-uuid":
		m := fakeDev.FindStringSubmatch(args[1])
		if m == nil {
			return []string{""}, nil
		}
		return []string{"root-uuid"}, nil
	case "inspect-os":
		var out []string
		for i, d := range f.drives {
			if !f.guests[d].noOS {
				out = append(out, devName(i, 2))
			}
		}
		return out, nil
	case "inspect-get-mountpoints":
		// As libguestfs answers for a clone whose fstab says /dev/vda2:
		// the first drive's device, whatever the root.
		return []string{"/: /dev/sda2", "/boot: /dev/sda1"}, nil
	case "mount", "mount-ro":
		m := fakeDev.FindStringSubmatch(args[1])
		if args[2] != "/" {
			return nil, nil
		}
		if m == nil {
			return fail("%s: wrong fs type, bad option, bad superblock", args[1])
		}
		f.mounted = int(m[1][0] - 'a')
		if f.guests[f.drives[f.mounted]].noOS {
			f.mounted = -1
			return fail("%s: wrong fs type", args[1])
		}
		return nil, nil
	case "umount-all":
		f.mounted = -1
		return nil, nil
	}
	g, err := f.guest()
	if err != nil {
		return fail("%v", err)
	}
	p := args[1] // the guest path the command works on
	switch args[0] {
	case "upload", "chown", "chmod":
		p = args[len(args)-1]
	}
	switch args[0] {
	case "is-file", "is-dir":
		file, ok := g.files[args[1]]
		return []string{strconv.FormatBool(ok && file.dir == (args[0] == "is-dir"))}, nil
	case "filesize":
		file, ok := g.files[p]
		if !ok {
			return fail("%s: No such file or directory", p)
		}
		return []string{strconv.Itoa(len(file.data))}, nil
	case "download":
		file, ok := g.files[args[1]]
		if !ok {
			return fail("%s: No such file or directory", args[1])
		}
		if err := os.WriteFile(args[2], file.data, 0o600); err != nil {
			return fail("%v", err)
		}
		return nil, nil
	case "upload", "write", "touch", "mkdir-p", "chown", "chmod", "rm":
		if err := writable(g); err != nil {
			return fail("%s: %v", p, err)
		}
	}
	switch args[0] {
	case "upload", "write":
		data := []byte(args[2])
		if args[0] == "upload" {
			if data, err = os.ReadFile(args[1]); err != nil {
				return fail("%v", err)
			}
		}
		if _, ok := g.files[path.Dir(p)]; !ok {
			return fail("%s: No such file or directory", p)
		}
		if file, ok := g.files[p]; ok {
			file.data = data // in place: owner and mode stay
		} else {
			g.files[p] = &fakeFile{data: data, mode: 0o644}
		}
	case "touch":
		if _, ok := g.files[p]; !ok {
			g.files[p] = &fakeFile{mode: 0o644}
		}
	case "mkdir-p":
		for d := p; d != "/"; d = path.Dir(d) {
			if _, ok := g.files[d]; !ok {
				g.files[d] = &fakeFile{dir: true, mode: 0o755}
			}
		}
	case "chown":
		file, ok := g.files[p]
		if !ok {
			return fail("%s: No such file or directory", p)
		}
		file.uid, _ = strconv.Atoi(args[1])
		file.gid, _ = strconv.Atoi(args[2])
	case "chmod":
		file, ok := g.files[p]
		if !ok {
			return fail("%s: No such file or directory", p)
		}
		m, _ := strconv.ParseInt(args[1], 8, 32)
		file.mode = int(m)
	case "rm":
		if _, ok := g.files[p]; !ok {
			return fail("%s: No such file or directory", p)
		}
		delete(g.files, p)
	case "glob-expand":
		pat := p
		var out []string
		for name := range g.files {
			if ok, _ := path.Match(pat, name); ok {
				out = append(out, name)
			}
		}
		sort.Strings(out)
		return out, nil
	default:
		return fail("unknown command")
	}
	return nil, nil
}

func (f *fakeFish) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// bootstrapFixture is a guestfishBootstrap over fake guests, one disk per
// VM.
type bootstrapFixture struct {
	t        *testing.T
	dir      string
	guests   map[string]*fakeGuest
	fishes   []*fakeFish
	pubKey   string
	keyPath  string
	b        *guestfishBootstrap
	events   []env.BootstrapEvent
	eventsMu sync.Mutex
}

func newBootstrapFixture(t *testing.T, vms ...string) *bootstrapFixture {
	f := &bootstrapFixture{t: t, dir: t.TempDir(), guests: map[string]*fakeGuest{}}
	f.pubKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPrefixKeyForTests lago"
	f.keyPath = filepath.Join(f.dir, "id_rsa.pub")
	if err := os.WriteFile(f.keyPath, []byte(f.pubKey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, vm := range vms {
		f.guests[f.disk(vm)] = tinyGuest()
	}
	f.b = &guestfishBootstrap{start: func(ctx context.Context) (fish, error) {
		ff := &fakeFish{guests: f.guests, mounted: -1}
		f.fishes = append(f.fishes, ff)
		return ff, nil
	}}
	return f
}

func (f *bootstrapFixture) disk(vm string) string { return filepath.Join(f.dir, vm+".qcow2") }

func (f *bootstrapFixture) guest(vm string) *fakeGuest { return f.guests[f.disk(vm)] }

func (f *bootstrapFixture) reqs(vms ...string) []env.BootstrapRequest {
	var out []env.BootstrapRequest
	for _, vm := range vms {
		out = append(out, env.BootstrapRequest{
			VM: vm, DiskPath: f.disk(vm), DiskFormat: "qcow2", Hostname: vm,
			RootPassword: "pw-" + vm, PublicKeyPath: f.keyPath, SSHUser: "alice",
		})
	}
	return out
}

func (f *bootstrapFixture) run(vms ...string) error {
	return f.b.BootstrapAll(context.Background(), f.reqs(vms...), func(ev env.BootstrapEvent) {
		f.eventsMu.Lock()
		defer f.eventsMu.Unlock()
		f.events = append(f.events, ev)
	})
}

func (f *bootstrapFixture) file(vm, p string) *fakeFile {
	f.t.Helper()
	file, ok := f.guest(vm).files[p]
	if !ok {
		f.t.Fatalf("%s has no %s", vm, p)
	}
	return file
}

// TestGuestfishBootstrapThreeVMsOneAppliance runs the plan on three
// clones: one session adds the three disks, and each guest gets its
// hostname, password hash, keys, machine-id and host keys.
func TestGuestfishBootstrapThreeVMsOneAppliance(t *testing.T) {
	vms := []string{"vm0", "vm1", "vm2"}
	f := newBootstrapFixture(t, vms...)
	if err := f.run(vms...); err != nil {
		t.Fatal(err)
	}
	if len(f.fishes) != 1 {
		t.Fatalf("%d guestfish sessions, want 1", len(f.fishes))
	}
	var adds []string
	for _, c := range f.fishes[0].cmds {
		if c[0] == "add-drive" {
			adds = append(adds, strings.Join(c[1:], " "))
		}
	}
	if want := []string{f.disk("vm0") + " format:qcow2 readonly:false", f.disk("vm1") + " format:qcow2 readonly:false", f.disk("vm2") + " format:qcow2 readonly:false"}; strings.Join(adds, "\n") != strings.Join(want, "\n") {
		t.Errorf("add-drive commands:\n%s\nwant\n%s", strings.Join(adds, "\n"), strings.Join(want, "\n"))
	}
	ids := map[string]string{}
	hostKeys := map[string]string{}
	for _, vm := range vms {
		if got := string(f.file(vm, "/etc/hostname").data); got != vm+"\n" {
			t.Errorf("%s: /etc/hostname = %q", vm, got)
		}
		if got := string(f.file(vm, "/etc/hosts").data); got != "127.0.0.1\tlocalhost\n127.0.1.1\t"+vm+"\n" {
			t.Errorf("%s: /etc/hosts = %q", vm, got)
		}
		shadow := f.file(vm, "/etc/shadow")
		lines := strings.Split(string(shadow.data), "\n")
		fields := strings.Split(lines[0], ":")
		if fields[0] != "root" || len(fields) != 9 || fields[2] != "19000" {
			t.Fatalf("%s: shadow root line %q lost its other fields", vm, lines[0])
		}
		if again, _ := shacrypt.CryptSetting("pw-"+vm, fields[1]); again != fields[1] || !strings.HasPrefix(fields[1], "$6$") {
			t.Errorf("%s: root's hash %q does not verify against pw-%s", vm, fields[1], vm)
		}
		if lines[1] != "alice:!:19000::::::" || shadow.mode != 0o640 {
			t.Errorf("%s: shadow's other lines or mode changed: %q %o", vm, lines[1], shadow.mode)
		}
		for _, u := range []struct {
			home     string
			uid, gid int
		}{{"/root", 0, 0}, {"/home/alice", 1000, 1001}} {
			d, ak := f.file(vm, u.home+"/.ssh"), f.file(vm, u.home+"/.ssh/authorized_keys")
			if string(ak.data) != f.pubKey+"\n" || ak.mode != 0o600 || ak.uid != u.uid || ak.gid != u.gid {
				t.Errorf("%s: %s/.ssh/authorized_keys = %q mode %o owner %d:%d", vm, u.home, ak.data, ak.mode, ak.uid, ak.gid)
			}
			if d.mode != 0o700 || d.uid != u.uid || d.gid != u.gid {
				t.Errorf("%s: %s/.ssh mode %o owner %d:%d", vm, u.home, d.mode, d.uid, d.gid)
			}
		}
		if h := f.file(vm, "/home/alice"); h.uid != 1000 || h.mode != 0o700 {
			t.Errorf("%s: the new home of alice: owner %d mode %o", vm, h.uid, h.mode)
		}
		id := string(f.file(vm, "/etc/machine-id").data)
		if !regexp.MustCompile(`^[0-9a-f]{32}\n$`).MatchString(id) || id == "0123456789abcdef0123456789abcdef\n" {
			t.Errorf("%s: machine-id %q is not a new 32-hex id", vm, id)
		}
		if dbus := string(f.file(vm, "/var/lib/dbus/machine-id").data); dbus != id {
			t.Errorf("%s: D-Bus machine-id %q, want %q", vm, dbus, id)
		}
		ids[id] = vm
		for _, kind := range []string{"ed25519", "rsa"} {
			priv := f.file(vm, "/etc/ssh/ssh_host_"+kind+"_key")
			signer, err := ssh.ParsePrivateKey(priv.data)
			if err != nil {
				t.Fatalf("%s: new %s host key does not parse: %v", vm, kind, err)
			}
			if want := map[string]string{"ed25519": ssh.KeyAlgoED25519, "rsa": ssh.KeyAlgoRSA}[kind]; signer.PublicKey().Type() != want {
				t.Errorf("%s: %s host key is %s", vm, kind, signer.PublicKey().Type())
			}
			pub := f.file(vm, "/etc/ssh/ssh_host_"+kind+"_key.pub")
			if !strings.HasPrefix(string(pub.data), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))+" root@"+vm) {
				t.Errorf("%s: %s .pub %q does not match the private key", vm, kind, pub.data)
			}
			hostKeys[string(priv.data)] = vm
		}
		if m := f.file(vm, "/etc/ssh/ssh_host_ed25519_key").mode; m != 0o640 {
			t.Errorf("%s: the ed25519 key's mode became %o, want the template's 0640", vm, m)
		}
		for _, gone := range []string{"/etc/ssh/ssh_host_dsa_key", "/etc/ssh/ssh_host_dsa_key.pub", "/etc/ssh/ssh_host_ecdsa_key", "/etc/dropbear/dropbear_ed25519_host_key", "/etc/dropbear/dropbear_ecdsa_host_key"} {
			if _, ok := f.guest(vm).files[gone]; ok {
				t.Errorf("%s: %s is still there", vm, gone)
			}
		}
		f.file(vm, "/.autorelabel")
	}
	if len(ids) != 3 || len(hostKeys) != 6 {
		t.Errorf("machine-ids %v and host keys (%d distinct) are not each VM's own", ids, len(hostKeys))
	}
	// Neither a password nor a private key is ever on a command line.
	for _, c := range f.fishes[0].cmds {
		line := strings.Join(c, " ")
		if strings.Contains(line, "pw-vm") || strings.Contains(line, "PRIVATE KEY") || strings.Contains(line, "$6$") {
			t.Errorf("a secret on guestfish's input: %q", line)
		}
	}
	// Progress: the shared appliance start, each step per VM, a time per VM.
	steps := map[string][]string{}
	done := map[string]bool{}
	for _, ev := range f.events {
		if ev.Done {
			done[ev.VM] = true
		} else {
			steps[ev.VM] = append(steps[ev.VM], ev.Step)
		}
	}
	if !done[""] || !done["vm0"] || !done["vm1"] || !done["vm2"] {
		t.Errorf("done events %v, want the appliance and every VM", done)
	}
	if got := strings.Join(steps["vm1"], ","); got != "inspect,mount,hostname,root-password,ssh-inject,machine-id,ssh-hostkeys,selinux-relabel" {
		t.Errorf("vm1's steps %s", got)
	}
}

// TestGuestfishBootstrapMountsFromFstab: a home on its own partition is
// mounted from this disk's partitions, whether fstab names it by device
// (as the VM sees it: vda) or by UUID, never from another clone's disk;
// a mount point bootstrap does not write to is left alone.
func TestGuestfishBootstrapMountsFromFstab(t *testing.T) {
	for _, spec := range []string{"/dev/vda1", "UUID=root-uuid"} {
		t.Run(spec, func(t *testing.T) {
			f := newBootstrapFixture(t, "vm0", "vm1")
			for _, vm := range []string{"vm0", "vm1"} {
				g := f.guest(vm)
				g.files["/etc/fstab"] = &fakeFile{data: []byte("/dev/vda2 / ext4 defaults 0 1\n" + spec + " /home ext4 defaults 0 2\n/dev/vda1 /srv ext4 defaults 0 2\n"), mode: 0o644}
			}
			if err := f.run("vm0", "vm1"); err != nil {
				t.Fatal(err)
			}
			var mounts []string
			for _, c := range f.fishes[0].cmds {
				if c[0] == "mount" {
					mounts = append(mounts, strings.Join(c[1:], " "))
				}
			}
			want := "/dev/sda2 /,/dev/sda1 /home,/dev/sdb2 /,/dev/sdb1 /home"
			if spec != "/dev/vda1" {
				want = "/dev/sda2 /,/dev/sda2 /home,/dev/sdb2 /,/dev/sdb2 /home" // the fake's UUID is the root's
			}
			if got := strings.Join(mounts, ","); got != want {
				t.Errorf("mounts %s, want %s", got, want)
			}
		})
	}
}

// TestGuestfishBootstrapKeepsExistingKeys: a key already authorized is not
// added twice, other keys stay; a guest without the optional files gets
// none of them made up.
func TestGuestfishBootstrapKeepsExistingKeys(t *testing.T) {
	f := newBootstrapFixture(t, "vm0")
	g := f.guest("vm0")
	g.files["/root/.ssh/authorized_keys"].data = []byte("ssh-rsa OTHER user@x\n" + f.pubKey)
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id", "/etc/hosts", "/etc/selinux/config"} {
		delete(g.files, p)
	}
	r := f.reqs("vm0")
	r[0].SSHUser = "root"
	if err := f.b.BootstrapAll(context.Background(), r, nil); err != nil {
		t.Fatal(err)
	}
	if got := string(f.file("vm0", "/root/.ssh/authorized_keys").data); got != "ssh-rsa OTHER user@x\n"+f.pubKey {
		t.Errorf("authorized_keys = %q", got)
	}
	for _, p := range []string{"/etc/machine-id", "/etc/hosts", "/.autorelabel", "/home/alice/.ssh"} {
		if _, ok := g.files[p]; ok {
			t.Errorf("%s made up", p)
		}
	}
}

// TestGuestfishBootstrapImpossibleSteps: the error names the VM, the step
// and the reason, as a *env.BootstrapError.
func TestGuestfishBootstrapImpossibleSteps(t *testing.T) {
	tests := []struct {
		name     string
		breakVM  func(g *fakeGuest)
		req      func(r *env.BootstrapRequest)
		step     string
		contains string
	}{
		{name: "no shadow", breakVM: func(g *fakeGuest) { delete(g.files, "/etc/shadow") }, step: "root-password", contains: "the guest has no /etc/shadow"},
		{name: "no root in shadow", breakVM: func(g *fakeGuest) { g.files["/etc/shadow"].data = []byte("alice:!:1::::::\n") }, step: "root-password", contains: "no entry for root"},
		{name: "read-only", breakVM: func(g *fakeGuest) { g.readOnly = true }, step: "hostname", contains: "the filesystem is read-only"},
		{name: "no OS", breakVM: func(g *fakeGuest) { g.noOS = true }, step: "inspect", contains: "no operating system found on the disk"},
		{name: "unknown ssh user", req: func(r *env.BootstrapRequest) { r.SSHUser = "bob" }, step: "ssh-inject", contains: "user bob is not in the guest's /etc/passwd"},
		{name: "huge passwd", breakVM: func(g *fakeGuest) { g.files["/etc/passwd"].data = make([]byte, maxAccountsFile+1) }, step: "ssh-inject", contains: "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newBootstrapFixture(t, "vm0", "vm1")
			if tt.breakVM != nil {
				tt.breakVM(f.guest("vm1"))
			}
			reqs := f.reqs("vm0", "vm1")
			if tt.req != nil {
				tt.req(&reqs[1])
			}
			err := f.b.BootstrapAll(context.Background(), reqs, nil)
			var be *env.BootstrapError
			if !errors.As(err, &be) {
				t.Fatalf("error %v (%T), want a *env.BootstrapError", err, err)
			}
			if be.VM != "vm1" || be.Step != tt.step || !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q (vm %s, step %s), want vm vm1, step %s, containing %q", err, be.VM, be.Step, tt.step, tt.contains)
			}
			if !strings.HasPrefix(err.Error(), "bootstrap vm vm1: "+tt.step+": ") {
				t.Errorf("error %q does not start with the VM and step", err)
			}
		})
	}
}

// TestGuestfishBootstrapRetriesAlone: a disk whose root the shared
// appliance does not find gets an appliance of its own before init is
// told there is no OS.
func TestGuestfishBootstrapRetriesAlone(t *testing.T) {
	f := newBootstrapFixture(t, "vm0", "vm1")
	f.guest("vm1").noOS = true
	err := f.run("vm0", "vm1")
	if err == nil || !strings.Contains(err.Error(), "bootstrap vm vm1: inspect: no operating system") {
		t.Fatalf("error %v", err)
	}
	if len(f.fishes) != 2 {
		t.Fatalf("%d sessions, want the shared one and one for vm1", len(f.fishes))
	}
	var second []string
	for _, c := range f.fishes[1].cmds {
		if c[0] == "add-drive" {
			second = append(second, c[1])
		}
	}
	if len(second) != 1 || second[0] != f.disk("vm1") {
		t.Errorf("the retry added %v, want only vm1's disk", second)
	}
	if got := string(f.file("vm0", "/etc/hostname").data); got != "vm0\n" {
		t.Errorf("vm0 not bootstrapped in the shared appliance: hostname %q", got)
	}
}

func TestFishQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/hostname": `"/etc/hostname"`,
		`a"b\c`:         `"a\"b\\c"`,
		"x\ny\tz":       `"x\x0ay\x09z"`,
		"a|b #c !d":     `"a|b #c !d"`,
		"":              `""`,
	} {
		if got := fishQuote(in); got != want {
			t.Errorf("fishQuote(%q) = %s, want %s", in, got, want)
		}
	}
	if got := fishLine([]string{"write", "/etc/hostname", "vm0\n"}); got != `write "/etc/hostname" "vm0\x0a"` {
		t.Errorf("fishLine = %s", got)
	}
}

func TestDriveIndex(t *testing.T) {
	for dev, want := range map[string]int{"/dev/sda": 0, "/dev/sdb2": 1, "/dev/sdz1": 25, "/dev/sdaa3": 26, "btrfsvol:/dev/sdc2/@root": 2, "/dev/vdb1": 1} {
		if got, ok := driveIndex(dev); !ok || got != want {
			t.Errorf("driveIndex(%s) = %d, %v; want %d", dev, got, ok, want)
		}
	}
	for _, dev := range []string{"/dev/vg0/root", "/dev/md127", "/dev/mapper/x"} {
		if _, ok := driveIndex(dev); ok {
			t.Errorf("driveIndex(%s) claims a drive", dev)
		}
	}
}

func TestLibguestfsEnv(t *testing.T) {
	t.Setenv("LIBGUESTFS_BACKEND", "libvirt")
	s := libguestfsSettings{Backend: "direct", ForceTCG: "yes", MemSize: 512, fromConfig: map[string]bool{"libguestfs_memsize": true}}
	got := strings.Join(s.Env(), " ")
	if want := "LIBGUESTFS_BACKEND_SETTINGS=force_tcg LIBGUESTFS_MEMSIZE=512"; got != want {
		t.Errorf("Env() = %q, want %q (a default backend gives way to the user's variable)", got, want)
	}
	s.fromConfig["libguestfs_backend"] = true
	if got := s.Env(); got[0] != "LIBGUESTFS_BACKEND=direct" {
		t.Errorf("a configured backend does not win: %v", got)
	}
	cfg := s.Config()
	if cfg["libguestfs_backend"] != "direct" || cfg["libguestfs_backend_settings"] != "force_tcg" || cfg["libguestfs_memsize"] != "512" {
		t.Errorf("Config() = %v", cfg)
	}
	s.ForceTCG = "no"
	if strings.Contains(strings.Join(s.Env(), " "), "force_tcg") {
		t.Errorf("force_tcg=no still forces TCG")
	}
}

// TestVirtSysprepAllNamesTheFailingVM: the virt-sysprep fallback runs one
// tool per disk and names the VM whose run failed.
func TestVirtSysprepAllNamesTheFailingVM(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "virt-sysprep")
	script := "#!/bin/sh\ncase \"$*\" in *bad*) echo 'libguestfs: error: no OS found' >&2; exit 1;; esac\nexit 0\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	done := map[string]bool{}
	err := virtSysprepAll{virtSysprep{Binary: bin}}.BootstrapAll(context.Background(), []env.BootstrapRequest{
		{VM: "good", DiskPath: "/good.qcow2"}, {VM: "broken", DiskPath: "/bad.qcow2"},
	}, func(ev env.BootstrapEvent) {
		mu.Lock()
		defer mu.Unlock()
		if ev.Done {
			done[ev.VM] = true
		}
	})
	var be *env.BootstrapError
	if !errors.As(err, &be) || be.VM != "broken" || be.Step != "virt-sysprep" || !strings.Contains(err.Error(), "no OS found") {
		t.Fatalf("error %v, want vm broken's virt-sysprep failure", err)
	}
	if done["broken"] {
		t.Errorf("the failed VM was reported done: %v", done)
	}
}

func TestBootstrapProgressLines(t *testing.T) {
	var out strings.Builder
	tb := terminalBootstrap{Bootstrapper: bootstrapperFunc(func(progress func(env.BootstrapEvent)) {
		progress(env.BootstrapEvent{Step: "start the libguestfs appliance for 2 disk(s)"})
		progress(env.BootstrapEvent{Step: "start the libguestfs appliance", Done: true, Took: 9500 * time.Millisecond})
		progress(env.BootstrapEvent{VM: "vm0", Step: "root-password"})
		progress(env.BootstrapEvent{VM: "vm0", Done: true, Took: 2140 * time.Millisecond})
	}), Out: &out, mu: new(sync.Mutex)}
	var seen int
	if err := tb.BootstrapAll(context.Background(), nil, func(env.BootstrapEvent) { seen++ }); err != nil {
		t.Fatal(err)
	}
	want := "lago: bootstrap: start the libguestfs appliance for 2 disk(s)\n" +
		"lago: bootstrap: start the libguestfs appliance: done in 9.5s\n" +
		"lago: vm0: bootstrap root-password\n" +
		"lago: vm0: bootstrapped in 2.1s\n"
	if out.String() != want || seen != 4 {
		t.Errorf("terminal:\n%s\nwant\n%s(and %d events passed on, want 4)", out.String(), want, seen)
	}
}

type bootstrapperFunc func(progress func(env.BootstrapEvent))

func (f bootstrapperFunc) BootstrapAll(_ context.Context, _ []env.BootstrapRequest, progress func(env.BootstrapEvent)) error {
	f(progress)
	return nil
}

// More disks than one appliance takes go in appliances one after another,
// which bounds the peak memory whatever the number of VMs.
func TestGuestfishBootstrapBatchesManyDisks(t *testing.T) {
	defer func(n int) { maxDisksPerAppliance = n }(maxDisksPerAppliance)
	maxDisksPerAppliance = 2
	vms := []string{"vm0", "vm1", "vm2", "vm3", "vm4"}
	f := newBootstrapFixture(t, vms...)
	if err := f.run(vms...); err != nil {
		t.Fatal(err)
	}
	var per []int
	for _, fish := range f.fishes {
		n := 0
		for _, c := range fish.cmds {
			if c[0] == "add-drive" {
				n++
			}
		}
		per = append(per, n)
	}
	if fmt.Sprint(per) != "[2 2 1]" {
		t.Fatalf("disks per appliance %v, want [2 2 1]", per)
	}
	for _, vm := range vms {
		if got := string(f.file(vm, "/etc/hostname").data); got != vm+"\n" {
			t.Errorf("%s: /etc/hostname = %q", vm, got)
		}
	}
}
