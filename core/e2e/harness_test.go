//go:build e2e

// Package e2e_test drives the built bin/lago and its plugins against a real
// libvirtd with real TCG guests (the tiny template of test/e2e/mktemplate.sh).
// Run it through test/e2e/run.sh (`make e2e`), which creates the network
// namespace, the scratch folders and the environment variables read here;
// without them every test fails with a pointer to run.sh instead of
// skipping, so a broken harness is never counted as a pass.
package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	lagossh "github.com/lago-go/lago/core/ssh"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Environment set by test/e2e/run.sh.
type harnessEnv struct {
	Bin          string // LAGO_E2E_BIN
	PluginPath   string // LAGO_PLUGIN_PATH
	TemplateRepo string // LAGO_E2E_TEMPLATE_REPO: the tiny template's repo.metadata
	Root         string // LAGO_E2E_ROOT: scratch folder of the run
	LeaseDir     string // LAGO_E2E_LEASE_DIR
	Store        string // LAGO_E2E_STORE
	Repos        string // LAGO_E2E_REPOS
	URI          string // LAGO_E2E_URI: the local libvirtd
	RemoteURL    string // LAGO_E2E_REMOTE_URL: the remote libvirtd (may be empty)
	NetNS        string // LAGO_E2E_NETNS
}

func loadEnv(t *testing.T) harnessEnv {
	t.Helper()
	e := harnessEnv{
		Bin:          os.Getenv("LAGO_E2E_BIN"),
		PluginPath:   os.Getenv("LAGO_PLUGIN_PATH"),
		TemplateRepo: os.Getenv("LAGO_E2E_TEMPLATE_REPO"),
		Root:         os.Getenv("LAGO_E2E_ROOT"),
		LeaseDir:     os.Getenv("LAGO_E2E_LEASE_DIR"),
		Store:        os.Getenv("LAGO_E2E_STORE"),
		Repos:        os.Getenv("LAGO_E2E_REPOS"),
		URI:          os.Getenv("LAGO_E2E_URI"),
		RemoteURL:    os.Getenv("LAGO_E2E_REMOTE_URL"),
		NetNS:        os.Getenv("LAGO_E2E_NETNS"),
	}
	missing := []string{}
	for name, v := range map[string]string{
		"LAGO_E2E_BIN": e.Bin, "LAGO_PLUGIN_PATH": e.PluginPath, "LAGO_E2E_TEMPLATE_REPO": e.TemplateRepo,
		"LAGO_E2E_ROOT": e.Root, "LAGO_E2E_LEASE_DIR": e.LeaseDir, "LAGO_E2E_STORE": e.Store,
		"LAGO_E2E_REPOS": e.Repos, "LAGO_E2E_URI": e.URI,
	} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("e2e tests run through test/e2e/run.sh (make e2e); missing %s", strings.Join(missing, ", "))
	}
	return e
}

// harness is one test's scratch workdir and lago configuration.
type harness struct {
	t   *testing.T
	env harnessEnv
	// dir is the test's folder: the init file and the .lago workdir live
	// here, so every libvirt object of the test names it in its XML.
	dir string
	// conf is the LAGO_CONFIG file of the test.
	conf string
	// extraEnv is added to lago's environment.
	extraEnv []string
	// uuids are the uuids of the prefixes initEnv made (shared by subtests).
	uuids *[]string
}

// localProvider is the provider configuration every test uses: guests run
// under TCG because KVM is unusable on the CI hosts.
const localProvider = `[provider local-libvirt]
plugin = libvirt
domain_type = qemu
`

