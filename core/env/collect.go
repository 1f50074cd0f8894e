package env

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/spec"
	lagossh "github.com/lago-go/lago/core/ssh"
	"github.com/lago-go/lago/sdk"
)

// CollectOptions tune Collect.
type CollectOptions struct {
	// NoSkip makes an artifact missing in its VM an error (that VM's
	// other artifacts are still collected).
	NoSkip bool
	// Limits bound what each VM's artifacts may write; zero fields are
	// no bound.
	Limits lagossh.Limits
	// Now stamps the folder an existing output is renamed to; nil is
	// time.Now.
	Now func() time.Time
}

// CollectResult is what Collect did for one VM.
type CollectResult struct {
	VM string
	// Dir is the VM's folder, <output>/<vm>.
	Dir string
	// Collected lists the artifacts copied, Skipped those missing in the
	// VM.
	Collected []string
	Skipped   []string
	// Files and Bytes count the regular files written and their bytes.
	Files int
	Bytes int64
	// FromDisks says the VM was not running and its artifacts were read
	// from its disks by its provider.
	FromDisks bool
	// Err is why some or all of the VM's artifacts were not collected.
	Err error
}

// Collect copies every VM's artifacts (the `artifacts` of its spec) into
// dir/<vm>/, each under its path with "/" replaced by "_"
// (/var/log/x.log is _var_log_x.log). An existing dir is first renamed
// with a timestamp suffix (dir.2006-01-02T15-04-05; no ":", which other
// tools take for a host or drive). A missing artifact is skipped and
// logged unless o.NoSkip. VMs are collected in parallel; each running
// VM's artifacts travel over ssh as one compressed tar stream when the
// guest has tar, file by file otherwise. A VM that is not running (shut
// off, down, crashed) has them read from its disks, read-only, by its
// provider (sdk.FileReader): the provider owns the disks, which may be on
// another host. Either way every name from the guest is confined to
// dir/<vm>/ by the same extraction (core/ssh). The error joins the VMs'
// errors; the results say what each VM got either way.
func (m *Manager) Collect(ctx context.Context, prefix, dir string, o CollectOptions) ([]CollectResult, error) {
	e, err := m.Load(prefix)
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, errs.Userf("collect: no output folder")
	}
	plans := make([][]lagossh.PullItem, len(e.VMs))
	for i, v := range e.VMs {
		if plans[i], err = artifactItems(v); err != nil {
			return nil, err
		}
	}
	if err := moveAside(dir, o.Now); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("collect: %w", err)
	}
	res := make([]CollectResult, len(e.VMs))
	_ = parallel(ctx, len(e.VMs), 0, func(ctx context.Context, i int) error {
		res[i] = m.collectVM(ctx, e, e.VMs[i], plans[i], dir, o)
		return nil
	})
	var all []error
	for _, r := range res {
		if r.Err != nil {
			all = append(all, r.Err)
		}
	}
	return res, errors.Join(all...)
}

// artifactItems maps a VM's artifacts to their names in its folder,
// refusing names that cannot be one file name or that two artifacts
// share.
func artifactItems(v *spec.VM) ([]lagossh.PullItem, error) {
	if v.Name == "" || v.Name == "." || v.Name == ".." || strings.ContainsAny(v.Name, "/\x00") {
		return nil, errs.Userf("collect: vm name %q cannot name a folder", v.Name)
	}
	var items []lagossh.PullItem
	by := map[string]string{}
	for _, a := range v.Artifacts {
		name := strings.ReplaceAll(a, "/", "_")
		if other, dup := by[name]; dup {
			if other == a {
				continue
			}
			return nil, errs.Userf("collect: vm %s: artifacts %s and %s would both be collected as %s", v.Name, other, a, name)
		}
		if a == "" || name == "." || name == ".." || strings.ContainsRune(a, 0) || path.Clean("/"+a) == "/" {
			return nil, errs.Userf("collect: vm %s: artifact %q is not a path to collect", v.Name, a)
		}
		by[name] = a
		items = append(items, lagossh.PullItem{Remote: a, Name: name})
	}
	return items, nil
}

// moveAside renames an existing dir to dir.<timestamp>, adding -2, -3...
// when that is taken too.
func moveAside(dir string, now func() time.Time) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	base := strings.TrimRight(dir, string(filepath.Separator)) + "." + now().Format("2006-01-02T15-04-05")
	to := base
	for n := 2; ; n++ {
		if _, err := os.Lstat(to); errors.Is(err, fs.ErrNotExist) {
			break
		}
		to = fmt.Sprintf("%s-%d", base, n)
	}
	if err := os.Rename(dir, to); err != nil {
		return fmt.Errorf("collect: move the previous %s aside: %w", dir, err)
	}
	return nil
}

