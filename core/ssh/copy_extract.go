package ssh

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// A guest is not trusted with host paths. Every write of what it sends
// goes through an os.Root opened on the destination folder, and on top of
// that an entry is refused (ErrUnsafeEntry, nothing of it written) when
//   - its name is absolute, has a ".." component or is not under one of
//     the paths the copy asked for;
//   - it lies under a symbolic link (one it sent, or one already in a
//     folder being merged into): real tar never sends such entries, and a
//     chain such as `a -> .`, `a/b -> ..`, `b/x` needs them;
//   - it is a hard link to anything but a file this copy wrote.
// Symbolic links are created only once an item's files are all written,
// and each is then resolved through the tree as the kernel would: one that
// leads out of the item (absolute, or up past its top through any chain of
// links) is removed and reported as skipped, as are device files, FIFOs
// and sockets, which are never created. A new file or folder is written
// under a hidden temporary name and renamed only when the whole copy has
// succeeded, so a failed or killed copy never leaves a partial file under
// its final name.

// Limits bound what a copy from a guest may write on this host; a zero
// field is no bound.
type Limits struct {
	// MaxBytes caps the bytes of file contents.
	MaxBytes int64
	// MaxEntries caps the files, folders and links.
	MaxEntries int
}

// entry is one file, folder or link sent by the guest.
type entry struct {
	name string // as the guest sent it
	kind byte   // tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeLink; anything else is skipped
	// mode holds the permission bits; known says mode and mtime came
	// with the entry (a guest without stat sends neither).
	mode  fs.FileMode
	mtime time.Time
	known bool
	link  string
	// body writes a regular file's contents to w.
	body func(w io.Writer) error
}

// extractItem is one asked-for path being written under the root.
type extractItem struct {
	member string // its name in the stream: cleaned, slash-separated, relative
	name   string // its final name in the root: one path component

	started bool
	done    bool
	isDir   bool
	// dest is where its tree is written: a temporary name renamed to name
	// by commit (tmp), or name itself when merging into a folder.
	dest  string
	tmp   bool
	empty bool // nothing was kept (its only entry was skipped)

	dirs  []dirMeta
	links []string        // dest-relative names of symlinks, created at finish
	link  map[string]bool // the same, for lookups
	files map[string]bool // root-relative regular files written, for hard links
	targs map[string]string

	Files int
	Bytes int64
}

type dirMeta struct {
	name  string // root-relative
	mode  fs.FileMode
	mtime time.Time
	known bool
}

// extractor writes entries of one stream into root.
type extractor struct {
	root    *os.Root
	items   []*extractItem
	cur     *extractItem
	lim     Limits
	used    *usage // shared by the streams of one copy
	entries int
	bytes   int64
	skipped func(name, why string)
}

// usage is what the committed streams of one copy wrote.
type usage struct {
	entries int
	bytes   int64
}

func newExtractor(root *os.Root, items []*extractItem, lim Limits, used *usage, skipped func(string, string)) *extractor {
	for _, it := range items {
		it.link, it.files, it.targs = map[string]bool{}, map[string]bool{}, map[string]string{}
	}
	return &extractor{root: root, items: items, lim: lim, used: used, skipped: skipped}
}

func unsafef(name, format string, a ...any) error {
	return fmt.Errorf("%q: %s: %w", name, fmt.Sprintf(format, a...), ErrUnsafeEntry)
}

// cleanName checks a name from the guest and returns it cleaned ("./a/b/"
// is "a/b").
func cleanName(raw string) (string, error) {
	switch {
	case raw == "":
		return "", unsafef(raw, "empty name")
	case strings.HasPrefix(raw, "/"):
		return "", unsafef(raw, "absolute name")
	case strings.ContainsRune(raw, 0):
		return "", unsafef(raw, "NUL in name")
	}
	for _, c := range strings.Split(raw, "/") {
		if c == ".." {
			return "", unsafef(raw, "name goes up with ..")
		}
	}
	return path.Clean(raw), nil
}

