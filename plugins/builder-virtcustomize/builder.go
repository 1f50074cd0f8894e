package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"

	builderv1 "github.com/lago-go/lago/proto/lago/builder/v1"
	"github.com/lago-go/lago/sdk"
)

// builder runs virt-customize. It is configured once per plugin process.
type builder struct {
	program string
	backend string
	// env are the LIBGUESTFS_* variables the core's [init] libguestfs_*
	// settings give (the same the core's bootstrap runs with); they win
	// over the environment.
	env []string
}

// Configure reads the component's settings.
func (b *builder) Configure(_ context.Context, cfg map[string]string, _ sdk.Host) error {
	b.program = cfg["virt_customize"]
	b.backend = cfg["libguestfs_backend"]
	b.env = nil
	for key, name := range map[string]string{"libguestfs_backend_settings": "LIBGUESTFS_BACKEND_SETTINGS", "libguestfs_memsize": "LIBGUESTFS_MEMSIZE"} {
		if v := cfg[key]; v != "" {
			b.env = append(b.env, name+"="+v)
		}
	}
	return nil
}

// optionName is what virt-customize option names look like (a long name,
// or one letter such as m or v); anything else is refused so an init file
// cannot smuggle a non-option into argv.
var optionName = regexp.MustCompile(`^([a-zA-Z]|[a-z0-9][a-z0-9-]+)$`)

// diskOptions choose the disk virt-customize works on, which lago passes
// itself: one in a build step would customize another disk, or (--format
// after -a) make virt-customize refuse the whole command line.
var diskOptions = map[string]bool{"a": true, "add": true, "d": true, "domain": true, "format": true}

// flag returns the command-line form of an option name as the original
// Lago wrote it: one dash for a one-letter name, two for the others.
func flag(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// Argv returns virt-customize's arguments for req (without the program).
// --format comes before -a: virt-customize applies it to the -a options
// that follow and refuses one after the last -a.
func Argv(req *builderv1.BuildRequest) ([]string, error) {
	if req.GetDiskPath() == "" {
		return nil, fmt.Errorf("no disk to customize")
	}
	var argv []string
	if f := req.GetDiskFormat(); f != "" {
		argv = append(argv, "--format", f)
	}
	argv = append(argv, "-a", req.GetDiskPath())
	for i, o := range req.GetOptions() {
		if !optionName.MatchString(o.GetName()) {
			return nil, fmt.Errorf("option %d: %q is not a virt-customize option name", i+1, o.GetName())
		}
		if diskOptions[o.GetName()] {
			return nil, fmt.Errorf("option %d: %q chooses the disk, which lago passes itself; remove it from the build step", i+1, o.GetName())
		}
		argv = append(argv, flag(o.GetName()))
		v := o.GetValue()
		if o.GetName() == "ssh-inject" && v == "" {
			// The original Lago injects the prefix's key for an empty value.
			if req.GetSshPublicKey() == "" {
				return nil, fmt.Errorf("ssh-inject without a value needs the prefix's public key")
			}
			v = "root:string:" + strings.TrimSpace(req.GetSshPublicKey())
		}
		if v != "" {
			argv = append(argv, v)
		}
	}
	return argv, nil
}

// Build runs virt-customize on the disk and streams its output to log.
func (b *builder) Build(ctx context.Context, req *builderv1.BuildRequest, log func(string)) error {
	argv, err := Argv(req)
	if err != nil {
		return sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: "virt-customize on " + req.GetVm(), Detail: err.Error()}}
	}
	program := b.program
	if program == "" {
		program = "virt-customize"
	}
	cmd := exec.CommandContext(ctx, program, argv...)
	cmd.Env = os.Environ()
	if b.backend != "" {
		cmd.Env = append(cmd.Env, "LIBGUESTFS_BACKEND="+b.backend)
	} else if os.Getenv("LIBGUESTFS_BACKEND") == "" {
		cmd.Env = append(cmd.Env, "LIBGUESTFS_BACKEND=direct")
	}
	cmd.Env = append(cmd.Env, b.env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: "cannot run " + program, Detail: err.Error()}}
	}
	tail := newTail(20)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			tail.add(sc.Text())
			if log != nil {
				log(sc.Text())
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	werr := cmd.Wait()
	_ = pw.Close()
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if werr != nil {
		return sdk.Diagnostics{{
			Severity: sdk.SeverityError,
			Summary:  fmt.Sprintf("virt-customize on %s (%s) failed: %v", req.GetVm(), req.GetDiskPath(), werr),
			Detail:   tail.String(),
		}}
	}
	return nil
}

// tail keeps the last n lines of a stream for error messages.
type tail struct {
	n     int
	lines []string
}

func newTail(n int) *tail { return &tail{n: n} }

func (t *tail) add(s string) {
	t.lines = append(t.lines, s)
	if len(t.lines) > t.n {
		t.lines = t.lines[len(t.lines)-t.n:]
	}
}

func (t *tail) String() string { return strings.Join(t.lines, "\n") }
