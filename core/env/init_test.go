package env

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lago-go/lago/core/env/envtest"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/lease"
	"github.com/lago-go/lago/core/prefix"
	"github.com/lago-go/lago/core/spec"
	"github.com/lago-go/lago/sdk"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
)

const testInitFile = `
domains:
  vm0:
    memory: 512
    nics:
      - net: n0
    disks:
      - template_name: tiny
        type: template
        name: root
        dev: vda
        format: qcow2
        build:
          - virt-customize:
              ssh-inject: ''
              touch: /root/built
  vm1:
    memory: 512
    root-password: secret
    metadata:
      deploy-scripts:
        - $LAGO_INITFILE_PATH/setup.sh
    nics:
      - net: n0
      - net: n1
    disks:
      - template_name: tiny
        type: template
        name: root
        dev: vda
        format: qcow2
nets:
  n0:
    type: nat
    management: true
    dhcp:
      start: 100
      end: 254
  n1:
    type: nat
`

// fakeTemplates serves images from a folder; names in fail fail.
type fakeTemplates struct {
	dir  string
	mu   sync.Mutex
	gets []string
	fail map[string]error
}

func (f *fakeTemplates) Get(ctx context.Context, ref TemplateRef) (Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets = append(f.gets, ref.Name)
	if err := f.fail[ref.Name]; err != nil {
		return Image{}, err
	}
	p := filepath.Join(f.dir, "repo:"+ref.Name+":v1")
	if err := os.WriteFile(p, []byte("QFI\xfbimage"), 0o644); err != nil {
		return Image{}, err
	}
	return Image{Path: p, Key: "repo:" + ref.Name + ":v1", Hash: "abc", Format: "qcow2",
		Metadata: map[string]string{"distro": "tinylinux", "root-password": "fromtemplate"}}, nil
}

type fakeBuilder struct {
	mu   sync.Mutex
	reqs []BuildRequest
	err  error
}

func (b *fakeBuilder) Build(ctx context.Context, req BuildRequest) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reqs = append(b.reqs, req)
	return b.err
}

type fakeBootstrap struct {
	mu      sync.Mutex
	reqs    []BootstrapRequest
	batches int
	err     error
}

func (b *fakeBootstrap) BootstrapAll(ctx context.Context, reqs []BootstrapRequest, progress func(BootstrapEvent)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches++
	b.reqs = append(b.reqs, reqs...)
	return b.err
}

// initFixture has a real lease store, a real init file parser and fakes
// for the rest; "local" and "remote" are two provider instances.
type initFixture struct {
	t        *testing.T
	dir      string
	workdir  string
	initFile string
	leases   *lease.Store
	prov     *envtest.Provider
	remote   *envtest.Provider
	tmpl     *fakeTemplates
	builder  *fakeBuilder
	boot     *fakeBootstrap
	m        *Manager
}

func newInitFixture(t *testing.T) *initFixture {
	t.Helper()
	dir := t.TempDir()
	f := &initFixture{
		t: t, dir: dir, workdir: filepath.Join(dir, "work", ".lago"), initFile: filepath.Join(dir, "LagoInitFile"),
		leases: &lease.Store{Dir: filepath.Join(dir, "leases")},
		prov:   envtest.NewProvider(), remote: envtest.NewProvider(),
		tmpl:    &fakeTemplates{dir: filepath.Join(dir, "store"), fail: map[string]error{}},
		builder: &fakeBuilder{}, boot: &fakeBootstrap{},
	}
	mustMkdir(t, f.tmpl.dir)
	mustWrite(t, f.initFile, testInitFile)
	mustWrite(t, filepath.Join(dir, "setup.sh"), "echo hi\n")
	f.m = New(Options{DefaultProvider: "local", ProviderInstances: []string{"local", "remote"}}, Deps{
		Providers: func(ctx context.Context, name string) (sdk.Provider, error) {
			switch name {
			case "local":
				return f.prov, nil
			case "remote":
				return f.remote, nil
			}
			return nil, fmt.Errorf("no provider instance %q", name)
		},
		Leaser:    f.leases,
		Templates: f.tmpl,
		Builder:   f.builder,
		Bootstrap: f.boot,
		SSH:       newFakeSSH(),
	})
	return f
}

func (f *initFixture) opts() InitOptions {
	return InitOptions{Workdir: f.workdir, InitFile: f.initFile}
}

