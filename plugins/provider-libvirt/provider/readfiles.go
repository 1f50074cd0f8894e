package provider

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"github.com/lago-go/lago/sdk"
)

// ReadFiles reads a stopped VM's files from its disks with libguestfs'
// guestfish, read-only, for collect. The original's libguestfs fallback
// failed at random in CI (disk locks, appliance start-up); this one is
// built so that it cannot hold or leave anything behind:
//   - the domain must be off: a running qemu holds the disks' write lock
//     and changes them under the reader;
//   - guestfish runs with --ro (libguestfs reads the disks through a
//     throw-away overlay and takes only a shared lock while it runs), in a
//     process group of its own that is killed as a whole on timeout or
//     cancellation, and libguestfs' recovery process ends the appliance if
//     guestfish dies;
//   - one appliance start serves every path: each path's kind and final
//     target (statns, realpath, both resolved inside the guest's tree) and
//     contents (tar-out for a folder, download for a file) are asked in one
//     argv, each command prefixed with "-" so that a missing path does not
//     stop the others, between markers holding a random nonce so nothing
//     a guest stores can fake them;
//   - a start that fails before any command ran (the appliance did not
//     boot, a lock was still held by a domain that just stopped) is
//     retried twice; nothing else is, since a failure after that is not
//     transient;
//   - contents go to a private temporary folder whose size is watched
//     against the cap while guestfish runs.
//
// The tar stream written to w names each path's member like the path
// without its leading "/", as sdk.FileReader says; the core confines it.
func (p *Provider) ReadFiles(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, paths []string, maxBytes int64, w io.Writer) ([]string, error) {
	c, cfg, domainType, warns, err := p.connectTyped(ctx)
	if err != nil {
		return nil, err
	}
	label := vmLabel(env, vm)
	if cfg.Remote {
		return nil, fmt.Errorf("%s: reading the disks of a remote hypervisor: %w", label, sdk.ErrNotImplemented)
	}
	st, err := c.DomainState(domainName(env.GetUuid(), vm.GetName()))
	if err == nil && isActive(st) {
		return nil, withWarnings(warns, errorDiag(label+": is running, its disks are in use: its files are read from the disks only when it is off (lago stop)", nil))
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, withWarnings(warns, errorDiag(label+": cannot read state", err))
	}
	for _, gp := range paths {
		if !path.IsAbs(gp) || path.Clean(gp) != gp || gp == "/" || strings.ContainsAny(gp, "\x00\n") {
			return nil, withWarnings(warns, errorDiag(fmt.Sprintf("%s: %q is not a path to read (absolute, clean, not /, no newline)", label, gp), nil))
		}
	}
	srcs, err := diskSources(cfg, env, vm)
	if err != nil {
		return nil, withWarnings(warns, errorDiag(label+": cannot read the disks", err))
	}
	var disks []guestDisk
	for i, d := range vm.GetDisks() {
		if d.GetType() == "iso" {
			continue
		}
		if _, err := os.Stat(srcs[i].Path); err != nil {
			return nil, withWarnings(warns, errorDiag(fmt.Sprintf("%s: disk '%s'", label, d.GetName()), err))
		}
		disks = append(disks, guestDisk{Path: srcs[i].Path, Format: srcs[i].Format})
	}
	if len(disks) == 0 {
		return nil, withWarnings(warns, errorDiag(label+": has no disk to read files from", nil))
	}
	r := &diskReader{
		disks: disks, env: guestfsEnv(domainType), run: p.guestfishRunner(),
		maxBytes: maxBytes, timeout: ReadFilesTimeout, log: func(msg string, args ...any) { p.log.Info(msg, args...) },
	}
	if r.maxBytes <= 0 {
		r.maxBytes = DefaultReadFilesMaxBytes
	}
	missing, err := r.read(ctx, paths, w)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, withWarnings(warns, errorDiag(label+": cannot read files from its disks", err))
	}
	return missing, withWarnings(warns, nil)
}

// Bounds of a ReadFiles.
var (
	// ReadFilesTimeout bounds one guestfish run (its appliance boots in
	// ~40 s under TCG).
	ReadFilesTimeout = 10 * time.Minute
	// DefaultReadFilesMaxBytes caps the contents read when the core sets
	// no cap.
	DefaultReadFilesMaxBytes int64 = 4 << 30
)

