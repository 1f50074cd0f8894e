package template

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// stream is an opened image: its bytes as stored at the source.
type stream struct {
	io.ReadCloser
	xz   bool   // the bytes are xz-compressed
	size int64  // bytes the stream yields, -1 when unknown
	from string // path or URL, for messages
}

// source fetches images and their companion files.
type source interface {
	// open opens the image of handle.
	open(ctx context.Context, handle string) (*stream, error)
	// companion reads the small file handle+suffix (".hash", ".metadata");
	// a missing one wraps errNotFound. A download that receives nothing for
	// stall fails.
	companion(ctx context.Context, handle, suffix string, stall time.Duration) ([]byte, error)
}

// source builds the fetcher of a named source, resolving a relative root or
// base URL against the repository's own location. A file source's root has
// its $VARS and ~ expanded, as the original's did. A repository loaded from
// a URL gets http(s) sources only: its server must not name files of this
// host for lago to copy into the store (and show through the VMs).
func (r *Repo) source(name string) (source, error) {
	s, ok := r.Sources[name]
	if !ok {
		return nil, fmt.Errorf("template repository %s: unknown source %q", r.Name, name)
	}
	switch s.Type {
	case "file":
		if isURL(r.Location) {
			return nil, fmt.Errorf("template repository %s (%s): source %s is of type file: %w", r.Name, redact(r.Location), name, ErrRemoteFileSource)
		}
		root := expandPath(s.Args["root"], os.LookupEnv)
		if !filepath.IsAbs(root) && r.Location != "" {
			root = filepath.Join(filepath.Dir(r.Location), root)
		}
		return fileSource{root: root}, nil
	case "http":
		base, err := url.Parse(s.Args["baseurl"])
		if err != nil {
			return nil, fmt.Errorf("template repository %s: source %s: bad baseurl: %w", r.Name, name, err)
		}
		if !base.IsAbs() && isURL(r.Location) {
			loc, err := url.Parse(r.Location)
			if err != nil {
				return nil, fmt.Errorf("template repository %s: bad location: %w", r.Name, err)
			}
			base = loc.ResolveReference(base)
		}
		if !base.IsAbs() {
			return nil, fmt.Errorf("template repository %s: source %s: baseurl %q is not absolute", r.Name, name, s.Args["baseurl"])
		}
		if base.Scheme != "http" && base.Scheme != "https" {
			return nil, fmt.Errorf("template repository %s: source %s: baseurl %q is not an http(s) URL", r.Name, name, base.Redacted())
		}
		// "http://host/repo" means the folder, as the original joins with it.
		if !strings.HasSuffix(base.Path, "/") {
			base.Path += "/"
		}
		return httpSource{base: base, client: r.Client}, nil
	}
	return nil, fmt.Errorf("template repository %s: source %s: unknown type %q", r.Name, name, s.Type)
}

// fileSource is a folder on this host, of a repository file on this host.
type fileSource struct{ root string }

// path is where the image of handle is. The handle's $VARS and ~ are
// expanded (the original expanded them for .hash and .metadata); one that
// is then absolute is taken as it is, as the original's os.path.join did,
// and a relative one stays inside the root even with "..".
func (f fileSource) path(handle string) string {
	h := expandPath(handle, os.LookupEnv)
	if filepath.IsAbs(h) {
		return filepath.Clean(h)
	}
	return filepath.Join(f.root, filepath.FromSlash(path.Clean("/"+h)))
}

// open prefers the plain image (no decompression needed on a local disk)
// and falls back to <handle>.xz.
func (f fileSource) open(ctx context.Context, handle string) (*stream, error) {
	for _, c := range []struct {
		name string
		xz   bool
	}{{f.path(handle), false}, {f.path(handle) + ".xz", true}} {
		fh, err := os.Open(c.name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("open template image: %w", err)
		}
		st, err := fh.Stat()
		if err != nil {
			fh.Close()
			return nil, fmt.Errorf("open template image: %w", err)
		}
		return &stream{ReadCloser: fh, xz: c.xz, size: st.Size(), from: c.name}, nil
	}
	return nil, fmt.Errorf("template image %s (or .xz): %w", f.path(handle), errNotFound)
}

func (f fileSource) companion(ctx context.Context, handle, suffix string, stall time.Duration) ([]byte, error) {
	return readSmall(f.path(handle)+suffix, maxCompanionSize)
}

// httpSource is a web folder.
type httpSource struct {
	base   *url.URL
	client *http.Client
}

func (h httpSource) url(handle string) string {
	ref := &url.URL{Path: strings.TrimPrefix(path.Clean("/"+handle), "/")}
	return h.base.ResolveReference(ref).String()
}

// open tries <handle>.xz first, then the plain image, like the original.
func (h httpSource) open(ctx context.Context, handle string) (*stream, error) {
	u := h.url(handle)
	var errs []error
	for _, c := range []struct {
		url string
		xz  bool
	}{{u + ".xz", true}, {u, false}} {
		resp, err := httpGet(ctx, h.client, c.url)
		if errors.Is(err, errNotFound) {
			errs = append(errs, err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("download template image: %w", err)
		}
		return &stream{ReadCloser: resp.Body, xz: c.xz, size: resp.ContentLength, from: redact(c.url)}, nil
	}
	return nil, fmt.Errorf("download template image: %w", errors.Join(errs...))
}

// companion tries <handle><suffix>, then <handle>.xz<suffix>, the name the
// original asked for first.
func (h httpSource) companion(ctx context.Context, handle, suffix string, stall time.Duration) ([]byte, error) {
	u := h.url(handle)
	data, err := httpGetSmall(ctx, h.client, u+suffix, maxCompanionSize, stall)
	if errors.Is(err, errNotFound) {
		if d2, err2 := httpGetSmall(ctx, h.client, u+".xz"+suffix, maxCompanionSize, stall); err2 == nil {
			return d2, nil
		}
	}
	return data, err
}