func (f *initFixture) prefix() string { return filepath.Join(f.workdir, DefaultPrefixName) }

// assertNothingLeft checks that no prefix, workdir, lease or provider
// object is left.
func (f *initFixture) assertNothingLeft() {
	t := f.t
	t.Helper()
	if _, err := os.Lstat(f.prefix()); !os.IsNotExist(err) {
		t.Errorf("prefix %s still exists (%v)", f.prefix(), err)
	}
	if _, err := os.Lstat(f.workdir); !os.IsNotExist(err) {
		t.Errorf("workdir %s still exists (%v)", f.workdir, err)
	}
	if entries := listLeases(t, f.leases); len(entries) != 0 {
		t.Errorf("%d leases left: %+v", len(entries), entries)
	}
	if o := f.prov.Owned(""); len(o) != 0 {
		t.Errorf("provider objects left: %v", o)
	}
}

// listLeases lists the lease store, failing the test when that fails: a
// check that no lease is left must not pass because List could not look.
func listLeases(t *testing.T, s *lease.Store) []lease.Entry {
	t.Helper()
	entries, err := s.List(context.Background())
	if err != nil {
		t.Fatalf("list leases in %s: %v", s.Dir, err)
	}
	return entries
}

func TestInitSuccess(t *testing.T) {
	f := newInitFixture(t)
	f.prov.SetUsedSubnets("192.168.200.0/24")
	res, err := f.m.Init(context.Background(), f.opts())
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	p := f.prefix()
	for _, name := range []string{fileInitialized, fileUUID, fileKey, fileKey + ".pub", "metadata", "virt/env", "virt/vm-vm0", "virt/vm-vm1", "virt/net-n0", "virt/net-n1"} {
		if _, err := os.Stat(filepath.Join(p, name)); err != nil {
			t.Errorf("prefix lacks %s: %v", name, err)
		}
	}
	if st, err := os.Stat(filepath.Join(p, fileKey)); err == nil && st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", st.Mode().Perm())
	}
	uuid, _ := os.ReadFile(filepath.Join(p, fileUUID))
	if len(uuid) != 32 || res.UUID != string(uuid) {
		t.Errorf("uuid %q (result %q), want 32 hex chars without newline", uuid, res.UUID)
	}
	if cur, _ := CurrentPrefix(f.workdir); cur != DefaultPrefixName {
		t.Errorf("current = %q, want default", cur)
	}
	// 192.168.200.0/24 is used on the host: skipped and reported.
	if res.Subnets["n0"].String() != "192.168.201.0/24" || res.Subnets["n1"].String() != "192.168.202.0/24" {
		t.Errorf("subnets = %v", res.Subnets)
	}
	if msg := res.SkippedMessage(); !strings.Contains(msg, "192.168.200.0/24") || !strings.Contains(msg, "fake 192.168.200.0/24") {
		t.Errorf("skipped message %q", msg)
	}
	entries := listLeases(t, f.leases)
	if len(entries) != 2 || !entries[0].Live {
		t.Errorf("leases = %+v, want 2 live", entries)
	}
	// Disks: absolute paths, template from the store.
	var prepared []string
	for _, c := range f.prov.Calls() {
		if c.Method == "PrepareDisks" {
			prepared = append(prepared, c.Object)
		}
	}
	if len(prepared) != 2 {
		t.Errorf("PrepareDisks calls = %v", prepared)
	}
	e, err := f.m.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	vm0 := e.VM("vm0")
	if vm0 == nil || vm0.Distro != "tinylinux" || vm0.NICs[0].IP != "192.168.201.2" {
		t.Fatalf("vm0 spec = %+v", vm0)
	}
	scripts := e.VM("vm1").DeployScripts()
	wantScript := spec.PrefixPathVar + "/scripts/" + strings.ReplaceAll(filepath.Join(f.dir, "setup.sh"), "/", "_")
	if len(scripts) != 1 || scripts[0] != wantScript {
		t.Errorf("deploy scripts = %v, want [%s]", scripts, wantScript)
	} else if b, err := os.ReadFile(spec.ExpandPrefixPath(scripts[0], p)); err != nil || string(b) != "echo hi\n" {
		t.Errorf("script copy holds %q (%v)", b, err)
	}
	if !strings.HasPrefix(vm0.Disks[0].Path, spec.PrefixPathVar) {
		t.Errorf("stored disk path %q is not relative to $LAGO_PREFIX_PATH", vm0.Disks[0].Path)
	}
	// Build ran on vm0 with the prefix key; bootstrap on both.
	if len(f.builder.reqs) != 1 || f.builder.reqs[0].VM != "vm0" || !strings.HasPrefix(f.builder.reqs[0].PublicKey, "ssh-"+KeyType+" ") ||
		f.builder.reqs[0].DiskPath != filepath.Join(p, "images", "vm0_root.qcow2") {
		t.Errorf("build requests = %+v", f.builder.reqs)
	}
	if got := strings.Join(f.builder.reqs[0].Step.Args(), " "); got != "--ssh-inject --touch /root/built" {
		t.Errorf("build args = %q", got)
	}
	if len(f.boot.reqs) != 2 || f.boot.batches != 1 {
		t.Fatalf("bootstrap requests = %+v in %d batches, want 2 in one batch", f.boot.reqs, f.boot.batches)
	}
	for _, r := range f.boot.reqs {
		if r.SSHUser != DefaultSSHUser {
			t.Errorf("bootstrap request of %s: ssh user %q, want %q", r.VM, r.SSHUser, DefaultSSHUser)
		}
		want := map[string]string{"vm0": DefaultSSHPassword, "vm1": "secret"}[r.VM]
		if r.RootPassword != want || r.Hostname != r.VM || r.PublicKeyPath != filepath.Join(p, "id_rsa.pub") || !filepath.IsAbs(r.DiskPath) {
			t.Errorf("bootstrap request %+v, want root password %q", r, want)
		}
	}
	// A second init of the same prefix is refused and changes nothing.
	if _, err := f.m.Init(context.Background(), f.opts()); !errs.IsUser(err) {
		t.Errorf("second Init error = %v, want a user error", err)
	}
	if _, err := os.Stat(filepath.Join(p, fileInitialized)); err != nil {
		t.Errorf("second Init damaged the prefix: %v", err)
	}
}