// launchAttempts is how often a guestfish run that failed before any of
// its commands ran is tried.
const launchAttempts = 3

// guestDisk is one disk image handed to guestfish.
type guestDisk struct {
	Path, Format string
}

// GuestfishRunner runs guestfish with argv (without the program) and the
// extra environment env until ctx ends, copying its standard output to
// stdout as it comes, and returns the end of its standard error. Tests
// replace it.
type GuestfishRunner func(ctx context.Context, argv, env []string, stdout io.Writer) (stderr []byte, err error)

// guestfishRun is the runner ReadFiles uses; nil is execGuestfish.
var guestfishRun GuestfishRunner

func (p *Provider) guestfishRunner() GuestfishRunner {
	if guestfishRun != nil {
		return guestfishRun
	}
	return execGuestfish
}

// guestfsEnv is the libguestfs environment of a run: the direct backend
// (no libvirtd session, no SELinux relabel of the disks) and, where KVM is
// not usable (the domain type is qemu), TCG for the appliance; a value
// already in the environment wins.
func guestfsEnv(domainType string) []string {
	var env []string
	if os.Getenv("LIBGUESTFS_BACKEND") == "" {
		env = append(env, "LIBGUESTFS_BACKEND=direct")
	}
	if os.Getenv("LIBGUESTFS_BACKEND_SETTINGS") == "" && domainType == domainTypeQEMU {
		env = append(env, "LIBGUESTFS_BACKEND_SETTINGS=force_tcg")
	}
	return env
}

// execGuestfish runs the real guestfish in a process group of its own,
// killed as a whole when ctx ends.
func execGuestfish(ctx context.Context, argv, env []string, stdout io.Writer) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "guestfish", argv...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stdout = stdout
	cmd.Stderr = &capWriter{b: &stderr, max: 64 << 10}
	err := cmd.Run()
	return stderr.Bytes(), err
}

// capWriter keeps at most max bytes and drops the rest.
type capWriter struct {
	b   *bytes.Buffer
	max int
}

