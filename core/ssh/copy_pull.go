package ssh

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PullItem is one guest path of a Pull and the name its copy takes in the
// destination folder.
type PullItem struct {
	// Remote is the path in the guest; a relative one is relative to the
	// login's home folder. A symbolic link is followed.
	Remote string
	// Name is one path component: the copy's name in the folder.
	Name string
}

// PullResult says what became of one PullItem.
type PullResult struct {
	PullItem
	// Missing says Remote does not exist; nothing was written.
	Missing bool
	// Files and Bytes count the regular files written and their bytes.
	Files int
	Bytes int64
	// Err is why the item was not copied (Missing aside).
	Err error
}

// PullOptions tune a Pull.
type PullOptions struct {
	// Compress has the guest gzip the stream when it can (`tar -z`): worth
	// it for text such as logs, not for a big binary on a slow guest CPU.
	Compress bool
	Limits   Limits
	// Skipped, when set, hears of each entry not written and why.
	Skipped func(name, why string)
}

// pullProbe looks at the guest's tools and at each path (after $1, the
// paths): NUL-separated, first "t" or "-" (tar) then "z" or "-" (gzip),
// then per path its kind (d, f or n) and its absolute path with a final
// symbolic link resolved.
const pullProbe = `t=-; command -v tar >/dev/null 2>&1 && t=t
z=-; command -v gzip >/dev/null 2>&1 && z=z
printf '%s%s\0' "$t" "$z"
for p; do
	r=$p
	if [ -L "$r" ]; then r=$(readlink -f -- "$p" 2>/dev/null) || r=$p; [ -n "$r" ] || r=$p; fi
	case $r in /*) ;; *) r=$(pwd)/$r ;; esac
	if [ -d "$r" ]; then k=d; elif [ -e "$r" ]; then k=f; else k=n; fi
	printf '%s\0%s\0' "$k" "$r"
done`

// pullTar streams the paths after $1 (the -z flag or "") as one archive,
// named relative to /.
const pullTar = `z=$1; shift; cd / && exec tar -c${z}f - "$@"`

// pullList lists the paths after $1 (relative to /) for a guest without
// tar: per entry, NUL-separated, "KIND MODE MTIME" (KIND d, f, l or o;
// MODE and MTIME "-" without stat), the name, and a link's target.
const pullList = `cd / || exit 1
exec find "$@" -exec sh -c '
for f; do
	if [ -L "$f" ]; then k=l; l=$(readlink -- "$f"); elif [ -d "$f" ]; then k=d; l=; elif [ -f "$f" ]; then k=f; l=; else k=o; l=; fi
	m=$(stat -c "%a %Y" -- "$f" 2>/dev/null) || m="- -"
	printf "%s %s\0%s\0%s\0" "$k" "$m" "$f" "$l"
done' sh {} +`

// pullCat is one file's contents, for a guest without tar.
const pullCat = `cd / && exec cat -- "$1"`

// maxListing bounds a listing held in memory (guests without tar only),
// maxProbe the probe's answer.
const (
	maxListing = 64 << 20
	maxProbe   = 4 << 20
)

// Pull copies guest paths into the host folder dir, item i under
// items[i].Name. A path that does not exist is reported Missing, not as
// an error. The guest sends one archive for all the items when it has tar
// (compressed when o.Compress and it has gzip), file by file otherwise;
// nested items (one inside another) go in separate archives, and when an
// archive of several items fails, each is fetched alone so that one bad
// path costs only itself. The error joins the items' errors and anything
// that stopped the whole copy; when the copy could not start at all, the
// results are nil.
func Pull(ctx context.Context, r Runner, dir string, items []PullItem, o PullOptions) ([]PullResult, error) {
	res, root, err := startPull(dir, items)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	p := &puller{r: r, root: root, o: o, used: &usage{}}
	if len(items) == 0 {
		return res, nil
	}
	members, err := p.probe(ctx, items)
	if err != nil {
		return nil, err
	}
	var todo []*pullState
	for i := range items {
		switch m := members[i]; {
		case m == "":
			res[i].Missing = true
		case m == ".":
			res[i].Err = fmt.Errorf("copy %s: refusing to copy the guest's whole file system", items[i].Remote)
		default:
			todo = append(todo, &pullState{res: &res[i], member: m})
		}
	}
	for _, g := range groups(todo) {
		err := ctx.Err()
		if err == nil {
			err = p.group(ctx, g)
		}
		if err == nil {
			continue
		}
		if len(g) == 1 || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			for _, s := range g {
				s.res.Err = fmt.Errorf("copy %s: %w", s.res.Remote, err)
			}
			continue
		}
		for _, s := range g {
			if err := p.group(ctx, []*pullState{s}); err != nil {
				s.res.Err = fmt.Errorf("copy %s: %w", s.res.Remote, err)
			}
		}
	}
	var errs []error
	for i := range res {
		if res[i].Err != nil {
			errs = append(errs, res[i].Err)
		}
	}
	return res, errors.Join(errs...)
}

