package prestart

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lago-go/lago/core/pluginhost/discovery"
	"github.com/lago-go/lago/sdk/plugininfo"
)

// The test binary plays three parts, chosen by modeEnv: a plugin (prints a
// handshake line and a log line, then waits to be killed), a front-end
// (prestarts the plugin and execs the engine) and the engine (takes the
// plugin over and reports what it found as JSON).
const modeEnv = "PRESTART_TEST_MODE"

const handshake = "1|1|unix|/tmp/plugin-test|grpc"

func TestMain(m *testing.M) {
	switch os.Getenv(modeEnv) {
	case "plugin":
		if os.Getenv(plugininfo.MagicCookieKey) != plugininfo.MagicCookieValue {
			fmt.Println("no magic cookie")
			os.Exit(3)
		}
		fmt.Println(handshake)
		fmt.Fprintln(os.Stderr, "plugin log line")
		time.Sleep(time.Minute)
		os.Exit(0)
	case "frontend":
		os.Exit(frontend())
	case "engine":
		os.Exit(engine())
	}
	os.Exit(m.Run())
}

// withMode is the environment with modeEnv set to mode (and only once:
// the first of duplicate entries wins).
func withMode(mode string) []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, modeEnv+"=") {
			env = append(env, e)
		}
	}
	return append(env, modeEnv+"="+mode)
}

func frontend() int {
	runtime.LockOSThread()
	self, err := os.Executable()
	if err != nil {
		return 10
	}
	environ := withMode("plugin")
	ps, err := Start(self, environ)
	if err != nil {
		fmt.Println("start:", err)
		return 11
	}
	kv, err := ps.ExecEnv()
	if err != nil {
		fmt.Println("exec env:", err)
		return 12
	}
	env := ExecEnviron(withMode("engine"), kv)
	err = syscall.Exec(self, []string{self}, env)
	fmt.Println("exec:", err)
	return 13
}

// report is what the engine part found.
type report struct {
	Handshake   string `json:"handshake"`
	Log         string `json:"log"`
	EnvGone     bool   `json:"env_gone"`
	Cloexec     bool   `json:"cloexec"`
	AliveBefore bool   `json:"alive_before"`
	GoneAfter   bool   `json:"gone_after"`
	Err         string `json:"err,omitempty"`
}

func engine() int {
	var r report
	ps, err := Take()
	if err != nil || ps == nil {
		r.Err = fmt.Sprintf("take: %v (%v)", err, ps)
		return emit(r)
	}
	_, r.EnvGone = os.LookupEnv(Env)
	r.EnvGone = !r.EnvGone
	r.Cloexec = true
	for _, f := range []*os.File{ps.Stdout, ps.Stderr} {
		flags, err := fcntl(int(f.Fd()), syscall.F_GETFD, 0)
		if err != nil || flags&syscall.FD_CLOEXEC == 0 {
			r.Cloexec = false
		}
	}
	line, _ := bufio.NewReader(ps.Stdout).ReadString('\n')
	r.Handshake = strings.TrimSpace(line)
	line, _ = bufio.NewReader(ps.Stderr).ReadString('\n')
	r.Log = strings.TrimSpace(line)
	r.AliveBefore = syscall.Kill(ps.Pid, 0) == nil
	ps.Discard()
	r.GoneAfter = errors.Is(syscall.Kill(ps.Pid, 0), syscall.ESRCH)
	return emit(r)
}

func emit(r report) int {
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	return 0
}

// TestThroughExec runs the real sequence: a front-end process prestarts a
// plugin and execs the engine, which must find the plugin alive (its
// parent-death signal must not fire on exec), read its handshake and log
// from the inherited pipes, hide the variable from its own children, and
// leave no process behind.
func TestThroughExec(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = withMode("frontend")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("front-end: %v, output %q", err, out)
	}
	var r report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("engine output %q: %v", out, err)
	}
	want := report{Handshake: handshake, Log: "plugin log line", EnvGone: true, Cloexec: true, AliveBefore: true, GoneAfter: true}
	if r != want {
		t.Fatalf("engine found %+v, want %+v", r, want)
	}
}

