package ssh

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// pushProbe looks at the guest before a copy to it: "t" or "-" (tar), then
// the kinds of $1 (the destination), $1/$2 ($2 the source's name) and $3
// (the destination's parent): d a folder, f anything else, l a dangling
// link, n nothing.
const pushProbe = `k() { if [ -d "$1" ]; then printf d; elif [ -e "$1" ]; then printf f; elif [ -L "$1" ]; then printf l; else printf n; fi; }
if command -v tar >/dev/null 2>&1; then printf t; else printf -; fi
k "$1"; k "$1/$2"; k "$3"`

// pushTar extracts the archive on stdin in the folder $1; the archive's
// top entry is $2, renamed to $3 once complete ($2 empty: the archive is
// merged into the existing folder $3).
const pushTar = `cd -- "$1" || exit 1
if tar -x -o -f -; then :; else rc=$?; [ -z "$2" ] || rm -rf "./$2"; exit $rc; fi
[ -z "$2" ] || mv -f "./$2" "./$3" || { rc=$?; rm -rf "./$2"; exit $rc; }`

// pushTimes sets folders' times (stdin: a stamp line, a name line, ...),
// which busybox tar does not keep: creating a folder's files changes it.
const pushTimes = `cd -- "$1" || exit 1
rc=0
while IFS= read -r s && IFS= read -r p; do TZ=UTC0 touch -c -t "$s" "$p" || rc=1; done
exit $rc`

// Scripts of a copy file by file, for a guest without tar; names start
// with "./" and are relative to the folder $1.
const (
	pushMkdir = `cd -- "$1" && mkdir -p "$2"`
	pushFile  = `cd -- "$1" && cat > "$2" && chmod "$3" "$2" && TZ=UTC0 touch -c -t "$4" "$2"`
	pushLink  = `cd -- "$1" && ln -s -f -- "$2" "$3"`
	pushDir   = `cd -- "$1" && chmod "$2" "$3" && TZ=UTC0 touch -c -t "$4" "$3"`
	pushMove  = `cd -- "$1" && mv -f "./$2" "./$3"`
	pushClean = `cd -- "$1" && rm -rf "./$2"`
)

// touchStamp is touch -t's format, read in UTC (TZ=UTC0).
const touchStamp = "200601021504.05"

// pushEntry is one local file, folder or link of a copy.
type pushEntry struct {
	rel  string // slash-separated below the source; "" for the source itself
	info fs.FileInfo
	path string
	link string
}

// Push copies a local file or folder (a symbolic link followed) to remote
// in the guest: into remote when it is a folder, else as remote, whose
// parent must exist; a folder onto an existing folder merges, as cp -r
// does. Modes and times (to the second) are kept; links inside a folder
// are copied as links; sockets and devices are left out. A new file or
// folder gets its final name only once complete. A missing local path or
// remote parent is a *NotFoundError.
func Push(ctx context.Context, r Runner, local, remote string) error {
	st, err := os.Stat(local)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &NotFoundError{Path: local}
		}
		return fmt.Errorf("copy %s: %w", local, err)
	}
	abs, err := filepath.Abs(local)
	if err != nil {
		return fmt.Errorf("copy %s: %w", local, err)
	}
	base := filepath.Base(abs)
	if remote == "" {
		return fmt.Errorf("copy %s: no path in the guest", local)
	}
	clean := path.Clean(remote)
	parent := path.Dir(clean)
	var out, stderr = &capped{max: 64}, newCapped()
	code, err := r.Run(ctx, []string{"sh", "-c", pushProbe, "sh", remote, base, parent}, nil, out, stderr)
	if err != nil {
		return fmt.Errorf("copy %s: look at %s in the guest: %w", local, remote, err)
	}
	if code != 0 {
		return remoteError(fmt.Sprintf("copy %s: look at %s in the guest", local, remote), code, stderr)
	}
	answer, _ := out.Bytes()
	if len(answer) != 4 {
		return fmt.Errorf("copy %s: look at %s in the guest: unexpected answer %q", local, remote, answer)
	}
	hasTar, kind := answer[0] == 't', answer[2]
	dir, name := remote, base
	if answer[1] != 'd' {
		if answer[3] != 'd' {
			return &NotFoundError{Path: parent, Remote: true}
		}
		dir, name, kind = parent, path.Base(clean), answer[1]
	}
	final := path.Join(dir, name)
	switch {
	case name == "/" || name == "." || name == "..":
		return fmt.Errorf("copy %s to %s: name the copy (a file name, not %s)", local, remote, name)
	case st.IsDir() && kind == 'f':
		return fmt.Errorf("copy %s: %s in the guest is not a folder", local, final)
	case !st.IsDir() && kind == 'd':
		return fmt.Errorf("copy %s: %s in the guest is a folder", local, final)
	}
	entries, err := walkLocal(local, st)
	if err != nil {
		return fmt.Errorf("copy %s: %w", local, err)
	}
	merge := st.IsDir() && kind == 'd'
	top := tempName(name)
	if merge {
		top = name
	}
	if hasTar {
		err = pushArchive(ctx, r, entries, dir, top, name, merge)
	} else {
		err = pushFiles(ctx, r, entries, dir, top, name, merge)
	}
	if err == nil && st.IsDir() {
		err = pushDirTimes(ctx, r, entries, dir, name)
	}
	if err != nil {
		return fmt.Errorf("copy %s to %s in the guest: %w", local, final, err)
	}
	return nil
}