func (c *capWriter) Write(p []byte) (int, error) {
	if room := c.max - c.b.Len(); room > 0 {
		c.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// diskReader is one ReadFiles.
type diskReader struct {
	disks    []guestDisk
	env      []string
	run      GuestfishRunner
	maxBytes int64
	timeout  time.Duration
	log      func(msg string, args ...any)
	// sleep waits between attempts; nil is a real wait.
	sleep func(time.Duration)
}

// found is what a run learnt of one path.
type found struct {
	exists bool
	mode   uint32 // st_mode
	mtime  int64
	real   string // realpath inside the guest
	data   string // the host file holding its tar-out or download
}

func (f found) kind() uint32 { return f.mode & syscall.S_IFMT }

// read fetches paths and writes the stream.
func (r *diskReader) read(ctx context.Context, paths []string, w io.Writer) ([]string, error) {
	tmp, err := os.MkdirTemp("", "lago-readfiles-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	res, err := r.readAll(ctx, tmp, "a", paths)
	if err != nil {
		return nil, err
	}
	// tar-out archives a folder by its path as guestfsd sees it, outside
	// the guest's root: a folder reached through a symbolic link is read
	// again by its real path (a second start, only then).
	var again []int
	var real []string
	for i, f := range res {
		if f.exists && f.kind() == syscall.S_IFDIR && f.real != "" && f.real != paths[i] {
			again = append(again, i)
			real = append(real, f.real)
		}
	}
	if len(again) > 0 {
		res2, err := r.readAll(ctx, tmp, "b", real)
		if err != nil {
			return nil, err
		}
		for k, i := range again {
			if res2[k].kind() != syscall.S_IFDIR {
				return nil, fmt.Errorf("%s (%s) changed kind between two reads", paths[i], real[k])
			}
			res[i].data = res2[k].data
		}
	}
	return r.emit(paths, res, w)
}

// readAll runs sessions until every path is read. A session stops as soon
// as a path turns out to be neither a file nor a folder (a FIFO would
// block download until the timeout, a device would stream until the cap):
// that path is kept as it is and the others are read again without it.
func (r *diskReader) readAll(ctx context.Context, tmp, tag string, paths []string) ([]found, error) {
	res := make([]found, len(paths))
	pending := make([]int, len(paths))
	for i := range pending {
		pending[i] = i
	}
	for round := 0; len(pending) > 0; round++ {
		sub := make([]string, len(pending))
		for k, i := range pending {
			sub[k] = paths[i]
		}
		got, err := r.session(ctx, tmp, fmt.Sprintf("%s%d-", tag, round), sub)
		var sp *specialError
		if errors.As(err, &sp) {
			res[pending[sp.idx]] = sp.f
			pending = append(pending[:sp.idx:sp.idx], pending[sp.idx+1:]...)
			r.log("a path is neither a file nor a folder; reading the others again", "path", sub[sp.idx])
			continue
		}
		if err != nil {
			return nil, err
		}
		for k, i := range pending {
			res[i] = got[k]
		}
		break
	}
	return res, nil
}

// specialError stops a session at a path (index idx) that is neither a
// file nor a folder.
type specialError struct {
	idx int
	f   found
}

func (e *specialError) Error() string { return fmt.Sprintf("path %d is a special file", e.idx) }

// session runs guestfish once (retrying a failed start) and parses what
// it said of each path.
func (r *diskReader) session(ctx context.Context, tmp, tag string, paths []string) ([]found, error) {
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	mark := "@@lago-" + hex.EncodeToString(nonce)
	argv := []string{"--ro", "--no-progress-bars"}
	for _, d := range r.disks {
		argv = append(argv, "--format="+d.Format, "-a", d.Path)
	}
	argv = append(argv, "-i", "--")
	for i, gp := range paths {
		base := filepath.Join(tmp, fmt.Sprintf("%s%d", tag, i))
		argv = append(argv,
			"echo", fmt.Sprintf("%s:%d:real", mark, i), ":", "-realpath", gp, ":",
			"echo", fmt.Sprintf("%s:%d:stat", mark, i), ":", "-statns", gp, ":",
			"echo", fmt.Sprintf("%s:%d:end", mark, i), ":",
			"-tar-out", gp, base+".tar", ":", "-download", gp, base+".file", ":")
	}
	argv = append(argv, "echo", mark+":done")
	var lastErr error
	for attempt := 1; attempt <= launchAttempts; attempt++ {
		out, stderr, err := r.runWatched(ctx, tmp, mark, tag, paths, argv)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var sp *specialError
		if errors.As(err, &sp) {
			return nil, sp
		}
		started := bytes.Contains(out, []byte(mark+":0:real"))
		if err == nil || started {
			if err != nil {
				return nil, fmt.Errorf("guestfish: %w%s", err, stderrTail(stderr))
			}
			res, perr := parseSession(out, mark, tag, paths, tmp)
			if perr != nil {
				return nil, fmt.Errorf("%w%s", perr, stderrTail(stderr))
			}
			return res, nil
		}
		lastErr = fmt.Errorf("guestfish: %w%s", err, stderrTail(stderr))
		if !transientStart(stderr) || attempt == launchAttempts {
			break
		}
		wait := time.Duration(attempt) * 2 * time.Second
		r.log("guestfish did not start; trying again", "attempt", attempt, "wait", wait, "error", lastErr)
		if r.sleep != nil {
			r.sleep(wait)
		} else {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
		}
	}
	return nil, lastErr
}

// errOverCap is why a read was stopped at its cap.
var errOverCap = errors.New("over the size cap")

// runWatched runs guestfish with the timeout, watching what it says: it
// is stopped when the files it writes in tmp pass the cap, or as soon as
// a path's statns shows a special file (the error is then a
// *specialError).
func (r *diskReader) runWatched(ctx context.Context, tmp, mark, tag string, paths []string, argv []string) ([]byte, []byte, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, r.timeout, fmt.Errorf("guestfish ran for %s", r.timeout))
	defer cancel()
	var stopped error // set once, before cancel
	var once sync.Once
	stopWith := func(err error) { once.Do(func() { stopped = err; cancel() }) }
	out := &liveOut{max: 4 << 20, mark: mark, onEnd: func(sections map[string]string, i int) {
		if i < 0 || i >= len(paths) {
			return
		}
		f := foundOf(sections, i, tmp, tag)
		if f.exists && f.kind() != syscall.S_IFDIR && f.kind() != syscall.S_IFREG {
			stopWith(&specialError{idx: i, f: f})
		}
	}}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if dirSize(tmp) > r.maxBytes+(64<<20) { // tar headers and padding
					stopWith(fmt.Errorf("the files read pass %d bytes: %w", r.maxBytes, errOverCap))
					return
				}
			}
		}
	}()
	stderr, err := r.run(ctx, argv, r.env, out)
	close(done)
	once.Do(func() {}) // no stop after this point
	if stopped != nil {
		return out.bytes(), stderr, stopped
	}
	if err != nil && ctx.Err() != nil {
		if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) {
			err = fmt.Errorf("%w (%v)", err, cause)
		}
	}
	return out.bytes(), stderr, err
}