func TestTakeRejectsBadValues(t *testing.T) {
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	own := child.Process.Pid
	for _, tc := range []struct {
		name, value, want string
		pid               int
	}{
		{"not json", "{", "LAGO_PRESTARTED_PLUGIN", own},
		{"no path", `{"pid":%d,"stdout_fd":5,"stderr_fd":6}`, "incomplete", own},
		{"stdio fd", `{"path":"/x","pid":%d,"stdout_fd":1,"stderr_fd":6}`, "incomplete", own},
		{"same fd", `{"path":"/x","pid":%d,"stdout_fd":7,"stderr_fd":7}`, "incomplete", own},
		// never adopt (and later kill) a process that is not ours
		{"not a child", `{"path":"/x","pid":%d,"stdout_fd":5,"stderr_fd":6}`, "not a child", 1},
		{"closed fd", `{"path":"/x","pid":%d,"stdout_fd":900,"stderr_fd":901}`, "descriptor 900", own},
	} {
		t.Run(tc.name, func(t *testing.T) {
			value := tc.value
			if strings.Contains(value, "%d") {
				value = fmt.Sprintf(value, tc.pid)
			}
			t.Setenv(Env, value)
			ps, err := Take()
			if ps != nil || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Take = %v, %v; want an error naming %q", ps, err, tc.want)
			}
			if _, ok := os.LookupEnv(Env); ok {
				t.Fatal("the variable is still set after Take")
			}
		})
	}
}

func TestExecEnvironReplaces(t *testing.T) {
	in := []string{"A=1", Env + "=stale", "B=2", Env + "=older"}
	for _, tc := range []struct {
		kv   string
		want []string
	}{
		{Env + "=new", []string{"A=1", "B=2", Env + "=new"}},
		{"", []string{"A=1", "B=2"}}, // nothing prestarted: a stale value goes too
	} {
		if got := ExecEnviron(in, tc.kv); strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("ExecEnviron(%q) = %q, want %q", tc.kv, got, tc.want)
		}
	}
}

func TestTakeWithoutVariable(t *testing.T) {
	if ps, err := Take(); ps != nil || err != nil {
		t.Fatalf("Take = %v, %v; want nothing", ps, err)
	}
}

func TestDisabled(t *testing.T) {
	for _, tc := range []struct {
		environ []string
		want    bool
	}{
		{nil, false},
		{[]string{"LAGO_PRESTART=1", "HOME=/root"}, false},
		{[]string{"LAGO_PRESTART=0"}, true},
		{[]string{`LAGO_REATTACH_PLUGINS={"x":{}}`}, true},
		{[]string{"LAGO_REATTACH_PLUGINSX=1"}, false},
	} {
		if got := Disabled(tc.environ); got != tc.want {
			t.Errorf("Disabled(%q) = %v, want %v", tc.environ, got, tc.want)
		}
	}
}

func TestFind(t *testing.T) {
	prov := func(name string) []plugininfo.ComponentInfo {
		return []plugininfo.ComponentInfo{{Kind: plugininfo.KindProvider, Name: name}}
	}
	infos := []discovery.Info{
		{Name: "shadowed", Path: "/a", Components: prov("libvirt"), Shadowed: true},
		{Name: "refused", Path: "/b", Components: prov("libvirt"), Refused: true},
		{Name: "output", Path: "/c", Components: []plugininfo.ComponentInfo{{Kind: plugininfo.KindOutput, Name: "libvirt"}}},
		{Name: "first", Path: "/d", Components: prov("libvirt")},
		{Name: "second", Path: "/e", Components: prov("libvirt")},
	}
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{"libvirt", "/d", true},
		{"other", "", false},
	} {
		got, ok := Find(infos, plugininfo.KindProvider, tc.name)
		if ok != tc.ok || got.Path != tc.want {
			t.Errorf("Find(%q) = %q, %v; want %q, %v", tc.name, got.Path, ok, tc.want, tc.ok)
		}
	}
}

// TestStartRefusesUntrusted: the front-end applies the plugin trust checks
// too, on the file it runs.
func TestStartRefusesUntrusted(t *testing.T) {
	dir := t.TempDir()
	ran := dir + "/ran"
	bin := dir + "/" + discovery.Prefix + "x"
	if err := os.WriteFile(bin, []byte("#!/bin/sh\ntouch "+ran+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bin, 0o775); err != nil {
		t.Fatal(err)
	}
	ps, err := Start(bin, os.Environ())
	var ue *discovery.UntrustedError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "group-writable") {
		if ps != nil {
			ps.Discard()
		}
		t.Fatalf("Start err = %v, want the group-writable binary refused", err)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Fatal("the refused binary ran")
	}
}