// CopyFrom copies the guest's remote (a file or a folder, a symbolic link
// followed) to local on this host: into local when it is a folder, else as
// local, whose parent must exist. A missing remote is a *NotFoundError.
func CopyFrom(ctx context.Context, r Runner, remote, local string, o PullOptions) error {
	dir, name := filepath.Dir(local), filepath.Base(local)
	st, err := os.Stat(local)
	switch {
	case err == nil && st.IsDir():
		dir, name = local, path.Base(path.Clean(remote))
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("copy %s: %w", remote, err)
	}
	if name == "/" || name == "." || name == ".." {
		return fmt.Errorf("copy %s to %s: name the copy (a file name, not %s)", remote, local, name)
	}
	res, err := Pull(ctx, r, dir, []PullItem{{Remote: remote, Name: name}}, o)
	if err != nil {
		return err
	}
	if res[0].Missing {
		return &NotFoundError{Path: remote, Remote: true}
	}
	return nil
}

type pullState struct {
	res    *PullResult
	member string // its absolute path in the guest without the leading /
}

type puller struct {
	r    Runner
	root *os.Root
	o    PullOptions
	used *usage
	tar  bool
	gzip bool
}

// probe learns the guest's tools and each item's member name ("" when
// missing, "." for /).
func (p *puller) probe(ctx context.Context, items []PullItem) ([]string, error) {
	argv := []string{"sh", "-c", pullProbe, "sh"}
	for _, it := range items {
		argv = append(argv, it.Remote)
	}
	out := &capped{max: maxProbe}
	stderr := newCapped()
	code, err := p.r.Run(ctx, argv, nil, out, stderr)
	if err != nil {
		return nil, fmt.Errorf("look at paths in the guest: %w", err)
	}
	if code != 0 {
		return nil, remoteError("look at paths in the guest", code, stderr)
	}
	answer, _ := out.Bytes()
	f := strings.Split(string(answer), "\x00")
	if len(f) != 2+2*len(items) || len(f[0]) != 2 {
		return nil, fmt.Errorf("look at paths in the guest: unexpected answer %.200q", answer)
	}
	p.tar, p.gzip = f[0][0] == 't', f[0][1] == 'z'
	members := make([]string, len(items))
	for i := range items {
		kind, abs := f[1+2*i], f[2+2*i]
		if kind == "n" {
			continue
		}
		members[i] = strings.TrimPrefix(path.Clean("/"+abs), "/")
		if members[i] == "" {
			members[i] = "."
		}
	}
	return members, nil
}

// groups splits items so that no member of a group is inside, or is,
// another one of it: each entry of a stream then belongs to one item.
func groups(items []*pullState) [][]*pullState {
	var out [][]*pullState
	nested := func(a, b string) bool {
		return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
	}
next:
	for _, it := range items {
		for gi, g := range out {
			ok := true
			for _, o := range g {
				if nested(it.member, o.member) {
					ok = false
					break
				}
			}
			if ok {
				out[gi] = append(out[gi], it)
				continue next
			}
		}
		out = append(out, []*pullState{it})
	}
	return out
}