func newHarness(t *testing.T) *harness {
	t.Helper()
	e := loadEnv(t)
	work := filepath.Join(e.Root, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(work, strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	// qemu runs as another user and must reach the disks below dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, env: e, dir: dir, conf: filepath.Join(dir, "lago.conf"), uuids: new([]string)}
	h.writeConfig("")
	t.Cleanup(h.cleanup)
	return h
}

// sub returns the harness for a subtest: failures then end the subtest, not
// its parent (FailNow must run on the failing test's own goroutine).
func (h *harness) sub(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

// writeConfig writes the test's lago.conf: scratch lease dir and template
// store, TCG local provider, plus extra sections.
func (h *harness) writeConfig(extra string) {
	h.t.Helper()
	conf := fmt.Sprintf("[lago]\nlease_dir = %s\n\n[init]\ntemplate_store = %s\ntemplate_repos = %s\n\n%s\n%s",
		h.env.LeaseDir, h.env.Store, h.env.Repos, localProvider, extra)
	if err := os.WriteFile(h.conf, []byte(conf), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// result of one lago run.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("lago %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// lagoTimeout bounds one lago invocation; starts of several TCG guests on a
// busy 2-core host are the slowest.
const lagoTimeout = 10 * time.Minute

func (h *harness) command(ctx context.Context, stdin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, h.env.Bin, args...)
	cmd.Dir = h.dir
	cmd.Env = append(os.Environ(),
		"LAGO_CONFIG="+h.conf,
		"LAGO_PLUGIN_PATH="+h.env.PluginPath,
	)
	cmd.Env = append(cmd.Env, h.extraEnv...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// lago runs bin/lago with args in the test's folder and returns what happened.
func (h *harness) lago(args ...string) result {
	return h.lagoStdin("", args...)
}

func (h *harness) lagoStdin(stdin string, args ...string) result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), lagoTimeout)
	defer cancel()
	cmd := h.command(ctx, stdin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			h.t.Fatalf("lago %s: %v", strings.Join(args, " "), err)
		}
		r.code = ee.ExitCode()
	}
	h.t.Logf("lago %s: exit %d in %s", strings.Join(args, " "), r.code, time.Since(start).Round(time.Millisecond))
	return r
}

// must runs lago and fails the test unless it exits 0; it returns stdout.
func (h *harness) must(args ...string) string {
	h.t.Helper()
	r := h.lago(args...)
	if r.code != 0 {
		h.t.Fatalf("%s", r)
	}
	return r.stdout
}

// shell runs argv in vm through `lago shell` and returns stdout; exit 0 required.
func (h *harness) shell(vm string, argv ...string) string {
	h.t.Helper()
	return h.must(append([]string{"shell", vm}, argv...)...)
}

// writeInitFile writes the init file and returns its path.
func (h *harness) writeInitFile(content string) string {
	h.t.Helper()
	p := filepath.Join(h.dir, "LagoInitFile")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// initEnv runs `lago init` with the tiny template's repository. Bootstrap
// (virt-sysprep) is skipped unless asked: the template logs in with Lago's
// default root password, and the bootstrap test covers key injection.
func (h *harness) initEnv(initFile string, extra ...string) {
	h.t.Helper()
	args := append([]string{"init", "--template-repo-path", h.env.TemplateRepo}, extra...)
	if !contains(extra, "--bootstrap") {
		args = append(args, "--skip-bootstrap")
	} else {
		args = remove(args, "--bootstrap")
	}
	args = append(args, initFile)
	h.must(args...)
	if id := h.uuid(); id != "" {
		*h.uuids = append(*h.uuids, id)
	}
}

// uuid is the uuid of the current prefix, or "" when there is none.
func (h *harness) uuid() string {
	b, err := os.ReadFile(filepath.Join(h.dir, ".lago", "current", "uuid"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// muxSockets lists the ssh mux sockets of the prefix with uuid.
func (h *harness) muxSockets(uuid string) []string { return h.muxFiles(uuid, ".sock") }

// muxFiles lists the ssh mux files (sockets and locks) of the prefix with
// uuid whose names end in suffix.
func (h *harness) muxFiles(uuid, suffix string) []string {
	dir, err := lagossh.MuxDir()
	if err != nil {
		h.t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, uuid+"-*"+suffix))
	return files
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func remove(list []string, s string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// status returns `lago --out-format json status` decoded.
func (h *harness) status() statusDoc {
	h.t.Helper()
	out := h.must("--out-format", "json", "status")
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		h.t.Fatalf("lago status json: %v\n%s", err, out)
	}
	return statusDoc{t: h.t, raw: doc, text: out}
}

// statusDoc navigates the status tree ({"Prefix": {"VMs": {...}, "Networks": {...}}}).
type statusDoc struct {
	t    *testing.T
	raw  map[string]any
	text string
}

func (s statusDoc) prefix() map[string]any {
	if p, ok := s.raw["Prefix"].(map[string]any); ok {
		return p
	}
	return s.raw
}

func (s statusDoc) vm(name string) map[string]any {
	s.t.Helper()
	vms, _ := s.prefix()["VMs"].(map[string]any)
	vm, ok := vms[name].(map[string]any)
	if !ok {
		s.t.Fatalf("status has no VM %q:\n%s", name, s.text)
	}
	return vm
}

func (s statusDoc) vmStatus(name string) string {
	s.t.Helper()
	st, _ := s.vm(name)["status"].(string)
	return st
}

// vmIP returns the ip of vm's NIC on net.
func (s statusDoc) vmIP(name, net string) string {
	s.t.Helper()
	nics, _ := s.vm(name)["NICs"].(map[string]any)
	for _, n := range nics {
		nic, _ := n.(map[string]any)
		if nic["network"] == net {
			ip, _ := nic["ip"].(string)
			return ip
		}
	}
	s.t.Fatalf("status: VM %q has no NIC on %q:\n%s", name, net, s.text)
	return ""
}

func (s statusDoc) netStatus(name string) string {
	s.t.Helper()
	nets, _ := s.prefix()["Networks"].(map[string]any)
	n, ok := nets[name].(map[string]any)
	if !ok {
		s.t.Fatalf("status has no network %q:\n%s", name, s.text)
	}
	st, _ := n["status"].(string)
	return st
}

// virsh runs virsh against uri and returns stdout.
func virsh(t *testing.T, uri string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "virsh", append([]string{"-q", "-c", uri}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("virsh %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// libvirtObjects lists the domains and networks on uri whose XML mentions
// marker (the owner tag names the prefix path; local disks live below it).
// State says "running", "shut off", "active", "inactive".
type libvirtObject struct{ Kind, Name string }

func libvirtObjects(t *testing.T, uri, marker string) []libvirtObject {
	t.Helper()
	var found []libvirtObject
	doms, err := virsh(t, uri, "list", "--all", "--name")
	if err != nil {
		t.Fatalf("list domains: %v", err)
	}
	for _, name := range strings.Fields(doms) {
		x, err := virsh(t, uri, "dumpxml", name)
		if err == nil && strings.Contains(x, marker) {
			found = append(found, libvirtObject{"domain", name})
		}
	}
	nets, err := virsh(t, uri, "net-list", "--all", "--name")
	if err != nil {
		t.Fatalf("list networks: %v", err)
	}
	for _, name := range strings.Fields(nets) {
		x, err := virsh(t, uri, "net-dumpxml", name)
		if err == nil && strings.Contains(x, marker) {
			found = append(found, libvirtObject{"network", name})
		}
	}
	return found
}

// domain returns the libvirt name of the test's domain whose name ends
// with "-"+vm (libvirt names are <uuid[:8]>-<vm>), or "" when none exists.
func (h *harness) domain(uri, vm string) string {
	h.t.Helper()
	for _, o := range libvirtObjects(h.t, uri, h.dir) {
		if o.Kind == "domain" && strings.HasSuffix(o.Name, "-"+vm) {
			return o.Name
		}
	}
	return ""
}

// domainState returns virsh domstate of the test's domain vm, or "" when
// it does not exist.
func (h *harness) domainState(uri, vm string) string {
	h.t.Helper()
	name := h.domain(uri, vm)
	if name == "" {
		return ""
	}
	st, err := virsh(h.t, uri, "domstate", name)
	if err != nil {
		h.t.Fatal(err)
	}
	return strings.TrimSpace(st)
}

// taps lists the host-side tap devices of the running domain vm.
func (h *harness) taps(vm string) []string {
	h.t.Helper()
	x, err := virsh(h.t, h.env.URI, "dumpxml", h.domain(h.env.URI, vm))
	if err != nil {
		h.t.Fatal(err)
	}
	var d struct {
		Interfaces []struct {
			Target struct {
				Dev string `xml:"dev,attr"`
			} `xml:"target"`
		} `xml:"devices>interface"`
	}
	if err := xml.Unmarshal([]byte(x), &d); err != nil {
		h.t.Fatalf("domain xml of %s: %v", vm, err)
	}
	var taps []string
	for _, i := range d.Interfaces {
		if i.Target.Dev != "" {
			taps = append(taps, i.Target.Dev)
		}
	}
	if len(taps) == 0 {
		h.t.Fatalf("running domain %s has no tap device:\n%s", vm, x)
	}
	return taps
}

// waitAgent waits until the guest agent of vm answers: the template starts
// it last in its boot, possibly after sshd already answers.
func (h *harness) waitAgent(vm string) {
	h.t.Helper()
	dom := h.domain(h.env.URI, vm)
	eventually(h.t, time.Minute, 200*time.Millisecond, "the guest agent of "+vm+" answers", func() bool {
		_, err := virsh(h.t, h.env.URI, "qemu-agent-command", dom, `{"execute":"guest-ping"}`)
		return err == nil
	})
}

// freezeStatus asks the guest agent of vm whether its filesystems are
// frozen ("frozen" or "thawed").
func (h *harness) freezeStatus(vm string) string {
	h.t.Helper()
	out, err := virsh(h.t, h.env.URI, "qemu-agent-command", h.domain(h.env.URI, vm), `{"execute":"guest-fsfreeze-status"}`)
	if err != nil {
		h.t.Fatalf("guest agent of %s: %v", vm, err)
	}
	var r struct{ Return string }
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		h.t.Fatalf("guest agent of %s answered %q: %v", vm, out, err)
	}
	return r.Return
}

// leasesOf lists the lease files in the lease dir that belong to a prefix
// below the test's folder.
func (h *harness) leasesOf() []string {
	h.t.Helper()
	entries, err := os.ReadDir(h.env.LeaseDir)
	if err != nil && !os.IsNotExist(err) {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lease") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(h.env.LeaseDir, e.Name()))
		if err == nil && strings.Contains(string(data), h.dir) {
			out = append(out, e.Name())
		}
	}
	return out
}

// assertNothingLeft fails unless no domain or network of the test remains on
// the given libvirt URIs and no lease names the test's prefix.
func (h *harness) assertNothingLeft(uris ...string) {
	h.t.Helper()
	if len(uris) == 0 {
		uris = []string{h.env.URI}
	}
	for _, uri := range uris {
		if left := libvirtObjects(h.t, uri, h.dir); len(left) > 0 {
			h.t.Errorf("left on %s: %v", uri, left)
		}
	}
	if l := h.leasesOf(); len(l) > 0 {
		h.t.Errorf("leases left in %s: %v", h.env.LeaseDir, l)
	}
	for _, id := range *h.uuids {
		if files := h.muxFiles(id, ""); len(files) > 0 {
			h.t.Errorf("ssh mux files of prefix %s left: %v", id, files)
		}
	}
}

// cleanup destroys what a failed test left so the next test starts clean,
// then removes the test's folder.
func (h *harness) cleanup() {
	if _, err := os.Stat(filepath.Join(h.dir, ".lago")); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		_ = h.command(ctx, "", "destroy", "--yes").Run()
		cancel()
	}
	uris := []string{h.env.URI}
	if h.env.RemoteURL != "" {
		uris = append(uris, h.env.RemoteURL)
	}
	for _, uri := range uris {
		for _, o := range libvirtObjectsQuiet(uri, h.dir) {
			h.t.Logf("cleanup: removing leftover %s %s on %s", o.Kind, o.Name, uri)
			if o.Kind == "domain" {
				_ = exec.Command("virsh", "-q", "-c", uri, "destroy", o.Name).Run()
				_ = exec.Command("virsh", "-q", "-c", uri, "undefine", o.Name, "--snapshots-metadata").Run()
			} else {
				_ = exec.Command("virsh", "-q", "-c", uri, "net-destroy", o.Name).Run()
				_ = exec.Command("virsh", "-q", "-c", uri, "net-undefine", o.Name).Run()
			}
		}
	}
	for _, l := range h.leasesOfQuiet() {
		_ = os.Remove(filepath.Join(h.env.LeaseDir, l))
	}
	_ = os.RemoveAll(h.dir)
}

func libvirtObjectsQuiet(uri, marker string) []libvirtObject {
	var found []libvirtObject
	list := func(args ...string) []string {
		out, _ := exec.Command("virsh", append([]string{"-q", "-c", uri}, args...)...).Output()
		return strings.Fields(string(out))
	}
	for _, name := range list("list", "--all", "--name") {
		x, _ := exec.Command("virsh", "-q", "-c", uri, "dumpxml", name).Output()
		if strings.Contains(string(x), marker) {
			found = append(found, libvirtObject{"domain", name})
		}
	}
	for _, name := range list("net-list", "--all", "--name") {
		x, _ := exec.Command("virsh", "-q", "-c", uri, "net-dumpxml", name).Output()
		if strings.Contains(string(x), marker) {
			found = append(found, libvirtObject{"network", name})
		}
	}
	return found
}

func (h *harness) leasesOfQuiet() []string {
	entries, _ := os.ReadDir(h.env.LeaseDir)
	var out []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(h.env.LeaseDir, e.Name()))
		if err == nil && strings.HasSuffix(e.Name(), ".lease") && strings.Contains(string(data), h.dir) {
			out = append(out, e.Name())
		}
	}
	return out
}

// eventually polls cond every interval until it holds or timeout passes.
func eventually(t *testing.T, timeout, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(interval)
	}
}