// An init file in which two disks, or two deploy scripts, would get the
// same file in the prefix (names joined with _) is refused before anything
// is made, naming both.
func TestInitRefusesCollidingNames(t *testing.T) {
	tests := []struct {
		name    string
		domains string
		want    []string
	}{
		{
			name: "disks",
			domains: `
  a_b:
    nics: [{net: n0}]
    disks: [{name: c, template_name: tiny}]
  a:
    nics: [{net: n0}]
    disks: [{name: b_c, template_name: tiny}]
`,
			want: []string{"disk b_c of vm a and disk c of vm a_b", "images/a_b_c"},
		},
		{
			name: "deploy scripts",
			domains: `
  vm0:
    nics: [{net: n0}]
    metadata: {deploy-scripts: [$LAGO_INITFILE_PATH/x/a_b.sh]}
  vm1:
    nics: [{net: n0}]
    metadata: {deploy-scripts: [$LAGO_INITFILE_PATH/x/a/b.sh]}
`,
			want: []string{"/x/a/b.sh of vm vm1 and deploy script ", "/x/a_b.sh of vm vm0", "would share the copy scripts/"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newInitFixture(t)
			mustMkdir(t, filepath.Join(f.dir, "x", "a"))
			mustWrite(t, filepath.Join(f.dir, "x", "a_b.sh"), "echo a_b\n")
			mustWrite(t, filepath.Join(f.dir, "x", "a", "b.sh"), "echo a/b\n")
			mustWrite(t, f.initFile, "domains:"+tt.domains+"nets:\n  n0: {type: nat}\n")
			_, err := f.m.Init(context.Background(), f.opts())
			if !errs.IsUser(err) {
				t.Fatalf("Init error = %v, want a user error", err)
			}
			for _, w := range append(tt.want, f.initFile+":") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			f.assertNothingLeft()
			if calls := f.prov.Calls(); len(calls) != 0 {
				t.Errorf("the provider was called: %+v", calls)
			}
		})
	}
}

