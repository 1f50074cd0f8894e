package template

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lago-go/lago/core/lease/flock"
)

// DefaultStoreDir is where the original Lago keeps downloaded templates.
const DefaultStoreDir = "/var/lib/lago/store"

// Image formats reported in Image.Format.
const (
	FormatQcow2 = "qcow2"
	FormatRaw   = "raw"
)

// ImageMode is the mode of images and their companions in the store, set
// with chmod so the downloader's umask cannot narrow it: a store is shared
// by every user of the host, and one user's download is the next one's
// backing file. Nobody but the downloader may write it.
const ImageMode = 0o644

// LockMode is the mode of "<key>.lock": any user may open it to wait for
// a download (flock works on a read-only descriptor).
const LockMode = 0o664

// DefaultStallTimeout is Store.StallTimeout when unset.
const DefaultStallTimeout = 2 * time.Minute

// ErrStalled is wrapped by the error of a download that received nothing for
// Store.StallTimeout.
var ErrStalled = errors.New("download stalled")

// qcow2Magic starts every qcow2 file.
var qcow2Magic = []byte("QFI\xfb")

// Store is the local template cache. Images keep the format they were
// served in (the original converted them to raw): overlays name their
// backing format explicitly, and qcow2 templates stay small.
type Store struct {
	Dir string
	// LockTimeout bounds the wait for another process's download of the
	// same template; 0 waits as long as ctx allows.
	LockTimeout time.Duration
	// Decompressor is DecompressAuto, DecompressExec or DecompressGo.
	Decompressor string
	// XZThreads is passed to `xz -T`; 0 means a thread per core.
	XZThreads int
	// StallTimeout fails a download that receives nothing for that long
	// (a hung server or network); 0 means DefaultStallTimeout. It bounds
	// every read, not the whole download: a slow but steady one of a large
	// image is never cut.
	StallTimeout time.Duration
	// MaxImageSize caps an image in bytes, both as served (compressed)
	// and as stored (decompressed), so an endless body or an xz bomb
	// cannot fill the store; 0 means DefaultMaxImageSize, < 0 no cap.
	MaxImageSize int64
	// NoSync skips fsync before publishing an image. Only for throw-away
	// stores (tests): without it a crash can publish a truncated image.
	NoSync bool
}

// Image is a template in the store.
type Image struct {
	Path     string            // the image file
	Key      string            // "<repo>:<template>:<version>"
	Hash     string            // sha1 hex of the image
	Format   string            // FormatQcow2 or FormatRaw, from the file's magic
	Metadata map[string]string // distro, root-password, ...; non-string values as JSON text
}

func (s *Store) path(key string) string { return filepath.Join(s.Dir, key) }

func (s *Store) maxImageSize() int64 {
	if s.MaxImageSize == 0 {
		return DefaultMaxImageSize
	}
	return s.MaxImageSize
}

// Get returns the named template version (the newest when version is ""),
// downloading it into the store first when it is not there. Concurrent
// callers, in this process or others, download it once: the download holds
// an flock on "<key>.lock", and whoever waited on it finds the image there.
// progress may be nil.
func (s *Store) Get(ctx context.Context, repo *Repo, name, version string, progress Progress) (Image, error) {
	r, err := repo.Resolve(name, version)
	if err != nil {
		return Image{}, err
	}
	key := r.Key()
	if img, ok, err := s.Stored(key); ok || err != nil {
		return img, err
	}
	if err := flock.SharedDir(s.Dir); err != nil {
		return Image{}, fmt.Errorf("create template store %s: %w", s.Dir, err)
	}
	lock, err := flock.Acquire(ctx, s.path(key)+".lock", LockMode, s.LockTimeout)
	if err != nil {
		return Image{}, fmt.Errorf("template %s: %w", key, err)
	}
	defer lock.Unlock()
	// Someone may have finished it while we waited.
	if img, ok, err := s.Stored(key); ok || err != nil {
		return img, err
	}
	if progress == nil {
		progress = nopProgress{}
	}
	if err := s.download(ctx, r, progress); err != nil {
		return Image{}, err
	}
	img, ok, err := s.Stored(key)
	if err == nil && !ok {
		err = fmt.Errorf("template %s vanished from the store right after download", key)
	}
	return img, err
}

// Stored returns the image stored under key, if present.
func (s *Store) Stored(key string) (Image, bool, error) {
	p := s.path(key)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Image{}, false, nil
	}
	if err != nil {
		return Image{}, false, fmt.Errorf("open stored template: %w", err)
	}
	defer f.Close()
	img := Image{Path: p, Key: key, Format: FormatRaw, Metadata: map[string]string{}}
	head := make([]byte, len(qcow2Magic))
	if n, _ := io.ReadFull(f, head); n == len(head) && bytes.Equal(head, qcow2Magic) {
		img.Format = FormatQcow2
	}
	if h, err := os.ReadFile(p + ".hash"); err == nil {
		img.Hash = strings.TrimSpace(string(h))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Image{}, false, fmt.Errorf("read stored template hash: %w", err)
	}
	if m, err := os.ReadFile(p + ".metadata"); err == nil {
		if img.Metadata, err = parseMetadata(m); err != nil {
			return Image{}, false, fmt.Errorf("stored template metadata %s.metadata: %w", p, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Image{}, false, fmt.Errorf("read stored template metadata: %w", err)
	}
	return img, true, nil
}

func parseMetadata(data []byte) (map[string]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = s
		} else {
			out[k] = string(v)
		}
	}
	return out, nil
}

