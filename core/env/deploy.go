package env

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/lago-go/lago/core/spec"
)

// Deploy runs every VM's deploy scripts (metadata deploy-scripts, the
// copies init made in scripts/), VMs in parallel and each VM's scripts in
// order, each fed to `bash -s` over ssh. Output lines go to stdout and
// stderr prefixed with the VM's name. A failing script stops its VM's
// remaining scripts and fails the verb with "<script> failed with status N
// on <vm>".
func (m *Manager) Deploy(ctx context.Context, prefix string, stdout, stderr io.Writer) error {
	e, err := m.Load(prefix)
	if err != nil {
		return err
	}
	if m.deps.SSH == nil {
		return fmt.Errorf("deploy: no ssh client configured")
	}
	var mu sync.Mutex
	return parallel(ctx, len(e.VMs), 0, func(ctx context.Context, i int) error {
		vm := e.VMs[i]
		scripts := vm.DeployScripts()
		if len(scripts) == 0 {
			return nil
		}
		t, err := m.sshTarget(e, vm)
		if err != nil {
			return err
		}
		out := &linePrefixer{mu: &mu, w: stdout, prefix: "[" + vm.Name + "] "}
		errOut := &linePrefixer{mu: &mu, w: stderr, prefix: "[" + vm.Name + "] "}
		defer out.Flush()
		defer errOut.Flush()
		for _, s := range scripts {
			path := spec.ExpandPrefixPath(s, e.Path)
			body, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("deploy on vm %s: %w", vm.Name, err)
			}
			m.log().Info("running deploy script", "vm", vm.Name, "script", path)
			code, err := m.deps.SSH.Run(ctx, t, []string{"bash", "-s"}, bytes.NewReader(body), out, errOut)
			if err != nil {
				return fmt.Errorf("deploy script %s on vm %s: %w", path, vm.Name, err)
			}
			if code != 0 {
				return userErrorf("%s failed with status %d on %s", path, code, vm.Name)
			}
		}
		return nil
	})
}

// linePrefixer writes whole lines to w, each with prefix, under a lock
// shared by the writers of parallel VMs so their lines do not interleave.
type linePrefixer struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (l *linePrefixer) Write(p []byte) (int, error) {
	if l.w == nil {
		return len(p), nil
	}
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		if err := l.emit(l.buf[:i+1]); err != nil {
			return 0, err
		}
		l.buf = l.buf[i+1:]
	}
}

// Flush writes a last unterminated line.
func (l *linePrefixer) Flush() {
	if l.w != nil && len(l.buf) > 0 {
		_ = l.emit(append(l.buf, '\n'))
		l.buf = nil
	}
}

func (l *linePrefixer) emit(line []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := io.WriteString(l.w, l.prefix+string(line))
	return err
}