// group copies one group of items, all or nothing.
func (p *puller) group(ctx context.Context, g []*pullState) error {
	items := make([]*extractItem, len(g))
	for i, s := range g {
		items[i] = &extractItem{member: s.member, name: s.res.Name}
	}
	x := newExtractor(p.root, items, p.o.Limits, p.used, p.o.Skipped)
	var err error
	if p.tar {
		err = p.tarGroup(ctx, x, g)
	} else {
		err = p.listGroup(ctx, x, g)
	}
	if err == nil {
		for _, it := range items {
			if !it.started {
				err = fmt.Errorf("the guest sent nothing for /%s", it.member)
				break
			}
		}
	}
	if err == nil {
		err = x.commit()
	}
	if err != nil {
		x.abort()
		return err
	}
	for i, it := range items {
		g[i].res.Files, g[i].res.Bytes = it.Files, it.Bytes
		if it.empty {
			g[i].res.Err = fmt.Errorf("copy %s: a symbolic link or special file: nothing copied", g[i].res.Remote)
		}
	}
	return nil
}

// tarGroup streams the group as one archive from the guest's tar.
func (p *puller) tarGroup(ctx context.Context, x *extractor, g []*pullState) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	z := ""
	if p.o.Compress && p.gzip {
		z = "z"
	}
	argv := []string{"sh", "-c", pullTar, "sh", z}
	for _, s := range g {
		argv = append(argv, "./"+s.member)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := readArchive(pr, z != "", x.add)
		if err == nil {
			err = x.finish()
		}
		if err != nil {
			// The guest's tar would block on a stream nobody reads:
			// end the command.
			cancel()
			pr.CloseWithError(err)
		} else {
			// tar pads the archive past its end marker; take the rest.
			_, _ = io.Copy(io.Discard, pr)
		}
		done <- err
	}()
	stderr := newCapped()
	code, err := p.r.Run(ctx, argv, nil, pw, stderr)
	pw.Close()
	if xerr := <-done; xerr != nil {
		return xerr
	}
	if err != nil {
		return fmt.Errorf("stream from the guest: %w", err)
	}
	if code != 0 {
		return remoteError("tar in the guest", code, stderr)
	}
	return nil
}

// readArchive feeds each entry of a tar stream to add.
func readArchive(r io.Reader, gz bool, add func(*entry) error) error {
	if gz {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("read the archive from the guest: %w", err)
		}
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the archive from the guest: %w", err)
		}
		e := &entry{name: hdr.Name, kind: hdr.Typeflag, mode: fs.FileMode(hdr.Mode).Perm(), mtime: hdr.ModTime, known: true, link: hdr.Linkname}
		switch hdr.Typeflag {
		case tar.TypeXGlobalHeader:
			continue
		case tar.TypeReg, '\x00', tar.TypeGNUSparse, tar.TypeCont:
			e.kind = tar.TypeReg
			size := hdr.Size
			e.body = func(w io.Writer) error {
				n, err := io.Copy(w, tr)
				if err == nil && n != size {
					err = fmt.Errorf("%s: %d of %d bytes: %w", hdr.Name, n, size, io.ErrUnexpectedEOF)
				}
				return err
			}
		}
		if err := add(e); err != nil {
			return err
		}
	}
}