// parseHash accepts a bare sha1 or sha1sum's "<hash>  <file>" line.
func parseHash(data []byte) (string, error) {
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return "", errors.New("empty hash file")
	}
	h := strings.ToLower(f[0])
	if b, err := hex.DecodeString(h); err != nil || len(b) != sha1.Size {
		return "", fmt.Errorf("hash file holds %q, not a sha1", f[0])
	}
	return h, nil
}

// download streams the image once through decompression, sha1 and the disk
// into "<key>.tmp", and publishes it under its key only when the hash matches.
// Anything else leaves no image in the store.
func (s *Store) download(ctx context.Context, r Resolved, progress Progress) (err error) {
	key, handle := r.Key(), r.Spec.Handle
	src, err := r.Repo.source(r.Spec.Source)
	if err != nil {
		return err
	}
	stall := stallOrDefault(s.StallTimeout)
	hashData, err := src.companion(ctx, handle, ".hash", stall)
	if err != nil {
		return fmt.Errorf("template %s: hash: %w", key, err)
	}
	want, err := parseHash(hashData)
	if err != nil {
		return fmt.Errorf("template %s: %w", key, err)
	}
	meta, err := src.companion(ctx, handle, ".metadata", stall)
	if errors.Is(err, errNotFound) {
		meta, err = []byte("{}"), nil
	}
	if err != nil {
		return fmt.Errorf("template %s: metadata: %w", key, err)
	}
	if _, err := parseMetadata(meta); err != nil {
		return fmt.Errorf("template %s: metadata is not a JSON object: %w", key, err)
	}

	// The image stream gets a watchdog from the request on: a server that
	// does not answer or stops sending must not hang init forever.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	limit := s.maxImageSize()
	counted := &countingReader{progress: progress, limit: limit}
	counted.setFrom(handle)
	counted.touch()
	go watchdog(ctx, cancel, counted, stall)
	defer func() {
		if cause := context.Cause(ctx); err != nil && errors.Is(cause, ErrStalled) {
			err = fmt.Errorf("template %s: %w", key, cause)
		}
	}()
	in, err := src.open(ctx, handle)
	if err != nil {
		return fmt.Errorf("template %s: %w", key, err)
	}
	defer in.Close()
	if limit > 0 && in.size > limit {
		return fmt.Errorf("template %s from %s: %w", key, in.from, tooLarge(fmt.Sprintf("image of %d bytes is", in.size), limit))
	}
	counted.r = in
	counted.setFrom(in.from)

	s.removeStaleTemps(key)
	out, err := s.createTemp(key)
	if err != nil {
		return fmt.Errorf("template %s: %w", key, err)
	}
	tmp := out.Name()
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()

	progress.Begin(key, in.size)
	defer func() { progress.End(err) }()
	var body io.Reader = counted
	if in.xz {
		d, derr := xzReader(ctx, counted, s.Decompressor, s.XZThreads)
		if derr != nil {
			return fmt.Errorf("template %s: %w", key, derr)
		}
		defer func() {
			// Close the network stream first: it unblocks xz's feeder.
			in.Close()
			if cerr := d.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("template %s: %w", key, cerr)
			}
		}()
		// Output counts as activity too: while a slow disk or decoder holds
		// the input back, the download is not stalled.
		body = touchReader{r: d, c: counted}
		// The bytes served are capped already; an xz bomb's output is not.
		if limit > 0 {
			body = &cappedReader{r: body, left: limit, what: "decompressed image", limit: limit}
		}
	}
	h := sha1.New()
	var dst io.Writer = out
	if !s.NoSync {
		dst = &writebackFile{f: out}
	}
	if _, err = copyParallel(ctx, dst, h, body); err != nil {
		return fmt.Errorf("template %s from %s: %w", key, in.from, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("template %s from %s: sha1 mismatch: the repository says %s, the download has %s", key, in.from, want, got)
	}
	if !s.NoSync {
		if err = out.Sync(); err != nil {
			return fmt.Errorf("template %s: %w", key, err)
		}
	}
	if err = out.Close(); err != nil {
		return fmt.Errorf("template %s: %w", key, err)
	}
	// Companions first: the image's own name is what says "stored".
	dest := s.path(key)
	if err = writeFileAtomic(dest+".metadata", meta, s.NoSync); err != nil {
		return fmt.Errorf("template %s: %w", key, err)
	}
	if err = writeFileAtomic(dest+".hash", []byte(want), s.NoSync); err != nil {
		return fmt.Errorf("template %s: %w", key, err)
	}
	if err = os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("template %s: publish: %w", key, err)
	}
	if !s.NoSync {
		syncDir(s.Dir)
	}
	return nil
}