// liveOut keeps guestfish's standard output (up to max bytes) and calls
// onEnd with the sections so far each time a path's end marker arrives.
type liveOut struct {
	mu    sync.Mutex
	max   int
	mark  string
	buf   bytes.Buffer
	line  []byte
	onEnd func(sections map[string]string, i int)
}

func (l *liveOut) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	for _, b := range p {
		if b != '\n' {
			if len(l.line) < 256 {
				l.line = append(l.line, b)
			}
			continue
		}
		line := string(l.line)
		l.line = l.line[:0]
		rest, ok := strings.CutPrefix(line, l.mark+":")
		if !ok {
			continue
		}
		if n, ok := strings.CutSuffix(rest, ":end"); ok {
			if i, err := strconv.Atoi(n); err == nil {
				l.onEnd(sectionsOf(l.buf.Bytes(), l.mark), i)
			}
		}
	}
	return len(p), nil
}

func (l *liveOut) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.buf.Bytes()...)
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// transientStart says a failed start may work when tried again: the
// appliance did not boot in time or died, or a disk was still locked by a
// qemu that was exiting. "No operating system" or a missing disk are not.
func transientStart(stderr []byte) bool {
	s := strings.ToLower(string(stderr))
	if strings.Contains(s, "no operating system") || strings.Contains(s, "no such file or directory") {
		return false
	}
	for _, m := range []string{"launch failed", "guestfs_launch", "failed to get", "lock", "child process died", "timed out",
		"timeout", "appliance closed the connection", "resource temporarily unavailable"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

func stderrTail(stderr []byte) string {
	s := strings.TrimSpace(string(stderr))
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return ": " + strings.Join(lines, "; ")
}

// sectionsOf splits guestfish's output at the markers: "i:real" holds
// path i's realpath, "i:stat" its statns.
func sectionsOf(out []byte, mark string) map[string]string {
	sections := map[string]string{}
	var cur string
	var buf strings.Builder
	for _, line := range strings.SplitAfter(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, mark+":"); ok && strings.HasSuffix(rest, "\n") {
			if cur != "" {
				sections[cur] = buf.String()
			}
			cur = strings.TrimSuffix(rest, "\n")
			buf.Reset()
			continue
		}
		if cur != "" {
			buf.WriteString(line)
		}
	}
	if cur != "" {
		sections[cur] = buf.String()
	}
	return sections
}

// foundOf reads path i's sections. A path whose statns failed does not
// exist (or, as with `[ -e ]`, is a dangling link).
func foundOf(sections map[string]string, i int, tmp, tag string) found {
	var f found
	f.real = strings.TrimSuffix(sections[fmt.Sprintf("%d:real", i)], "\n")
	for _, l := range strings.Split(sections[fmt.Sprintf("%d:stat", i)], "\n") {
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "st_mode":
			f.mode, f.exists = uint32(n), true
		case "st_mtime_sec":
			f.mtime = n
		}
	}
	base := filepath.Join(tmp, fmt.Sprintf("%s%d", tag, i))
	switch f.kind() {
	case syscall.S_IFDIR:
		f.data = base + ".tar"
	case syscall.S_IFREG:
		f.data = base + ".file"
	}
	return f
}

