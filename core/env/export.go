package env

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"

	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/output"
	"github.com/lago-go/lago/core/spec"
)

// Defaults of export, the original's.
const (
	DefaultExportInitFile = "LagoInitFile"
	// exportXZBlockSize is the original's xz block size (from
	// virt-builder's advice): blocks let xz -T0 use every core and let a
	// reader seek.
	exportXZBlockSize = "16777216"
	// initFilePathVar is what the exported init file's paths start with;
	// init expands it to the init file's folder.
	initFilePathVar = "$LAGO_INITFILE_PATH"
)

// ExportOptions tune Export; the zero value exports every VM layered and
// uncompressed into the current folder, as the original's defaults.
type ExportOptions struct {
	// VMs to export (full names or unique suffixes); empty means all.
	VMs []string
	// Standalone flattens each template disk into one image; otherwise
	// it stays a layer on a copy of its template written beside it.
	Standalone bool
	// Compress xz-compresses each exported image (and template copy) to
	// NAME.xz, after its .hash and .metadata are written.
	Compress bool
	// DstDir is the folder to export into, created when missing; "" is ".".
	DstDir string
	// InitFileName is the init file's name in DstDir; "" is LagoInitFile.
	InitFileName string
	// Format of the init file: "yaml" (default) or "json".
	Format string
	// CollectOnly returns which disks would be exported, exporting and
	// writing nothing.
	CollectOnly bool
	// WithoutThreads exports one VM at a time.
	WithoutThreads bool
}

// ExportedDisk is one disk Export wrote (or, with CollectOnly, would
// export).
type ExportedDisk struct {
	VM, Disk string
	// Source is the prefix's image of the disk.
	Source string
	// Path is the exported file (NAME.xz when compressed); empty with
	// CollectOnly.
	Path string
	// Hash is the sha1 hex of the image before compression, also in
	// NAME.hash.
	Hash string
	// Base is the template file a layered image backs onto ("./NAME",
	// relative to the image); empty for standalone and non-template disks.
	Base string
}

// ExportResult is what Export did.
type ExportResult struct {
	Disks []ExportedDisk
	// Templates are the template copies a layered export wrote beside
	// the layers.
	Templates []string
	// InitFile is the init file written; empty with CollectOnly.
	InitFile string
}

// ErrVMsNotOff is matched by a *VMsNotOffError.
var ErrVMsNotOff = errors.New("vms must be off")

// VMsNotOffError says which VMs an export found not off: their disks
// change while they run, so an export of them would be torn.
type VMsNotOffError struct {
	// VMs are "name (state)", sorted.
	VMs []string
}

func (e *VMsNotOffError) Error() string {
	return "export: the following vms must be off (lago stop or shutdown them): " + strings.Join(e.VMs, ", ")
}

// Is makes errors.Is(err, ErrVMsNotOff) true.
func (e *VMsNotOffError) Is(target error) bool { return target == ErrVMsNotOff }

// exportPlan is one VM to export.
type exportPlan struct {
	b boundVM
	// disks are the indexes of the VM's disks the provider exports (all
	// but iso disks), in the order of the paths it returns.
	disks []int
}