// tempPrefix starts the name of an image being downloaded: a dot file the
// store's listing skips, ".tmp-<random>-<key>".
const tempPrefix = ".tmp-"

// tempName draws the name of a new download file; tests replace it.
var tempName = func(key string) string {
	return fmt.Sprintf("%s%d-%s", tempPrefix, rand.Uint64(), key)
}

// createTemp creates the file an image is downloaded into, exclusively
// (O_EXCL, O_NOFOLLOW) under a name nobody can guess: the store is shared
// and group-writable, and a fixed name opened with O_TRUNC let any group
// member plant a symlink there and have the download truncate and
// overwrite the file it points to.
func (s *Store) createTemp(key string) (*os.File, error) {
	var err error
	for range 16 {
		var f *os.File
		f, err = os.OpenFile(filepath.Join(s.Dir, tempName(key)), os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			// Readable by every user of the store (and by qemu, which
			// opens it as a backing file), whatever the umask.
			if err = f.Chmod(ImageMode); err != nil {
				f.Close()
				os.Remove(f.Name())
				break
			}
			return f, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	return nil, fmt.Errorf("create download file: %w", err)
}

// removeStaleTemps removes the download files of key that a killed process
// left. The caller holds key's lock, so no live download owns them;
// os.Remove does not follow a symlink planted under such a name.
func (s *Store) removeStaleTemps(key string) {
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), tempPrefix)
		if !ok {
			continue
		}
		digits, k, ok := strings.Cut(rest, "-")
		if !ok || k != key || digits == "" || strings.Trim(digits, "0123456789") != "" {
			continue
		}
		os.Remove(filepath.Join(s.Dir, e.Name()))
	}
}

func writeFileAtomic(path string, data []byte, noSync bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(ImageMode)
	}
	if err == nil && !noSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// countingReader reports the bytes read from the source (compressed bytes
// for an xz stream, which is what Content-Length counts) and fails once
// they pass limit (when > 0).
type countingReader struct {
	r        io.Reader
	n        atomic.Int64
	last     atomic.Int64 // unix nanoseconds of the last byte received
	from     atomic.Pointer[string]
	limit    int64
	progress Progress
	err      error // sticky once over limit: io.ReadAtLeast drops an error that comes with data
}

func (c *countingReader) touch() { c.last.Store(time.Now().UnixNano()) }

// setFrom names the source in the watchdog's message.
func (c *countingReader) setFrom(from string) { c.from.Store(&from) }

func (c *countingReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	if n > 0 {
		c.touch()
		total := c.n.Add(int64(n))
		c.progress.Advance(total)
		if c.limit > 0 && total > c.limit {
			c.err = tooLarge("image as served is", c.limit)
			return n, c.err
		}
	}
	return n, err
}

// cappedReader fails once more than limit bytes came through it.
type cappedReader struct {
	r           io.Reader
	left, limit int64
	what        string
	err         error // sticky, as countingReader's
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	if c.left -= int64(n); c.left < 0 {
		c.err = tooLarge(c.what+" is", c.limit)
		return n, c.err
	}
	return n, err
}

type touchReader struct {
	r io.Reader
	c *countingReader
}

func (t touchReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.c.touch()
	}
	return n, err
}

// watchdog cancels ctx with ErrStalled when c received nothing for stall.
func watchdog(ctx context.Context, cancel context.CancelCauseFunc, c *countingReader, stall time.Duration) {
	t := time.NewTicker(max(stall/8, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if idle := time.Since(time.Unix(0, c.last.Load())); idle >= stall {
				from := "the server"
				if p := c.from.Load(); p != nil {
					from = *p
				}
				cancel(fmt.Errorf("%w: nothing received from %s for %s ([init] template_stall_timeout)", ErrStalled, from, idle.Round(time.Millisecond)))
				return
			}
		}
	}
}

// StoredVersions lists the images of a template already in the store, the
// most recently downloaded first. init can fall back on it when the
// repository cannot be reached, instead of failing on a template it has.
func (s *Store) StoredVersions(repo, template string) ([]Image, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list template store: %w", err)
	}
	prefix := repo + ":" + template + ":"
	type found struct {
		img Image
		mod time.Time
	}
	var list []found
	for _, e := range ents {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok || rest == "" || isCompanion(rest) {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		img, ok, err := s.Stored(name)
		if err != nil {
			return nil, err
		}
		if ok {
			list = append(list, found{img, info.ModTime()})
		}
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].mod.After(list[j].mod) })
	out := make([]Image, len(list))
	for i, f := range list {
		out[i] = f.img
	}
	return out, nil
}

// isCompanion tells the store's side files from images: versions may hold
// dots, but never end in one of these suffixes.
func isCompanion(name string) bool {
	for _, suf := range []string{".hash", ".metadata", ".tmp", ".lock", ".users"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return false
}