// listGroup copies the group file by file, for a guest without tar: one
// listing, then one `cat` per file, on the same connection.
func (p *puller) listGroup(ctx context.Context, x *extractor, g []*pullState) error {
	argv := []string{"sh", "-c", pullList, "sh"}
	for _, s := range g {
		argv = append(argv, "./"+s.member)
	}
	out := &capped{max: maxListing}
	stderr := newCapped()
	code, err := p.r.Run(ctx, argv, nil, out, stderr)
	if err != nil {
		return fmt.Errorf("list files in the guest: %w", err)
	}
	listing, over := out.Bytes()
	if over {
		return fmt.Errorf("list files in the guest: more than %d bytes of names: %w", maxListing, ErrTooLarge)
	}
	if code == 127 {
		return errors.New("the guest has neither tar nor find")
	}
	if code != 0 {
		return remoteError("list files in the guest", code, stderr)
	}
	sc := bufio.NewScanner(bytes.NewReader(listing))
	sc.Buffer(make([]byte, 0, 64<<10), maxListing)
	sc.Split(splitNUL)
	for {
		var f [3]string
		n := 0
		for ; n < 3 && sc.Scan(); n++ {
			f[n] = sc.Text()
		}
		if n == 0 {
			break
		}
		if n < 3 {
			return fmt.Errorf("list files in the guest: truncated listing")
		}
		e, err := listedEntry(f[0], f[1], f[2])
		if err != nil {
			return err
		}
		if e.kind == tar.TypeReg {
			name := f[1]
			e.body = func(w io.Writer) error {
				stderr := newCapped()
				code, err := runTo(ctx, p.r, []string{"sh", "-c", pullCat, "sh", name}, w, stderr)
				if err != nil {
					return fmt.Errorf("read /%s in the guest: %w", strings.TrimPrefix(name, "./"), err)
				}
				if code != 0 {
					return remoteError("read /"+strings.TrimPrefix(name, "./")+" in the guest", code, stderr)
				}
				return nil
			}
		}
		if err := x.add(e); err != nil {
			return err
		}
	}
	return x.finish()
}

// listedEntry parses one record of pullList.
func listedEntry(head, name, link string) (*entry, error) {
	f := strings.Fields(head)
	if len(f) != 3 {
		return nil, fmt.Errorf("list files in the guest: bad record %q", head)
	}
	e := &entry{name: name, link: link}
	switch f[0] {
	case "d":
		e.kind = tar.TypeDir
	case "f":
		e.kind = tar.TypeReg
	case "l":
		e.kind = tar.TypeSymlink
	default:
		e.kind = tar.TypeFifo // skipped
	}
	if f[1] != "-" {
		mode, err1 := strconv.ParseUint(f[1], 8, 32)
		mtime, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 == nil && err2 == nil {
			e.mode, e.mtime, e.known = fs.FileMode(mode).Perm(), time.Unix(mtime, 0), true
		}
	}
	return e, nil
}

func splitNUL(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// runTo runs argv with its stdout written to w. A failed write ends the
// command, which would otherwise block on output nobody reads, and is the
// error returned. Nothing reaches w once runTo has returned, even from a
// session that was cut off and is still being torn down.
func runTo(ctx context.Context, r Runner, argv []string, w io.Writer, stderr io.Writer) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cw := &cancelWriter{w: w, cancel: cancel}
	code, err := r.Run(ctx, argv, nil, cw, stderr)
	cw.mu.Lock()
	defer cw.mu.Unlock()
	cw.closed = true
	if cw.err != nil {
		return code, cw.err
	}
	return code, err
}

type cancelWriter struct {
	mu     sync.Mutex
	w      io.Writer
	cancel func()
	err    error
	closed bool
}

func (c *cancelWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, io.ErrClosedPipe
	}
	n, err := c.w.Write(p)
	if err != nil && c.err == nil {
		c.err = err
		c.cancel()
	}
	return n, err
}

// startPull checks the items' names (one file name each, no two alike)
// and opens the os.Root every write of the pull goes through; res holds
// the items.
func startPull(dir string, items []PullItem) (res []PullResult, root *os.Root, err error) {
	res = make([]PullResult, len(items))
	seen := map[string]bool{}
	for i, it := range items {
		res[i].PullItem = it
		if it.Name == "" || it.Name == "." || it.Name == ".." || strings.ContainsAny(it.Name, "/\x00") {
			return nil, nil, fmt.Errorf("copy %s: %q is not a file name", it.Remote, it.Name)
		}
		if seen[it.Name] {
			return nil, nil, fmt.Errorf("copy %s: two paths would be copied to %s", it.Remote, filepath.Join(dir, it.Name))
		}
		seen[it.Name] = true
	}
	root, err = os.OpenRoot(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, &NotFoundError{Path: dir}
		}
		return nil, nil, fmt.Errorf("copy into %s: %w", dir, err)
	}
	return res, root, nil
}