// Export writes the disks of the (stopped) VMs into o.DstDir through
// their providers, which copy them sparsely with qemu-img (standalone
// flattens template disks; layered keeps them one layer on the template,
// by the relative name ./<template file>, a copy of which Export puts
// beside them). Beside each image it writes NAME.hash (sha1) and
// NAME.metadata (the template's metadata with sha1, size, name, version
// and base), then xz-compresses it when o.Compress. Last it writes an
// init file that recreates the environment from those files
// ($LAGO_INITFILE_PATH/NAME); see exportInitFile for what it keeps. On
// failure it removes what it wrote.
func (m *Manager) Export(ctx context.Context, prefixPath string, o ExportOptions) (*ExportResult, error) {
	e, sel, bound, err := m.loadBound(prefixPath, o.VMs)
	if err != nil {
		return nil, err
	}
	if o.DstDir == "" {
		o.DstDir = "."
	}
	if o.InitFileName == "" {
		o.InitFileName = DefaultExportInitFile
	}
	if o.InitFileName != filepath.Base(o.InitFileName) || o.InitFileName == "." || o.InitFileName == ".." {
		return nil, errs.Userf("export: init file name %q must be a file name, not a path", o.InitFileName)
	}
	switch o.Format {
	case "", "yaml", "json":
	default:
		return nil, errs.Userf("export: init file format %q: want yaml or json", o.Format)
	}
	dst, err := filepath.Abs(o.DstDir)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	plans := make([]exportPlan, len(bound))
	res := &ExportResult{}
	names := map[string]string{o.InitFileName: "the init file"}
	templates := map[string]string{} // file name in dst -> template path
	for i, b := range bound {
		plans[i].b = b
		for j, d := range b.pv.Disks {
			if d.GetType() == spec.DiskISO {
				continue
			}
			plans[i].disks = append(plans[i].disks, j)
			src := d.GetPath()
			name := filepath.Base(src)
			if err := claimName(names, name, fmt.Sprintf("disk %s of vm %s", d.GetName(), b.spec.Name)); err != nil {
				return nil, err
			}
			res.Disks = append(res.Disks, ExportedDisk{VM: b.spec.Name, Disk: d.GetName(), Source: src})
			if d.GetType() == spec.DiskTemplate && !o.Standalone {
				tp := d.GetTemplatePath()
				if tp == "" {
					return nil, fmt.Errorf("export: vm %s disk %s: no template image is recorded for a layered export (try --standalone)", b.spec.Name, d.GetName())
				}
				t := filepath.Base(tp)
				if prev, ok := templates[t]; ok && prev != tp {
					return nil, errs.Userf("export: templates %s and %s have the same file name %s; export with --standalone", prev, tp, t)
				}
				if _, ok := templates[t]; !ok {
					if err := claimName(names, t, "template "+tp); err != nil {
						return nil, err
					}
					templates[t] = tp
				}
			}
		}
	}
	if err := m.checkOff(ctx, e, bound); err != nil {
		return nil, err
	}
	if o.CollectOnly {
		return res, nil
	}
	if o.Compress {
		if _, err := exec.LookPath("xz"); err != nil {
			return nil, errs.Userf("export --compress needs the xz program: %v", err)
		}
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, errs.User(fmt.Errorf("export: create %s: %w", dst, err))
	}
	w := &exportWriter{dst: dst, compress: o.Compress}
	ok := false
	defer func() {
		if !ok {
			w.removeAll()
		}
	}()
	provs, err := m.resolveAll(ctx, m.providersOf(e))
	if err != nil {
		return nil, err
	}
	limit := m.opts.DiskParallelism
	if o.WithoutThreads {
		limit = 1
	}
	tnames := make([]string, 0, len(templates))
	for t := range templates {
		tnames = append(tnames, t)
	}
	sort.Strings(tnames)
	res.Templates = make([]string, len(tnames))
	// Templates and VMs are independent jobs: the first len(tnames) are
	// template copies, the rest one VM each.
	first := make([]int, len(plans)) // index into res.Disks of each plan's first disk
	for i, n := 1, 0; i < len(plans); i++ {
		n += len(plans[i-1].disks)
		first[i] = n
	}
	err = parallel(ctx, len(tnames)+len(plans), limit, func(ctx context.Context, k int) error {
		if k < len(tnames) {
			p, err := w.template(ctx, templates[tnames[k]], tnames[k])
			res.Templates[k] = p
			return err
		}
		i := k - len(tnames)
		return m.exportVM(ctx, e, provs[plans[i].b.instance], plans[i], o.Standalone, w, res.Disks[first[i]:first[i]+len(plans[i].disks)])
	})
	if err != nil {
		return nil, err
	}
	doc := exportInitFile(e, sel, o.Standalone)
	var b []byte
	if o.Format == "json" {
		b, err = json.MarshalIndent(doc, "", "    ")
		b = append(b, '\n')
	} else {
		b, err = output.YAML(doc)
	}
	if err != nil {
		return nil, fmt.Errorf("export: encode the init file: %w", err)
	}
	res.InitFile = filepath.Join(dst, o.InitFileName)
	if err := w.writeFile(res.InitFile, b); err != nil {
		return nil, err
	}
	ok = true
	m.log().Info("exported", "prefix", e.Path, "dst", dst, "disks", len(res.Disks), "standalone", o.Standalone, "compress", o.Compress)
	return res, nil
}

// claimName records that name in the export folder is used by what,
// refusing a second user.
func claimName(names map[string]string, name, what string) error {
	if prev, ok := names[name]; ok {
		return errs.Userf("export: %s and %s would both be written as %s", prev, what, name)
	}
	names[name] = what
	return nil
}

// checkOff fails with a *VMsNotOffError naming every selected VM that is
// not off (a state that cannot be read counts as not off).
func (m *Manager) checkOff(ctx context.Context, e *Environment, bound []boundVM) error {
	provs, err := m.resolveAll(ctx, m.providersOf(e))
	if err != nil {
		return err
	}
	var on []string
	for vm, st := range m.vmStates(ctx, e, provs, bound) {
		if !isOff(st) {
			on = append(on, fmt.Sprintf("%s (%s)", vm, st))
		}
	}
	if len(on) == 0 {
		return nil
	}
	sort.Strings(on)
	return errs.User(&VMsNotOffError{VMs: on})
}

