// Package prestart lets the front-end (bin/lago) start the plugin a verb is
// about to need before it execs the engine, so that the plugin's start-up
// (for the libvirt provider ~20 ms, most of it the dynamic loader binding
// libvirt's sixty shared libraries) overlaps with the engine's exec,
// package initialisation and prefix loading instead of following them.
//
// The front-end starts the binary as go-plugin would (same environment,
// lago's magic cookie; see HandshakeEnv), keeps the read ends of its
// stdout and stderr open across exec and names them in an environment
// variable. The engine takes them with Take and hands them to go-plugin
// as a runner, so from the handshake on the process is managed like any
// other plugin process: logs, crash reports, graceful stop, reaping. A
// process the engine does not use is killed and reaped when it closes
// its plugins.
//
// The package is light (no gRPC, no go-plugin) because the front-end links
// it.
package prestart

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/lago-go/lago/core/pluginhost/discovery"
	"github.com/lago-go/lago/sdk/plugininfo"
)

// Env carries the started process from the front-end to the engine.
const Env = "LAGO_PRESTARTED_PLUGIN"

// DisableEnv set to 0 turns prestarting off (the engine then starts the
// plugin itself, as it does for every other plugin).
const DisableEnv = "LAGO_PRESTART"

// ReattachEnv is pluginhost.ReattachEnv: with plugins reattached by hand
// nothing is prestarted.
const ReattachEnv = "LAGO_REATTACH_PLUGINS"

// Disabled reports whether the environment turns prestarting off:
// LAGO_PRESTART=0, or plugins reattached by hand.
func Disabled(environ []string) bool {
	for _, kv := range environ {
		if kv == DisableEnv+"=0" || strings.HasPrefix(kv, ReattachEnv+"=") {
			return true
		}
	}
	return false
}

// Find returns the plugin the engine's plugin host would start for the
// component kind/name: the first one in discovery order that serves it.
// Shadowed and refused plugins are never prestarted.
func Find(infos []discovery.Info, kind, name string) (discovery.Info, bool) {
	for _, in := range infos {
		if !in.Usable() {
			continue
		}
		for _, c := range in.Components {
			if c.Kind == kind && c.Name == name {
				return in, true
			}
		}
	}
	return discovery.Info{}, false
}

// Process is a plugin process started by the front-end.
type Process struct {
	Path string
	Pid  int
	// Stdout and Stderr are the read ends of the process's stdout (where
	// go-plugin's handshake line arrives) and stderr (its logs).
	Stdout, Stderr *os.File

	proc *os.Process
}

// wire is the JSON form of a Process in Env.
type wire struct {
	Path   string `json:"path"`
	Pid    int    `json:"pid"`
	Stdout int    `json:"stdout_fd"`
	Stderr int    `json:"stderr_fd"`
}

// HandshakeEnv is what the prestarted plugin gets beside environ: lago's
// own magic cookie (sdk.HandshakeConfig), which sdk.Serve checks. None of
// go-plugin's own variables is copied here. Its client also passes
// PLUGIN_PROTOCOL_VERSIONS, the versions it speaks, which a lago plugin
// does not need: it serves one, plugininfo.APIVersion, and go-plugin's
// server serves its one version to a client that sends no list; the port
// range, which only a TCP listener reads (lago plugins listen on unix
// sockets); and PLUGIN_UNIX_SOCKET_DIR, a folder for the socket (the
// plugin uses the system's temporary folder without it). Package
// pluginhost, which links go-plugin, checks that list against what its
// client really passes (TestPrestartEnvCoversGoPlugin), so a go-plugin
// upgrade that passes more fails that test instead of prestarted plugins.
func HandshakeEnv() []string {
	return []string{plugininfo.MagicCookieKey + "=" + plugininfo.MagicCookieValue}
}

// Start starts the plugin binary at path with environ plus the handshake
// variables. The kernel kills it if the thread that started it dies (as
// for plugins the engine starts), so the caller must exec the engine from
// this same OS thread (runtime.LockOSThread): exec keeps the thread, and
// the engine inherits the child.
//
// The binary must pass discovery's trust checks, made on the opened file
// that then runs (discovery.OpenBinary), as for every plugin start.
func Start(path string, environ []string) (*Process, error) {
	bin, err := discovery.OpenBinary(path, "")
	if err != nil {
		return nil, fmt.Errorf("prestart %s: %w", path, err)
	}
	defer bin.Close() // the child has its own copy
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("prestart %s: %w", path, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("prestart %s: %w", path, err)
	}
	cmd := bin.Command()
	cmd.Env = append(append([]string(nil), environ...), HandshakeEnv()...)
	cmd.Stdin = os.Stdin
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	// The child has its own copies of the write ends; ours would keep the
	// pipes from ever reaching EOF.
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("prestart %s: %w", path, err)
	}
	return &Process{Path: path, Pid: cmd.Process.Pid, Stdout: outR, Stderr: errR, proc: cmd.Process}, nil
}