func TestInitSkipFlags(t *testing.T) {
	f := newInitFixture(t)
	o := f.opts()
	o.SkipBuild, o.SkipBootstrap = true, true
	if _, err := f.m.Init(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if len(f.builder.reqs)+len(f.boot.reqs) != 0 {
		t.Errorf("builder/bootstrap ran despite skip flags: %v %v", f.builder.reqs, f.boot.reqs)
	}
}

func TestInitPassesAbsolutePathsToProvider(t *testing.T) {
	f := newInitFixture(t)
	var mu sync.Mutex
	var got []string
	rec := &recordingProvider{Provider: f.prov, onPrepare: func(name, serial string, disks []string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, serial)
		got = append(got, disks...)
	}}
	f.m.deps.Providers = func(ctx context.Context, name string) (sdk.Provider, error) { return rec, nil }
	if _, err := f.m.Init(context.Background(), f.opts()); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("paths = %v", got)
	}
	for _, p := range got {
		if !filepath.IsAbs(p) || strings.Contains(p, "$") || !strings.HasPrefix(p, f.prefix()) {
			t.Errorf("provider got path %q, want an absolute path in the prefix", p)
		}
	}
}

func TestInitFailureLeavesNothing(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(f *initFixture)
		ctx      func(f *initFixture) (context.Context, context.CancelFunc)
		wantUser bool
		want     string
	}{
		{name: "bad init file", wantUser: true, want: "LagoInitFile", setup: func(f *initFixture) {
			mustWrite(f.t, f.initFile, "domains:\n  vm0:\n    nics: [{net: nope}]\n")
		}},
		{name: "unknown provider", wantUser: true, want: "nowhere", setup: func(f *initFixture) {
			mustWrite(f.t, f.initFile, strings.Replace(testInitFile, "  vm1:\n", "  vm1:\n    vm-provider: nowhere\n", 1))
		}},
		{name: "template fails", want: "template tiny", setup: func(f *initFixture) {
			f.tmpl.fail["tiny"] = fmt.Errorf("hash mismatch: %w", errBoom)
		}},
		{name: "lease store full", wantUser: true, want: "lease subnets", setup: func(f *initFixture) {
			f.prov.SetUsedSubnets("192.168.0.0/16")
		}},
		{name: "used subnets fail", want: "list subnets used", setup: func(f *initFixture) {
			f.prov.FailOn["UsedSubnets"] = errBoom
		}},
		{name: "provider rejects spec", wantUser: true, want: "rejects", setup: func(f *initFixture) {
			f.prov.FailOn["ValidateSpec"] = errBoom
		}},
		{name: "prepare disks fails", want: "prepare disks of vm vm1", setup: func(f *initFixture) {
			f.prov.FailOn["PrepareDisks vm1"] = errBoom
		}},
		{name: "build fails", want: "build vm vm0 disk root step 1 (virt-customize)", setup: func(f *initFixture) {
			f.builder.err = errBoom
		}},
		{name: "bootstrap fails", want: "bootstrap vms vm0, vm1: boom", setup: func(f *initFixture) {
			f.boot.err = errBoom
		}},
		{name: "bootstrap step impossible", want: "bootstrap vm vm1: root-password: the guest has no /etc/shadow", setup: func(f *initFixture) {
			f.boot.err = &BootstrapError{VM: "vm1", Step: "root-password", Err: errors.New("the guest has no /etc/shadow")}
		}},
		{name: "cancelled while preparing disks", want: "context canceled", setup: func(f *initFixture) {
			f.prov.Delay["PrepareDisks vm1"] = time.Hour
		}, ctx: func(f *initFixture) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				for f.prov.Count("PrepareDisks", "vm1") == 0 {
					time.Sleep(2 * time.Millisecond)
				}
				cancel()
			}()
			return ctx, cancel
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newInitFixture(t)
			tt.setup(f)
			ctx, cancel := context.Background(), func() {}
			if tt.ctx != nil {
				ctx, cancel = tt.ctx(f)
			}
			defer cancel()
			_, err := f.m.Init(ctx, f.opts())
			if err == nil {
				t.Fatal("Init succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if errs.IsUser(err) != tt.wantUser {
				t.Errorf("IsUser(%v) = %v, want %v", err, errs.IsUser(err), tt.wantUser)
			}
			f.assertNothingLeft()
		})
	}
}