// itemOf finds the item a cleaned name belongs to and the rest of the
// name below it ("" for the item itself, else "/x/y").
func (x *extractor) itemOf(name string) (*extractItem, string) {
	for _, it := range x.items {
		if name == it.member {
			return it, ""
		}
		if strings.HasPrefix(name, it.member+"/") {
			return it, name[len(it.member):]
		}
	}
	return nil, ""
}

func (x *extractor) skip(name, why string) {
	if x.skipped != nil {
		x.skipped(name, why)
	}
}

// add writes one entry.
func (x *extractor) add(e *entry) error {
	name, err := cleanName(e.name)
	if err != nil {
		return err
	}
	it, rest := x.itemOf(name)
	if it == nil {
		return unsafef(e.name, "not under a path the copy asked for")
	}
	if it != x.cur {
		if it.started {
			return unsafef(e.name, "comes after other paths' entries")
		}
		if x.cur != nil {
			if err := x.finishItem(x.cur); err != nil {
				return err
			}
		}
		x.cur = it
		if err := x.start(it, e, rest); err != nil {
			return err
		}
		if rest == "" {
			return nil
		}
	}
	if x.entries++; x.lim.MaxEntries > 0 && x.used.entries+x.entries > x.lim.MaxEntries {
		return fmt.Errorf("more than %d files, folders and links: %w", x.lim.MaxEntries, ErrTooLarge)
	}
	if rest == "" {
		return unsafef(e.name, "sent twice")
	}
	if !it.isDir {
		return unsafef(e.name, "under a file")
	}
	return x.addInside(it, e, rest[1:])
}

// start begins an item with its first entry, which is normally the item
// itself (rest == ""); a stream that starts inside it implies a folder.
func (x *extractor) start(it *extractItem, e *entry, rest string) error {
	it.started = true
	x.entries++
	kind := e.kind
	if rest != "" {
		kind = tar.TypeDir
	}
	fi, err := x.root.Lstat(it.name)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	switch kind {
	case tar.TypeDir:
		it.isDir = true
		switch {
		case exists && fi.IsDir():
			it.dest = it.name // merge, as cp -r does
		case exists:
			return fmt.Errorf("%s exists and is not a folder", x.hostName(it.name))
		default:
			it.dest, it.tmp = tempName(it.name), true
			if err := x.root.Mkdir(it.dest, dirPerm(e, rest == "")); err != nil {
				return err
			}
		}
		if rest == "" {
			it.dirs = append(it.dirs, dirMeta{name: it.dest, mode: e.mode, mtime: e.mtime, known: e.known})
		}
		return nil
	case tar.TypeReg:
		if exists && fi.IsDir() {
			return fmt.Errorf("%s is a folder", x.hostName(it.name))
		}
		it.dest, it.tmp = tempName(it.name), true
		n, err := x.writeAt(it.dest, e)
		if err != nil {
			return err
		}
		it.Files, it.Bytes = 1, n
		return nil
	case tar.TypeSymlink:
		// A link alone: whatever it names is outside the copy.
		x.skip(e.name, "a symbolic link to "+e.link+", outside the copy")
	case tar.TypeLink:
		return unsafef(e.name, "a hard link to %q, outside the copy", e.link)
	default:
		x.skip(e.name, "not a regular file, folder or link")
	}
	it.empty = true
	return nil
}

// dirPerm is the mode a folder is created with: owner-only until its own
// mode is set at the end when the guest sent one, else the usual 0755.
func dirPerm(e *entry, own bool) fs.FileMode {
	if own && e.known {
		return 0o700
	}
	return 0o755
}

func (x *extractor) hostName(name string) string { return path.Join(x.root.Name(), name) }