// parseSession reads every path's sections of a complete run.
func parseSession(out []byte, mark, tag string, paths []string, tmp string) ([]found, error) {
	sections := sectionsOf(out, mark)
	if _, ok := sections["done"]; !ok {
		return nil, errors.New("guestfish stopped before reading every path")
	}
	res := make([]found, len(paths))
	for i := range paths {
		_, okReal := sections[fmt.Sprintf("%d:real", i)]
		_, okEnd := sections[fmt.Sprintf("%d:end", i)]
		if !okReal || !okEnd {
			return nil, fmt.Errorf("guestfish said nothing of %s", paths[i])
		}
		res[i] = foundOf(sections, i, tmp, tag)
	}
	return res, nil
}

// emit writes the tar stream of every path found and returns the missing
// ones. A folder's tar-out names its entries "./x": they are renamed
// below the path's member; contents count against the cap.
func (r *diskReader) emit(paths []string, res []found, w io.Writer) ([]string, error) {
	tw := tar.NewWriter(w)
	var missing []string
	var total int64
	count := func(n int64) error {
		if total += n; total > r.maxBytes {
			return fmt.Errorf("the files read pass %d bytes: %w", r.maxBytes, errOverCap)
		}
		return nil
	}
	for i, gp := range paths {
		f := res[i]
		if !f.exists {
			missing = append(missing, gp)
			continue
		}
		member := strings.TrimPrefix(gp, "/")
		mtime := time.Unix(f.mtime, 0)
		perm := int64(f.mode & 0o7777)
		switch f.mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			if err := tw.WriteHeader(&tar.Header{Name: member + "/", Typeflag: tar.TypeDir, Mode: perm, ModTime: mtime}); err != nil {
				return nil, err
			}
			if err := copyTarOut(tw, f.data, member, count); err != nil {
				return nil, fmt.Errorf("%s: %w", gp, err)
			}
		case syscall.S_IFREG:
			fh, err := os.Open(f.data)
			if err != nil {
				return nil, fmt.Errorf("%s: guestfish did not download it: %w", gp, err)
			}
			fi, err := fh.Stat()
			if err == nil {
				err = count(fi.Size())
			}
			if err == nil {
				err = tw.WriteHeader(&tar.Header{Name: member, Typeflag: tar.TypeReg, Mode: perm, ModTime: mtime, Size: fi.Size()})
			}
			if err == nil {
				_, err = io.Copy(tw, fh)
			}
			fh.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", gp, err)
			}
		default:
			// A device, FIFO or socket: sent as such, the core skips it.
			if err := tw.WriteHeader(&tar.Header{Name: member, Typeflag: tar.TypeFifo, Mode: perm, ModTime: mtime}); err != nil {
				return nil, err
			}
		}
	}
	return missing, tw.Close()
}

// copyTarOut copies the entries of a tar-out archive into tw below member.
func copyTarOut(tw *tar.Writer, file, member string, count func(int64) error) error {
	fh, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("guestfish did not archive it: %w", err)
	}
	defer fh.Close()
	tr := tar.NewReader(bufio.NewReaderSize(fh, 256<<10))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read its archive: %w", err)
		}
		rel := strings.TrimPrefix(hdr.Name, "./")
		if rel == "" || rel == "." || rel == "./" {
			continue
		}
		out := &tar.Header{Name: member + "/" + rel, Typeflag: hdr.Typeflag, Mode: hdr.Mode, ModTime: hdr.ModTime,
			Linkname: hdr.Linkname, Size: hdr.Size}
		switch hdr.Typeflag {
		case tar.TypeLink:
			out.Linkname = member + "/" + strings.TrimPrefix(hdr.Linkname, "./")
		case tar.TypeReg, tar.TypeGNUSparse:
			out.Typeflag = tar.TypeReg
		default:
			out.Size = 0
		}
		if err := count(out.Size); err != nil {
			return err
		}
		if err := tw.WriteHeader(out); err != nil {
			return err
		}
		if out.Size > 0 {
			if _, err := io.Copy(tw, tr); err != nil {
				return err
			}
		}
	}
}