func TestInitFailureKeepsOtherPrefixes(t *testing.T) {
	f := newInitFixture(t)
	if _, err := f.m.Init(context.Background(), f.opts()); err != nil {
		t.Fatal(err)
	}
	f.prov.FailOn["PrepareDisks vm0"] = errBoom
	o := f.opts()
	o.PrefixName = "second"
	if _, err := f.m.Init(context.Background(), o); !errors.Is(err, errBoom) {
		t.Fatalf("Init error = %v, want boom", err)
	}
	if _, err := os.Stat(filepath.Join(f.workdir, "second")); !os.IsNotExist(err) {
		t.Errorf("failed prefix still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.prefix(), fileInitialized)); err != nil {
		t.Errorf("the first prefix was damaged: %v", err)
	}
	entries := listLeases(t, f.leases)
	if len(entries) != 2 {
		t.Errorf("%d leases, want the first prefix's 2", len(entries))
	}
	if cur, _ := CurrentPrefix(f.workdir); cur != DefaultPrefixName {
		t.Errorf("current = %q", cur)
	}
}

var errKilled = errors.New("killed")

// TestDestroyHalfMadePrefix simulates a kill -9 after each init step and
// checks that Destroy removes everything that was made.
func TestDestroyHalfMadePrefix(t *testing.T) {
	steps := []struct {
		step int
		name string
	}{
		{stepPrefix, "after prefix folder"},
		{stepLeased, "after leasing"},
		{stepSpecs, "after specs"},
		{stepDisks, "after disks"},
		{stepBuilt, "after build and bootstrap"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			f := newInitFixture(t)
			f.m.afterStep = func(step int) error {
				if step == s.step {
					return errKilled
				}
				return nil
			}
			if _, err := f.m.Init(context.Background(), f.opts()); !errors.Is(err, errKilled) {
				t.Fatalf("Init error = %v, want the simulated kill", err)
			}
			if _, err := os.Stat(f.prefix()); err != nil {
				t.Fatalf("the killed init left no prefix: %v", err)
			}
			if err := f.m.Destroy(context.Background(), f.prefix()); err != nil {
				t.Fatalf("Destroy: %v", err)
			}
			if _, err := os.Lstat(f.prefix()); !os.IsNotExist(err) {
				t.Errorf("prefix still there: %v", err)
			}
			entries := listLeases(t, f.leases)
			if len(entries) != 0 {
				t.Errorf("leases left: %+v", entries)
			}
			if o := f.prov.Owned(""); len(o) != 0 {
				t.Errorf("provider objects left: %v", o)
			}
			if f.prov.Count("RemoveOwned", "") == 0 {
				t.Error("RemoveOwned not called on the default provider")
			}
			if s.step < stepSpecs && f.remote.Count("RemoveOwned", "") == 0 {
				t.Error("specs missing, but RemoveOwned not called on every configured provider")
			}
		})
	}
}