func (m *Manager) collectVM(ctx context.Context, e *Environment, v *spec.VM, items []lagossh.PullItem, dir string, o CollectOptions) CollectResult {
	r := CollectResult{VM: v.Name, Dir: filepath.Join(dir, v.Name)}
	if err := os.Mkdir(r.Dir, 0o755); err != nil {
		r.Err = fmt.Errorf("collect: %w", err)
		return r
	}
	if len(items) == 0 {
		return r
	}
	var pulled []lagossh.PullResult
	var err error
	if src, st, ok := m.diskSource(ctx, e, v, o.Limits.MaxBytes); ok {
		r.FromDisks = true
		m.log().Info("collect: vm is not running, reading its disks", "vm", v.Name, "state", st)
		began := time.Now()
		pulled, err = lagossh.PullArchive(ctx, src, r.Dir, items, lagossh.PullOptions{
			Limits: o.Limits, Skipped: m.skippedLogger("collect", v.Name)})
		if err != nil && len(pulled) == 0 {
			err = fmt.Errorf("vm %s (%s): read its disks: %w", v.Name, st, err)
		}
		m.log().Info("collect: read the disks", "vm", v.Name, "took", time.Since(began).Round(100*time.Millisecond))
	} else {
		err = m.withGuest(ctx, e, v.Name, func(run lagossh.Runner) error {
			var err error
			pulled, err = lagossh.Pull(ctx, run, r.Dir, items, lagossh.PullOptions{
				Compress: true, Limits: o.Limits, Skipped: m.skippedLogger("collect", v.Name)})
			return err
		})
	}
	var errs []error
	if len(pulled) == 0 && err != nil {
		errs = append(errs, err)
	}
	for _, p := range pulled {
		r.Files += p.Files
		r.Bytes += p.Bytes
		switch {
		case p.Missing:
			r.Skipped = append(r.Skipped, p.Remote)
			if o.NoSkip {
				errs = append(errs, userPathError(v.Name, p.Remote))
			} else {
				m.log().Info("collect: skipped a missing path", "vm", v.Name, "path", p.Remote)
			}
		case p.Err != nil:
			errs = append(errs, fmt.Errorf("collect: vm %s: %w", v.Name, p.Err))
		default:
			r.Collected = append(r.Collected, p.Remote)
		}
	}
	if len(pulled) > 0 && err != nil && len(errs) == 0 {
		errs = append(errs, err) // the copy stopped before its items
	}
	r.Err = errors.Join(errs...)
	return r
}

// NoDiskReadError says a VM is not running and its provider cannot read
// its disks (it has no ReadFiles), so its artifacts cannot be collected
// until it runs. errors.Is matches ErrVMNotRunning and
// sdk.ErrNotImplemented.
type NoDiskReadError struct {
	VM, State, Provider string
}

func (e *NoDiskReadError) Error() string {
	return fmt.Sprintf("vm %s is not running (%s) and its provider %s cannot read its disks: start it with lago start to collect over ssh", e.VM, e.State, e.Provider)
}

// Is makes errors.Is match ErrVMNotRunning and sdk.ErrNotImplemented.
func (e *NoDiskReadError) Is(target error) bool {
	return target == ErrVMNotRunning || target == sdk.ErrNotImplemented
}

// diskSource returns how to read v's files from its disks when it is not
// running (shut off, down, crashed), with its state; ok is false for a VM
// that runs, or whose state cannot be told, which are collected over ssh.
// A provider without ReadFiles gives a source that says so.
func (m *Manager) diskSource(ctx context.Context, e *Environment, v *spec.VM, maxBytes int64) (src lagossh.ArchiveSource, state string, ok bool) {
	inst := m.vmProvider(v)
	p, err := m.provider(ctx, inst)
	if err != nil {
		return nil, "", false
	}
	pv, err := toProviderVM(e, v)
	if err != nil {
		return nil, "", false
	}
	st, err := p.VMState(ctx, e.Ref(), pv)
	if err != nil || !(isOff(st) || st == "crashed") {
		return nil, st, false
	}
	fr, ok := p.(sdk.FileReader)
	if !ok {
		fr = sdk.UnimplementedProvider{}
	}
	return func(ctx context.Context, paths []string, w io.Writer) ([]string, error) {
		missing, err := fr.ReadFiles(ctx, e.Ref(), pv, paths, maxBytes, w)
		if errors.Is(err, sdk.ErrNotImplemented) {
			return nil, errs.User(&NoDiskReadError{VM: v.Name, State: st, Provider: inst})
		}
		return missing, err
	}, st, true
}

func userPathError(vm, p string) error {
	return errs.User(&PathError{VM: vm, Path: p, Err: ErrNoSuchPath})
}