// addInside writes an entry below a folder item; rel is its
// slash-separated name below the item.
func (x *extractor) addInside(it *extractItem, e *entry, rel string) error {
	target := path.Join(it.dest, rel)
	if err := x.parents(it, e.name, rel); err != nil {
		return err
	}
	if it.link[rel] {
		return unsafef(e.name, "sent twice")
	}
	switch e.kind {
	case tar.TypeDir:
		fi, err := x.root.Lstat(target)
		switch {
		case err == nil && fi.IsDir():
		case err == nil:
			return fmt.Errorf("%s exists and is not a folder", x.hostName(target))
		case errors.Is(err, fs.ErrNotExist):
			if err := x.root.Mkdir(target, dirPerm(e, true)); err != nil {
				return err
			}
		default:
			return err
		}
		it.dirs = append(it.dirs, dirMeta{name: target, mode: e.mode, mtime: e.mtime, known: e.known})
	case tar.TypeReg:
		if err := x.writeFile(it, target, e); err != nil {
			return err
		}
	case tar.TypeSymlink:
		it.links = append(it.links, rel)
		it.link[rel] = true
		it.targs[rel] = e.link
	case tar.TypeLink:
		src, err := cleanName(e.link)
		if err != nil {
			return unsafef(e.name, "a hard link to %q, outside the copy", e.link)
		}
		sit, srest := x.itemOf(src)
		if sit != it || srest == "" || !it.files[path.Join(it.dest, srest[1:])] {
			return unsafef(e.name, "a hard link to %q, which this copy did not write", e.link)
		}
		tmp := path.Join(path.Dir(target), tempName(path.Base(target)))
		if err := x.root.Link(path.Join(it.dest, srest[1:]), tmp); err != nil {
			return err
		}
		if err := x.replace(tmp, target); err != nil {
			return err
		}
		it.files[target] = true
		it.Files++
	default:
		x.skip(e.name, "not a regular file, folder or link")
	}
	return nil
}

// parents makes sure every folder above rel is a real folder of the item,
// creating missing ones: never a link, whether sent by the guest or found
// in a folder being merged into.
func (x *extractor) parents(it *extractItem, name, rel string) error {
	dir := path.Dir(rel)
	if dir == "." {
		return nil
	}
	p := ""
	for _, c := range strings.Split(dir, "/") {
		p = path.Join(p, c)
		if it.link[p] {
			return unsafef(name, "under the symbolic link %q", p)
		}
		full := path.Join(it.dest, p)
		fi, err := x.root.Lstat(full)
		switch {
		case err == nil && fi.Mode()&fs.ModeSymlink != 0:
			return unsafef(name, "under the symbolic link %s", x.hostName(full))
		case err == nil && !fi.IsDir():
			return unsafef(name, "under %s, which is not a folder", x.hostName(full))
		case err == nil:
		case errors.Is(err, fs.ErrNotExist):
			if err := x.root.Mkdir(full, 0o755); err != nil {
				return err
			}
		default:
			return err
		}
	}
	return nil
}

// writeFile writes a regular file at target (root-relative) through a
// temporary name in the same folder.
func (x *extractor) writeFile(it *extractItem, target string, e *entry) error {
	tmp := path.Join(path.Dir(target), tempName(path.Base(target)))
	n, err := x.writeAt(tmp, e)
	if err != nil {
		return err
	}
	if err := x.replace(tmp, target); err != nil {
		return err
	}
	it.files[target] = true
	it.Files++
	it.Bytes += n
	return nil
}

// writeAt creates name (which must not exist) with e's contents, mode and
// time; on failure it leaves nothing.
func (x *extractor) writeAt(name string, e *entry) (n int64, err error) {
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			_ = x.root.Remove(name)
		}
	}()
	w := &countWriter{w: f, x: x}
	err = e.body(w)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return w.n, err
	}
	mode := fs.FileMode(0o644)
	if e.known {
		mode = e.mode.Perm()
	}
	if err := x.root.Chmod(name, mode); err != nil {
		return w.n, err
	}
	if e.known && !e.mtime.IsZero() {
		if err := x.root.Chtimes(name, e.mtime, e.mtime); err != nil {
			return w.n, err
		}
	}
	return w.n, nil
}

// replace renames tmp over target unless target is a folder.
func (x *extractor) replace(tmp, target string) error {
	if fi, err := x.root.Lstat(target); err == nil && fi.IsDir() {
		_ = x.root.Remove(tmp)
		return fmt.Errorf("%s is a folder", x.hostName(target))
	}
	if err := x.root.Rename(tmp, target); err != nil {
		_ = x.root.Remove(tmp)
		return err
	}
	return nil
}