func TestDestroyRunningPrefixAndWorkdir(t *testing.T) {
	f := newInitFixture(t)
	ctx := context.Background()
	if _, err := f.m.Init(ctx, f.opts()); err != nil {
		t.Fatal(err)
	}
	o := f.opts()
	o.PrefixName = "other"
	if _, err := f.m.Init(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Start(ctx, f.prefix(), nil, StartOptions{NoWait: true}); err != nil {
		t.Fatal(err)
	}
	uuid, _ := os.ReadFile(filepath.Join(f.prefix(), fileUUID))
	if err := f.m.DestroyInWorkdir(ctx, f.workdir, CurrentLink); err != nil {
		t.Fatal(err)
	}
	if o := f.prov.Owned(string(uuid)); len(o) != 0 {
		t.Errorf("objects of the destroyed prefix left: %v", o)
	}
	if cur, _ := CurrentPrefix(f.workdir); cur != "other" {
		t.Errorf("current = %q after destroying default, want other", cur)
	}
	names, _ := ListPrefixes(f.workdir)
	if len(names) != 1 || names[0] != "other" {
		t.Errorf("prefixes = %v", names)
	}
	entries := listLeases(t, f.leases)
	if len(entries) != 2 {
		t.Errorf("%d leases, want other's 2", len(entries))
	}
	if err := f.m.DestroyAll(ctx, f.workdir); err != nil {
		t.Fatal(err)
	}
	f.assertNothingLeft()
}

func TestSetCurrentAndList(t *testing.T) {
	f := newInitFixture(t)
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		o := f.opts()
		o.PrefixName = n
		o.SetCurrent = n == "b"
		if _, err := f.m.Init(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if cur, _ := CurrentPrefix(f.workdir); cur != "b" {
		t.Errorf("current = %q, want b (set-current)", cur)
	}
	if err := SetCurrent(f.workdir, "a"); err != nil {
		t.Fatal(err)
	}
	if cur, _ := CurrentPrefix(f.workdir); cur != "a" {
		t.Errorf("current = %q, want a", cur)
	}
	if err := SetCurrent(f.workdir, "zzz"); !errs.IsUser(err) {
		t.Errorf("SetCurrent to a missing prefix: %v", err)
	}
	names, err := ListPrefixes(f.workdir)
	if err != nil || strings.Join(names, ",") != "a,b" {
		t.Errorf("ListPrefixes = %v, %v", names, err)
	}
}

// recordingProvider reports the paths PrepareDisks gets.
type recordingProvider struct {
	*envtest.Provider
	onPrepare func(vm, serial string, disks []string)
}

func (r *recordingProvider) PrepareDisks(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) ([]*providerv1.PreparedDisk, error) {
	var disks []string
	for _, d := range vm.GetDisks() {
		disks = append(disks, d.GetPath())
	}
	r.onPrepare(vm.GetName(), vm.GetSerialLogPath(), disks)
	return r.Provider.PrepareDisks(ctx, env, vm)
}

func TestDestroyRefusesNonPrefix(t *testing.T) {
	f := newInitFixture(t)
	dir := filepath.Join(f.dir, "precious")
	mustMkdir(t, dir)
	mustWrite(t, filepath.Join(dir, "thesis.tex"), "years of work")
	err := f.m.Destroy(context.Background(), dir)
	if !errs.IsUser(err) {
		t.Fatalf("Destroy of a non-prefix folder: %v, want a user error", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "thesis.tex")); err != nil {
		t.Errorf("Destroy deleted a non-prefix folder's files: %v", err)
	}
}

func TestDestroyHalfMadeToleratesUnreachableSpareProvider(t *testing.T) {
	f := newInitFixture(t)
	f.m.afterStep = func(step int) error {
		if step == stepLeased {
			return errKilled
		}
		return nil
	}
	if _, err := f.m.Init(context.Background(), f.opts()); !errors.Is(err, errKilled) {
		t.Fatal(err)
	}
	f.m.afterStep = nil
	f.remote.FailOn["RemoveOwned"] = errBoom
	if err := f.m.Destroy(context.Background(), f.prefix()); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if _, err := os.Lstat(f.prefix()); !os.IsNotExist(err) {
		t.Errorf("prefix still there: %v", err)
	}
}

func TestDestroyKeepsPrefixWhenItsProviderFails(t *testing.T) {
	f := newInitFixture(t)
	if _, err := f.m.Init(context.Background(), f.opts()); err != nil {
		t.Fatal(err)
	}
	f.prov.FailOn["RemoveOwned"] = errBoom
	if err := f.m.Destroy(context.Background(), f.prefix()); !errors.Is(err, errBoom) {
		t.Fatalf("Destroy error = %v, want boom", err)
	}
	if _, err := os.Stat(filepath.Join(f.prefix(), fileUUID)); err != nil {
		t.Errorf("prefix removed although its provider objects may remain: %v", err)
	}
	entries := listLeases(t, f.leases)
	if len(entries) != 2 {
		t.Errorf("leases released before the provider objects were gone: %+v", entries)
	}
	delete(f.prov.FailOn, "RemoveOwned")
	if err := f.m.Destroy(context.Background(), f.prefix()); err != nil {
		t.Fatalf("second Destroy: %v", err)
	}
}

func TestDestroyPrefixKilledWhileWritingUUID(t *testing.T) {
	f := newInitFixture(t)
	p := filepath.Join(f.dir, "half")
	mustMkdir(t, p)
	mustWrite(t, filepath.Join(p, ".uuid.tmp-123"), "0123")
	if err := f.m.Destroy(context.Background(), p); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Errorf("half-made prefix still there: %v", err)
	}
	if n := f.prov.Count("RemoveOwned", ""); n != 0 {
		t.Errorf("RemoveOwned called %d times for a prefix without uuid", n)
	}
}

func TestInitOnRemoteDisks(t *testing.T) {
	f := newInitFixture(t)
	f.prov.RemoteDisks = true
	// vm0 has build steps: they need a local file, so init fails cleanly.
	_, err := f.m.Init(context.Background(), f.opts())
	if !errs.IsUser(err) || !strings.Contains(err.Error(), "not in a local file") {
		t.Fatalf("Init error = %v, want a user error about build steps on remote disks", err)
	}
	f.assertNothingLeft()
	// Without build steps, init succeeds and skips the bootstrap.
	o := f.opts()
	o.SkipBuild = true
	if _, err := f.m.Init(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if len(f.boot.reqs) != 0 {
		t.Errorf("bootstrapped remote volumes: %+v", f.boot.reqs)
	}
}

func TestTwoProviderInstances(t *testing.T) {
	f := newInitFixture(t)
	mustWrite(t, f.initFile, strings.Replace(testInitFile, "  vm1:\n", "  vm1:\n    vm-provider: remote\n", 1))
	ctx := context.Background()
	res, err := f.m.Init(ctx, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if f.prov.Count("PrepareDisks", "vm1") != 0 || f.remote.Count("PrepareDisks", "vm1") != 1 {
		t.Errorf("vm1's disks prepared on the wrong provider")
	}
	if err := f.m.Start(ctx, f.prefix(), nil, StartOptions{}); err != nil {
		t.Fatal(err)
	}
	uuid := res.UUID
	checks := []struct {
		p          *envtest.Provider
		name, what string
		want       string
	}{
		{f.prov, "n0", "net", "up"}, {f.prov, "n1", "net", "down"}, {f.prov, "vm0", "vm", "running"},
		{f.remote, "n0", "net", "up"}, {f.remote, "n1", "net", "up"}, {f.remote, "vm1", "vm", "running"},
	}
	for _, c := range checks {
		got := c.p.NetStateOf(uuid, c.name)
		if c.what == "vm" {
			got = c.p.VMStateOf(uuid, c.name)
		}
		if got != c.want {
			t.Errorf("%s %s is %q, want %q", c.what, c.name, got, c.want)
		}
	}
	// Stopping vm1 frees n0 and n1 on remote; n0 on local stays for vm0.
	if err := f.m.Stop(ctx, f.prefix(), []string{"vm1"}); err != nil {
		t.Fatal(err)
	}
	if st := f.remote.NetStateOf(uuid, "n0"); st != "down" {
		t.Errorf("n0 on remote is %q, want down", st)
	}
	if st := f.prov.NetStateOf(uuid, "n0"); st != "up" {
		t.Errorf("n0 on local is %q, want up (vm0 uses it)", st)
	}
	if err := f.m.Destroy(ctx, f.prefix()); err != nil {
		t.Fatal(err)
	}
	if len(f.prov.Owned(""))+len(f.remote.Owned("")) != 0 {
		t.Errorf("objects left: %v %v", f.prov.Owned(""), f.remote.Owned(""))
	}
}

func TestDestroyFoundPrefix(t *testing.T) {
	f := newInitFixture(t)
	ctx := context.Background()
	if _, err := f.m.Init(ctx, f.opts()); err != nil {
		t.Fatal(err)
	}
	p, err := prefix.Find(prefix.FindOptions{WorkdirPath: f.workdir})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.m.DestroyPrefix(ctx, p); err != nil {
		t.Fatal(err)
	}
	f.assertNothingLeft()
}

// TestDestroyUnlinkedWorkdir: a first init killed before it linked
// `current` leaves a workdir that prefix discovery does not see; destroy
// must still remove it whole, and refuse anything that is not such a
// leftover.
func TestDestroyUnlinkedWorkdir(t *testing.T) {
	f := newInitFixture(t)
	f.m.afterStep = func(step int) error {
		if step == stepDisks {
			return errKilled
		}
		return nil
	}
	if _, err := f.m.Init(context.Background(), f.opts()); !errors.Is(err, errKilled) {
		t.Fatalf("Init error = %v, want the simulated kill", err)
	}
	// A new workdir is linked as soon as its prefix exists; a kill before
	// that link leaves none, which is what this test is about.
	if err := os.Remove(filepath.Join(f.workdir, CurrentLink)); err != nil {
		t.Fatalf("a killed first init left no %s link: %v", CurrentLink, err)
	}
	// A folder killed before its uuid was written is empty, and a kill in
	// the middle of linking `current` leaves the link's temp file.
	mustMkdir(t, filepath.Join(f.workdir, "empty"))
	if err := os.Symlink("default", filepath.Join(f.workdir, ".current.tmp-1-0")); err != nil {
		t.Fatal(err)
	}
	if err := f.m.DestroyUnlinkedWorkdir(context.Background(), f.workdir); err != nil {
		t.Fatalf("DestroyUnlinkedWorkdir: %v", err)
	}
	if _, err := os.Lstat(f.workdir); !os.IsNotExist(err) {
		t.Errorf("workdir still there: %v", err)
	}
	if entries := listLeases(t, f.leases); len(entries) != 0 {
		t.Errorf("leases left: %+v", entries)
	}
	if o := f.prov.Owned(""); len(o) != 0 {
		t.Errorf("provider objects left: %v", o)
	}

	for name, setup := range map[string]func(dir string){
		"a file": func(dir string) { mustWrite(t, filepath.Join(dir, "notes.txt"), "mine") },
		"an initialized prefix": func(dir string) {
			mustMkdir(t, filepath.Join(dir, "p"))
			mustWrite(t, filepath.Join(dir, "p", fileInitialized), "")
		},
		"a current link": func(dir string) { _ = os.Symlink("p", filepath.Join(dir, CurrentLink)) },
	} {
		dir := filepath.Join(t.TempDir(), ".lago")
		mustMkdir(t, dir)
		setup(dir)
		if err := f.m.DestroyUnlinkedWorkdir(context.Background(), dir); err == nil {
			t.Errorf("a workdir with %s was destroyed", name)
		}
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("refusing a workdir with %s removed it: %v", name, err)
		}
	}
}

// startRecorder records the template images StartVM is given.
type startRecorder struct {
	*envtest.Provider
	mu        sync.Mutex
	templates map[string]string
}

func (r *startRecorder) StartVM(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) error {
	r.mu.Lock()
	for _, d := range vm.GetDisks() {
		if d.GetType() == "template" {
			r.templates[vm.GetName()] = d.GetTemplatePath() + "|" + d.GetTemplateKey()
		}
	}
	r.mu.Unlock()
	return r.Provider.StartVM(ctx, env, vm)
}

// TestStartKnowsTheTemplateImage: a provider that copies templates at
// start (remote libvirt) must learn the store image in a later process
// than init's, so init records it in the VM spec.
func TestStartKnowsTheTemplateImage(t *testing.T) {
	f := newInitFixture(t)
	rec := &startRecorder{Provider: f.prov, templates: map[string]string{}}
	f.m.deps.Providers = func(ctx context.Context, name string) (sdk.Provider, error) { return rec, nil }
	res, err := f.m.Init(context.Background(), f.opts())
	if err != nil {
		t.Fatal(err)
	}
	// A fresh manager, as a later `lago start` would have.
	m := New(Options{DefaultProvider: "local"}, Deps{Providers: f.m.deps.Providers, SSH: newFakeSSH()})
	if err := m.Start(context.Background(), res.Prefix, nil, StartOptions{NoWait: true}); err != nil {
		t.Fatal(err)
	}
	if len(rec.templates) == 0 {
		t.Fatal("no template disk reached StartVM")
	}
	for vm, got := range rec.templates {
		path, key, _ := strings.Cut(got, "|")
		if !filepath.IsAbs(path) || key == "" {
			t.Errorf("StartVM of %s got template image %q key %q, want the store path and key", vm, path, key)
		}
	}
}

// TestInitTypedErrors: a full lease store and an existing prefix reach
// Init's caller as sentinels it can test with errors.Is (the Go API
// re-exports them), and change nothing.
func TestInitTypedErrors(t *testing.T) {
	t.Run("lease store full", func(t *testing.T) {
		f := newInitFixture(t)
		var used []string
		for i := 200; i < 256; i++ {
			used = append(used, fmt.Sprintf("192.168.%d.0/24", i))
		}
		f.prov.SetUsedSubnets(used...)
		_, err := f.m.Init(context.Background(), f.opts())
		if !errors.Is(err, lease.ErrFull) {
			t.Fatalf("Init with every subnet in use: %v, want lease.ErrFull", err)
		}
		f.assertNothingLeft()
	})
	t.Run("prefix exists", func(t *testing.T) {
		f := newInitFixture(t)
		if _, err := f.m.Init(context.Background(), f.opts()); err != nil {
			t.Fatal(err)
		}
		_, err := f.m.Init(context.Background(), f.opts())
		if !errors.Is(err, ErrPrefixExists) || !errs.IsUser(err) {
			t.Fatalf("second Init: %v, want a user error wrapping ErrPrefixExists", err)
		}
	})
}