// ExecEnv makes the read ends survive exec and returns the Env entry that
// names them, for the environment of the exec'd engine.
func (p *Process) ExecEnv() (string, error) {
	for _, f := range []*os.File{p.Stdout, p.Stderr} {
		if err := setCloexec(int(f.Fd()), false); err != nil {
			return "", fmt.Errorf("prestart %s: keep fd %d open across exec: %w", p.Path, f.Fd(), err)
		}
	}
	b, err := json.Marshal(wire{Path: p.Path, Pid: p.Pid, Stdout: int(p.Stdout.Fd()), Stderr: int(p.Stderr.Fd())})
	if err != nil {
		return "", err
	}
	return Env + "=" + string(b), nil
}

// ExecEnviron returns environ for the engine: without any Env entry it
// may already hold (a stale one must never reach the engine; and the first
// of duplicate entries wins), plus kv unless it is empty.
func ExecEnviron(environ []string, kv string) []string {
	out := make([]string, 0, len(environ)+1)
	for _, e := range environ {
		if !strings.HasPrefix(e, Env+"=") {
			out = append(out, e)
		}
	}
	if kv == "" {
		return out
	}
	return append(out, kv)
}

// Take returns the process the front-end started, or nil, and removes Env
// from this process's environment so that no child inherits it. The
// descriptors are marked close-on-exec again. A value naming descriptors
// that are not open (the variable leaked into some other process) is
// ignored.
func Take() (*Process, error) {
	v, ok := os.LookupEnv(Env)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(Env)
	var w wire
	if err := json.Unmarshal([]byte(v), &w); err != nil {
		return nil, fmt.Errorf("%s: %w", Env, err)
	}
	if w.Path == "" || w.Pid <= 0 || w.Stdout < 3 || w.Stderr < 3 || w.Stdout == w.Stderr {
		return nil, fmt.Errorf("%s: incomplete value %q", Env, v)
	}
	// Only a child of this process is ours to adopt, kill and reap; a
	// value naming any other (set by hand, leaked) is ignored.
	if ppid, err := parentOf(w.Pid); err != nil || ppid != os.Getpid() {
		return nil, fmt.Errorf("%s: pid %d is not a child of this process", Env, w.Pid)
	}
	for _, fd := range []int{w.Stdout, w.Stderr} {
		if err := setCloexec(fd, true); err != nil {
			return nil, fmt.Errorf("%s: descriptor %d: %w", Env, fd, err)
		}
		// Non-blocking, so the runtime poller serves the reads and Close
		// interrupts them.
		if err := syscall.SetNonblock(fd, true); err != nil {
			return nil, fmt.Errorf("%s: descriptor %d: %w", Env, fd, err)
		}
	}
	proc, err := os.FindProcess(w.Pid)
	if err != nil {
		return nil, fmt.Errorf("%s: pid %d: %w", Env, w.Pid, err)
	}
	return &Process{
		Path:   w.Path,
		Pid:    w.Pid,
		Stdout: os.NewFile(uintptr(w.Stdout), "plugin stdout"),
		Stderr: os.NewFile(uintptr(w.Stderr), "plugin stderr"),
		proc:   proc,
	}, nil
}

// Wait waits for the process to exit and reaps it.
func (p *Process) Wait() error {
	_, err := p.proc.Wait()
	return err
}

// Kill kills the process (it is a plugin that was never used, or one that
// go-plugin gave up on).
func (p *Process) Kill() error {
	err := p.proc.Kill()
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// Discard kills and reaps a process nobody adopted and closes its pipes.
func (p *Process) Discard() {
	_ = p.Kill()
	_ = p.Wait()
	p.Stdout.Close()
	p.Stderr.Close()
}

// parentOf reads a process's parent pid from /proc/PID/stat (the field
// after the parenthesised command name, which may itself hold spaces).
func parentOf(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return strconv.Atoi(f[1])
}

func setCloexec(fd int, on bool) error {
	flags, err := fcntl(fd, syscall.F_GETFD, 0)
	if err != nil {
		return err
	}
	if on {
		flags |= syscall.FD_CLOEXEC
	} else {
		flags &^= syscall.FD_CLOEXEC
	}
	_, err = fcntl(fd, syscall.F_SETFD, flags)
	return err
}

func fcntl(fd, cmd, arg int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), uintptr(cmd), uintptr(arg))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