// countWriter counts file bytes against the limits.
type countWriter struct {
	w io.Writer
	x *extractor
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	x := c.x
	if x.lim.MaxBytes > 0 && x.used.bytes+x.bytes+int64(len(p)) > x.lim.MaxBytes {
		return 0, fmt.Errorf("more than %d bytes: %w", x.lim.MaxBytes, ErrTooLarge)
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	x.bytes += int64(n)
	return n, err
}

// finish ends the stream: the last item's links and folder metadata.
func (x *extractor) finish() error {
	if x.cur == nil {
		return nil
	}
	err := x.finishItem(x.cur)
	x.cur = nil
	return err
}

// finishItem creates an item's symbolic links, removes those that lead
// out of it, and sets its folders' modes and times, deepest first (writing
// into a folder changes its time).
func (x *extractor) finishItem(it *extractItem) error {
	it.done = true
	if !it.isDir {
		return nil
	}
	for _, rel := range it.links {
		target := path.Join(it.dest, rel)
		tmp := path.Join(path.Dir(target), tempName(path.Base(target)))
		if err := x.root.Symlink(it.targs[rel], tmp); err != nil {
			return err
		}
		if err := x.replace(tmp, target); err != nil {
			return err
		}
	}
	// Removing a link can change where others lead: repeat until none
	// leads out.
	kept := it.links
	for changed := true; changed; {
		changed = false
		var next []string
		for _, rel := range kept {
			if x.staysInside(it.dest, rel) {
				next = append(next, rel)
				continue
			}
			if err := x.root.Remove(path.Join(it.dest, rel)); err != nil {
				return err
			}
			x.skip(it.member+"/"+rel, "a symbolic link to "+it.targs[rel]+", outside the copy")
			changed = true
		}
		kept = next
	}
	sort.SliceStable(it.dirs, func(i, j int) bool {
		return strings.Count(it.dirs[i].name, "/") > strings.Count(it.dirs[j].name, "/")
	})
	for _, d := range it.dirs {
		if !d.known {
			continue
		}
		if err := x.root.Chmod(d.name, d.mode.Perm()|0o700); err != nil {
			return err
		}
		if !d.mtime.IsZero() {
			if err := x.root.Chtimes(d.name, d.mtime, d.mtime); err != nil {
				return err
			}
		}
	}
	return nil
}

// maxLinkHops is the kernel's bound on links followed in one lookup.
const maxLinkHops = 40

// staysInside resolves the link rel (below dest) through the tree as the
// kernel would and says whether it stays within dest.
func (x *extractor) staysInside(dest, rel string) bool {
	link, err := x.root.Readlink(path.Join(dest, rel))
	if err != nil || path.IsAbs(link) {
		return false
	}
	var cur []string
	if d := path.Dir(rel); d != "." {
		cur = strings.Split(d, "/")
	}
	pending := strings.Split(link, "/")
	for hops := 0; len(pending) > 0; {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return false
			}
			cur = cur[:len(cur)-1]
			continue
		}
		next := append(cur[:len(cur):len(cur)], c)
		p := path.Join(dest, strings.Join(next, "/"))
		fi, err := x.root.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			cur = next // a file, a folder, or nothing (the lookup stops there)
			continue
		}
		if hops++; hops > maxLinkHops {
			return false
		}
		t, err := x.root.Readlink(p)
		if err != nil || path.IsAbs(t) {
			return false
		}
		pending = append(strings.Split(t, "/"), pending...)
	}
	return true
}

// commit renames every finished item to its final name and counts what
// was written against the copy's limits.
func (x *extractor) commit() error {
	for _, it := range x.items {
		if !it.done || !it.tmp || it.empty {
			continue
		}
		if err := x.replace(it.dest, it.name); err != nil {
			return err
		}
		it.tmp = false
	}
	x.used.entries += x.entries
	x.used.bytes += x.bytes
	return nil
}

// abort removes what the stream wrote under temporary names.
func (x *extractor) abort() {
	for _, it := range x.items {
		if it.tmp {
			_ = x.root.RemoveAll(it.dest)
			it.tmp = false
		}
	}
}
