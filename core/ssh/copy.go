package ssh

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Files are copied with the guest's own `cat` and `tar` (busybox has both)
// instead of scp or sftp, which minimal guests often lack; names travel as
// positional parameters of a fixed script, never spliced into shell text.

// ErrRemoteNotFound is wrapped when the remote path of CopyFrom does not exist
// (`lago collect` skips such paths unless --no-skip).
var ErrRemoteNotFound = errors.New("remote path does not exist")

// CopyTo copies a local file or folder to remote. A file lands at remote
// (or inside it when remote is an existing folder), keeping its mode bits; a
// folder's contents land in the folder remote, created if missing.
func (c *Client) CopyTo(ctx context.Context, local, remote string) error {
	st, err := os.Stat(local)
	if err != nil {
		return fmt.Errorf("copy to vm: %w", err)
	}
	var stderr bytes.Buffer
	var code int
	if st.IsDir() {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeTar(pw, local)) }()
		code, err = c.Run(ctx, []string{"sh", "-c", `mkdir -p -- "$1" && tar -x -f - -C "$1"`, "sh", remote}, pr, nil, &stderr)
		pr.Close()
	} else {
		f, ferr := os.Open(local)
		if ferr != nil {
			return fmt.Errorf("copy to vm: %w", ferr)
		}
		defer f.Close()
		mode := fmt.Sprintf("%o", st.Mode().Perm())
		script := `t="$1"; if [ -d "$t" ]; then t="$t/$3"; fi; cat > "$t" && chmod "$2" "$t"`
		code, err = c.Run(ctx, []string{"sh", "-c", script, "sh", remote, mode, filepath.Base(local)}, f, nil, &stderr)
	}
	if err != nil {
		return fmt.Errorf("copy %s to vm:%s: %w", local, remote, err)
	}
	if code != 0 {
		return fmt.Errorf("copy %s to vm:%s: remote exit %d: %s", local, remote, code, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// CopyFrom copies a remote file or folder to local. A file is written at
// local (inside it when local is an existing folder); a folder's contents
// are extracted into the folder local, created if missing. A missing remote
// path is an error wrapping ErrRemoteNotFound.
func (c *Client) CopyFrom(ctx context.Context, remote, local string) error {
	var kind, stderr bytes.Buffer
	code, err := c.Run(ctx, []string{"sh", "-c", `if [ -d "$1" ]; then echo d; elif [ -e "$1" ]; then echo f; else echo n; fi`, "sh", remote}, nil, &kind, &stderr)
	if err != nil {
		return fmt.Errorf("copy vm:%s: %w", remote, err)
	}
	if code != 0 {
		return fmt.Errorf("copy vm:%s: remote exit %d: %s", remote, code, strings.TrimSpace(stderr.String()))
	}
	switch strings.TrimSpace(kind.String()) {
	case "n":
		return fmt.Errorf("copy vm:%s: %w", remote, ErrRemoteNotFound)
	case "d":
		if err := os.MkdirAll(local, 0o755); err != nil {
			return fmt.Errorf("copy vm:%s: %w", remote, err)
		}
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := readTar(pr, local)
			if err == nil {
				// tar pads the archive past its end marker; take the rest.
				_, _ = io.Copy(io.Discard, pr)
			}
			pr.CloseWithError(err)
			done <- err
		}()
		stderr.Reset()
		code, err = c.Run(ctx, []string{"sh", "-c", `cd "$1" && tar -c -f - .`, "sh", remote}, nil, pw, &stderr)
		pw.Close()
		terr := <-done
		if err != nil {
			return fmt.Errorf("copy vm:%s: %w", remote, err)
		}
		if code != 0 {
			return fmt.Errorf("copy vm:%s: remote tar exit %d: %s", remote, code, strings.TrimSpace(stderr.String()))
		}
		if terr != nil {
			return fmt.Errorf("copy vm:%s: %w", remote, terr)
		}
		return nil
	}
	if st, err := os.Stat(local); err == nil && st.IsDir() {
		local = filepath.Join(local, path.Base(remote))
	}
	tmp, err := os.CreateTemp(filepath.Dir(local), ".lago-copy-*")
	if err != nil {
		return fmt.Errorf("copy vm:%s: %w", remote, err)
	}
	defer os.Remove(tmp.Name())
	stderr.Reset()
	code, err = c.Run(ctx, []string{"cat", "--", remote}, nil, tmp, &stderr)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy vm:%s: %w", remote, err)
	}
	if code != 0 {
		return fmt.Errorf("copy vm:%s: remote exit %d: %s", remote, code, strings.TrimSpace(stderr.String()))
	}
	if err := os.Rename(tmp.Name(), local); err != nil {
		return fmt.Errorf("copy vm:%s: %w", remote, err)
	}
	return nil
}

// writeTar streams the contents of dir (not dir itself) as a tar archive.
func writeTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname, hdr.Uid, hdr.Gid = "", "", 0, 0
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return fmt.Errorf("archive %s: %w", dir, err)
	}
	return tw.Close()
}

// readTar extracts an archive into dir, refusing entries that would land
// outside it (a guest is not trusted to name host paths).
func readTar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		name := path.Clean("/" + hdr.Name)[1:]
		if name == "" {
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		mode := fs.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, mode|0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if filepath.IsAbs(hdr.Linkname) || strings.HasPrefix(path.Clean(path.Join(path.Dir(name), hdr.Linkname)), "..") {
				continue // a link out of the copied tree is dropped, not followed
			}
			_ = os.Remove(target)
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
		}
	}
}