// walkLocal lists the source: the file, or the folder and everything in
// it (links not followed).
func walkLocal(local string, st fs.FileInfo) ([]pushEntry, error) {
	if !st.IsDir() {
		if !st.Mode().IsRegular() {
			return nil, errors.New("not a regular file or folder")
		}
		return []pushEntry{{info: st, path: local}}, nil
	}
	// WalkDir does not follow a link it starts from.
	local, err := filepath.EvalSymlinks(local)
	if err != nil {
		return nil, err
	}
	var out []pushEntry
	err = filepath.WalkDir(local, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(local, p)
		if err != nil {
			return err
		}
		if rel == "." {
			rel = ""
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if rel == "" {
			info = st // the source itself, a link followed
		}
		e := pushEntry{rel: filepath.ToSlash(rel), info: info, path: p}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if e.link, err = os.Readlink(p); err != nil {
				return err
			}
		case info.IsDir(), info.Mode().IsRegular():
		default:
			return nil // a socket, FIFO or device
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

func (e pushEntry) name(top string) string {
	if e.rel == "" {
		return "./" + top
	}
	return "./" + top + "/" + e.rel
}

// pushArchive streams the entries as one archive to the guest's tar.
func pushArchive(ctx context.Context, r Runner, entries []pushEntry, dir, top, name string, merge bool) error {
	tmp := top
	if merge {
		tmp = ""
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := writeArchive(pw, entries, top)
		pw.CloseWithError(err)
		done <- err
	}()
	stderr := newCapped()
	code, err := r.Run(ctx, []string{"sh", "-c", pushTar, "sh", dir, tmp, name}, pr, nil, stderr)
	pr.Close()
	werr := <-done
	switch {
	case err != nil:
		return err
	case werr != nil && !errors.Is(werr, io.ErrClosedPipe):
		return werr
	case code != 0:
		return remoteError("tar in the guest", code, stderr)
	case werr != nil:
		return werr
	}
	return nil
}

// writeArchive writes the entries as a tar stream, the source named top.
func writeArchive(w io.Writer, entries []pushEntry, top string) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr, err := tar.FileInfoHeader(e.info, e.link)
		if err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
		hdr.Name = e.name(top)
		if e.info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Mode &= 0o7777
		hdr.ModTime = e.info.ModTime().Truncate(time.Second)
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Uname, hdr.Gname, hdr.Uid, hdr.Gid = "", "", 0, 0
		// GNU long names, which busybox tar reads, rather than PAX.
		hdr.Format = tar.FormatGNU
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
		if !e.info.Mode().IsRegular() {
			continue
		}
		if err := copyFileTo(tw, e.path, hdr.Size); err != nil {
			return err
		}
	}
	return tw.Close()
}

// copyFileTo writes exactly size bytes of the file at p: a file that
// shrank or grew since it was listed fails the copy rather than sending a
// torn one.
func copyFileTo(w io.Writer, p string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyN(w, f, size)
	if err == io.EOF {
		return fmt.Errorf("%s: shrank to %d bytes while being copied", p, n)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// pushFiles copies the entries one command each, for a guest without tar.
func pushFiles(ctx context.Context, r Runner, entries []pushEntry, dir, top, name string, merge bool) error {
	run := func(what, script string, stdin io.Reader, args ...string) error {
		stderr := newCapped()
		code, err := r.Run(ctx, append([]string{"sh", "-c", script, "sh", dir}, args...), stdin, nil, stderr)
		if err != nil {
			return err
		}
		if code != 0 {
			return remoteError(what+" in the guest", code, stderr)
		}
		return nil
	}
	err := func() error {
		var dirs []pushEntry
		for _, e := range entries {
			n := e.name(top)
			switch {
			case e.info.IsDir():
				if err := run("create "+n, pushMkdir, nil, n); err != nil {
					return err
				}
				dirs = append(dirs, e)
			case e.link != "":
				if err := run("link "+n, pushLink, nil, e.link, n); err != nil {
					return err
				}
			default:
				f, err := os.Open(e.path)
				if err != nil {
					return err
				}
				err = run("write "+n, pushFile, f, n, fmt.Sprintf("%o", e.info.Mode().Perm()), stamp(e.info))
				f.Close()
				if err != nil {
					return err
				}
			}
		}
		for i := len(dirs) - 1; i >= 0; i-- { // deepest first
			e := dirs[i]
			if err := run("set the mode of "+e.name(top), pushDir, nil, fmt.Sprintf("%o", e.info.Mode().Perm()), e.name(top), stamp(e.info)); err != nil {
				return err
			}
		}
		if merge {
			return nil
		}
		return run("rename "+top, pushMove, nil, top, name)
	}()
	if err != nil && !merge {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, _ = r.Run(cctx, []string{"sh", "-c", pushClean, "sh", dir, top}, nil, nil, nil)
	}
	return err
}

func stamp(fi fs.FileInfo) string { return fi.ModTime().UTC().Format(touchStamp) }

// pushDirTimes sets the copied folders' times, deepest first.
func pushDirTimes(ctx context.Context, r Runner, entries []pushEntry, dir, name string) error {
	var dirs []pushEntry
	for _, e := range entries {
		if e.info.IsDir() && !strings.Contains(e.rel, "\n") {
			dirs = append(dirs, e)
		}
	}
	depth := func(rel string) int {
		if rel == "" {
			return -1
		}
		return strings.Count(rel, "/")
	}
	sort.SliceStable(dirs, func(i, j int) bool { return depth(dirs[i].rel) > depth(dirs[j].rel) })
	var b strings.Builder
	for _, e := range dirs {
		fmt.Fprintf(&b, "%s\n%s\n", stamp(e.info), e.name(name))
	}
	stderr := newCapped()
	code, err := r.Run(ctx, []string{"sh", "-c", pushTimes, "sh", dir}, strings.NewReader(b.String()), nil, stderr)
	if err != nil {
		return err
	}
	if code != 0 {
		return remoteError("set folder times in the guest", code, stderr)
	}
	return nil
}
