package env

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/lago-go/lago/core/env/envtest"
	"github.com/lago-go/lago/core/spec"
	"github.com/lago-go/lago/sdk"
)

const testUUID = "0123456789abcdef0123456789abcdef"

// fixture is a prefix on disk plus fakes behind a Manager.
type fixture struct {
	t      *testing.T
	dir    string
	prefix string
	prov   *envtest.Provider
	ssh    *fakeSSH
	m      *Manager
}

// testVM is a VM on the given nets (first NIC on the first, the
// management net), with IPs derived from its index.
func testVM(i int, nets ...string) *spec.VM {
	vm := &spec.VM{Name: fmt.Sprintf("vm%d", i), Memory: 512, MgmtNet: nets[0]}
	for j, n := range nets {
		ip := fmt.Sprintf("192.168.%d.%d", 200+j, 10+i)
		vm.NICs = append(vm.NICs, spec.NIC{Net: n, IP: ip})
	}
	vm.Disks = []spec.Disk{{Name: "root", Dev: "vda", Type: spec.DiskTemplate, Format: "qcow2",
		Path: spec.PrefixPathVar + "/images/" + vm.Name + "_root.qcow2", TemplateName: "tiny"}}
	return vm
}

func testNet(name string, octet int, mgmt bool) *spec.Net {
	return &spec.Net{Name: name, Type: spec.NetNAT, Gw: fmt.Sprintf("192.168.%d.1", octet), Management: mgmt,
		DHCP: &spec.DHCP{Start: 100, End: 254}, Mapping: map[string]string{}}
}

// writePrefix writes an initialized prefix holding nets and vms.
func writePrefix(t *testing.T, path string, nets []*spec.Net, vms []*spec.VM) {
	t.Helper()
	mustMkdir(t, filepath.Join(path, dirVirt))
	mustWrite(t, filepath.Join(path, fileUUID), testUUID)
	var names spec.Env
	for _, n := range nets {
		names.Nets = append(names.Nets, n.Name)
		mustWriteJSON(t, filepath.Join(path, dirVirt, "net-"+n.Name), n)
	}
	for _, v := range vms {
		names.VMs = append(names.VMs, v.Name)
		mustWriteJSON(t, filepath.Join(path, dirVirt, "vm-"+v.Name), v)
	}
	mustWriteJSON(t, filepath.Join(path, dirVirt, fileEnv), names)
	mustWrite(t, filepath.Join(path, fileInitialized), "")
}

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustWriteJSON(t *testing.T, p string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, p, string(b))
}

// newFixture builds a prefix with nets n0 (management) and n1, vm0 and
// vm1 on n0, and vm2 on n0 and n1.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, dir: dir, prefix: filepath.Join(dir, "default"), prov: envtest.NewProvider(), ssh: newFakeSSH()}
	nets := []*spec.Net{testNet("n0", 200, true), testNet("n1", 201, false)}
	vms := []*spec.VM{testVM(0, "n0"), testVM(1, "n0"), testVM(2, "n0", "n1")}
	writePrefix(t, f.prefix, nets, vms)
	f.m = f.manager(Options{})
	return f
}

func (f *fixture) manager(o Options) *Manager {
	if o.DefaultProvider == "" {
		o.DefaultProvider = "local"
	}
	return New(o, Deps{
		Providers: func(ctx context.Context, name string) (sdk.Provider, error) {
			if name != "local" {
				return nil, fmt.Errorf("no provider instance %q", name)
			}
			return f.prov, nil
		},
		SSH: f.ssh,
	})
}

// fakeSSH answers WaitReady for hosts marked ready (after an optional
// delay) and records Run calls.
type fakeSSH struct {
	mu       sync.Mutex
	never    map[string]bool
	delay    map[string]time.Duration
	runs     []string
	exit     int
	runErr   error
	targets  []SSHTarget
	waits    []string // VMs WaitReady was called for, in order
	released []string
	// boots counts the boot id reads per VM: every read after the first
	// sees a new boot, unless sameBoot says the VM never reboots.
	boots    map[string]int
	sameBoot map[string]bool
}

func newFakeSSH() *fakeSSH {
	return &fakeSSH{never: map[string]bool{}, delay: map[string]time.Duration{},
		boots: map[string]int{}, sameBoot: map[string]bool{}}
}

func (s *fakeSSH) WaitReady(ctx context.Context, t SSHTarget) error {
	s.mu.Lock()
	never, d := s.never[t.VM], s.delay[t.VM]
	s.targets = append(s.targets, t)
	s.waits = append(s.waits, t.VM)
	s.mu.Unlock()
	if never {
		<-ctx.Done()
		return fmt.Errorf("dial %s: connection refused: %w", t.Host, ctx.Err())
	}
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *fakeSSH) Run(ctx context.Context, t SSHTarget, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs = append(s.runs, fmt.Sprint(t.VM, " ", argv))
	s.targets = append(s.targets, t)
	if s.runErr != nil {
		return -1, s.runErr
	}
	if len(argv) == 2 && argv[0] == "cat" && argv[1] == bootIDPath {
		if stdout != nil {
			fmt.Fprintf(stdout, "boot-%d\n", s.boots[t.VM])
		}
		if !s.sameBoot[t.VM] {
			s.boots[t.VM]++
		}
		return s.exit, nil
	}
	if stdout != nil {
		fmt.Fprintf(stdout, "ran %v on %s\n", argv, t.Host)
	}
	return s.exit, nil
}

// Release and ReleaseAll record what was released, as "vm0" or "all:<uuid>".
func (s *fakeSSH) Release(_ context.Context, t SSHTarget) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.released = append(s.released, t.VM)
}

func (s *fakeSSH) ReleaseAll(_ context.Context, uuid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.released = append(s.released, "all:"+uuid)
}

func (s *fakeSSH) Released() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]string(nil), s.released...)
	s.released = nil
	sort.Strings(out)
	return out
}

func (s *fakeSSH) Runs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.runs...)
}

var errBoom = errors.New("boom")