// exportVM has the provider export one VM's disks, then hashes,
// describes and compresses each image.
func (m *Manager) exportVM(ctx context.Context, e *Environment, p providerHandle, pl exportPlan, standalone bool, w *exportWriter, out []ExportedDisk) error {
	name := pl.b.spec.Name
	m.log().Info("exporting", "vm", name, "disks", len(pl.disks))
	paths, err := p.Export(ctx, &providerv1.ExportRequest{Env: e.Ref(), Vm: pl.b.pv, DstDir: w.dst, Standalone: standalone})
	w.add(paths...)
	if err != nil {
		return fmt.Errorf("export vm %s: %w", name, err)
	}
	if len(paths) != len(pl.disks) {
		return fmt.Errorf("export vm %s: the provider wrote %d images for %d disks: %v", name, len(paths), len(pl.disks), paths)
	}
	for k, j := range pl.disks {
		d, sd := pl.b.pv.Disks[j], pl.b.spec.Disks[j]
		if want := filepath.Join(w.dst, filepath.Base(d.GetPath())); filepath.Clean(paths[k]) != want {
			return fmt.Errorf("export vm %s disk %s: the provider wrote %s, want %s", name, d.GetName(), paths[k], want)
		}
		meta := map[string]any{}
		for key, v := range sd.Metadata {
			meta[key] = v
		}
		base := "None" // the original's word for a standalone image
		if d.GetType() == spec.DiskTemplate && !standalone {
			base = "./" + filepath.Base(d.GetTemplatePath())
			out[k].Base = base
		}
		meta["base"] = base
		if out[k].Hash, out[k].Path, err = w.finish(ctx, paths[k], meta); err != nil {
			return fmt.Errorf("export vm %s disk %s: %w", name, d.GetName(), err)
		}
	}
	return nil
}

// exportWriter writes the files of one export and remembers them, so a
// failed export removes everything it wrote.
type exportWriter struct {
	dst      string
	compress bool
	mu       sync.Mutex
	written  []string
}

func (w *exportWriter) add(paths ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.written = append(w.written, paths...)
}

func (w *exportWriter) removeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.written {
		_ = os.Remove(p)
	}
}

// writeFile writes b to path through a temporary file.
func (w *exportWriter) writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	w.add(tmp, path)
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("export: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("export: write %s: %w", path, err)
	}
	return nil
}

// template copies the template image src sparsely to dst/name and
// finishes it like an exported image.
func (w *exportWriter) template(ctx context.Context, src, name string) (string, error) {
	out := filepath.Join(w.dst, name)
	w.add(out)
	if err := sparseCopy(ctx, src, out); err != nil {
		return "", fmt.Errorf("export: copy template %s: %w", src, err)
	}
	_, p, err := w.finish(ctx, out, map[string]any{"base": "None"})
	if err != nil {
		return "", fmt.Errorf("export: template %s: %w", src, err)
	}
	return p, nil
}

// finish writes path.hash and path.metadata (meta plus sha1, size, name
// and version, as the original) and compresses path when asked; it
// returns the sha1 and the final file.
func (w *exportWriter) finish(ctx context.Context, path string, meta map[string]any) (string, string, error) {
	sum, size, err := sha1File(ctx, path)
	if err != nil {
		return "", "", err
	}
	if err := w.writeFile(path+".hash", []byte(sum)); err != nil {
		return "", "", err
	}
	meta["sha1"] = sum
	meta["size"] = size
	meta["name"] = filepath.Base(path)
	meta["version"] = time.Now().Format("20060102") + ".0"
	b, err := json.Marshal(meta)
	if err != nil {
		return "", "", fmt.Errorf("encode metadata of %s: %w", path, err)
	}
	if err := w.writeFile(path+".metadata", b); err != nil {
		return "", "", err
	}
	if !w.compress {
		return sum, path, nil
	}
	xz := path + ".xz"
	w.add(xz)
	// -T0: a thread per core; -f: replace a stale NAME.xz. xz removes
	// path once NAME.xz is complete.
	cmd := exec.CommandContext(ctx, "xz", "-z", "-f", "-T0", "--block-size="+exportXZBlockSize, "--", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("compress %s: xz: %w: %s", path, err, strings.TrimSpace(string(out)))
	}
	return sum, xz, nil
}

// sha1File returns the sha1 hex and the size of the file at path.
func sha1File(ctx context.Context, path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("hash: %w", err)
	}
	defer f.Close()
	h := sha1.New()
	n, err := io.Copy(h, ctxReader{ctx, f})
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ctxReader stops a long read when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
