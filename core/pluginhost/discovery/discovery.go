// Package discovery finds lago plugin binaries on disk and caches their
// describe output. It is deliberately light: it imports neither gRPC nor
// go-plugin nor protobuf, whose package initialisation would be paid by
// every `lago --help`; listing plugins from a fresh cache starts no plugin
// process at all.
package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lago-go/lago/sdk/plugininfo"
)

// Prefix starts the file name of every plugin binary.
const Prefix = "lago-plugin-"

// DescribeTimeout bounds one `lago-plugin-x describe` run.
var DescribeTimeout = 10 * time.Second

// Info is one plugin binary found during discovery.
type Info struct {
	Name    string    `json:"name"` // without the lago-plugin- prefix
	Path    string    `json:"path"`
	Version string    `json:"version"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"`
	// Components from the binary's describe output.
	Components []plugininfo.ComponentInfo `json:"components"`
	// Shadowed is set when an earlier folder holds a plugin of the same name.
	Shadowed   bool   `json:"shadowed,omitempty"`
	ShadowedBy string `json:"shadowed_by,omitempty"`
	// Refused is set for untrusted binaries (CheckTrust), pin mismatches
	// and binaries whose describe failed; Reason says why.
	Refused bool   `json:"refused,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// SHA256 is the binary's hash, computed only when it is pinned.
	SHA256 string `json:"sha256,omitempty"`
	// Pin is the sha256 the binary must have: from Options.Pins, else
	// from its folder's PinsFile (Install); "" when it is not pinned.
	Pin string `json:"pin,omitempty"`
}

// Usable reports whether the plugin may be started.
func (i Info) Usable() bool { return !i.Shadowed && !i.Refused }

// Logger is the part of hclog.Logger discovery uses.
type Logger interface {
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
}

// Options configure Discover.
type Options struct {
	// SearchPath is the list of folders, first match wins.
	SearchPath []string
	// Pins maps a plugin name to the sha256 (hex) its binary must have.
	// A name without one here is pinned by its folder's PinsFile, if any.
	Pins map[string]string
	// CacheFile stores describe results; "" disables the cache.
	CacheFile string
	// Logger receives warnings (refused binaries) and shadowing notes; may be nil.
	Logger Logger
}

// DefaultSearchPath returns the discovery folders in order: each folder of
// $LAGO_PLUGIN_PATH, <dir of exe, symlinks resolved>/../libexec/lago/plugins,
// $XDG_DATA_HOME/lago/plugins (default ~/.local/share),
// /usr/local/libexec/lago/plugins, /usr/libexec/lago/plugins.
func DefaultSearchPath(exe string) []string {
	var dirs []string
	for _, d := range filepath.SplitList(os.Getenv("LAGO_PLUGIN_PATH")) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	if exe != "" {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		dirs = append(dirs, filepath.Join(filepath.Dir(exe), "..", "libexec", "lago", "plugins"))
	}
	if user, err := UserDir(); err == nil {
		dirs = append(dirs, user)
	}
	return append(dirs, "/usr/local/libexec/lago/plugins", "/usr/libexec/lago/plugins")
}

// DefaultCacheFile is $XDG_CACHE_HOME/lago/plugins.json (default ~/.cache).
func DefaultCacheFile() string {
	dir := os.Getenv("XDG_CACHE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".cache")
	}
	return filepath.Join(dir, "lago", "plugins.json")
}

// Discover lists every plugin binary of the search path, including shadowed
// and refused ones, in search order. Only binaries missing from the cache
// (or changed since) are run with `describe`.
func Discover(opts Options) ([]Info, error) {
	cache := loadCache(opts.CacheFile)
	dirty := false
	seen := map[string]string{} // name -> winning path
	scanned := map[string]bool{}
	folders := folderChecker{}
	var out []Info
	for _, dir := range opts.SearchPath {
		// A folder named twice (LAGO_PLUGIN_PATH pointing at the folder
		// beside lago) does not shadow its own plugins.
		if dir = filepath.Clean(dir); scanned[dir] {
			continue
		}
		scanned[dir] = true
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue // a missing folder is normal
		}
		// The folder's pins, read when a plugin needs one.
		var folderPins map[string]string
		var pinsErr error
		pinsRead := false
		for _, e := range entries {
			name, ok := strings.CutPrefix(e.Name(), Prefix)
			if !ok || name == "" || strings.HasPrefix(name, ".") {
				continue
			}
			path := filepath.Join(dir, e.Name())
			st, err := os.Stat(path)
			if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
				continue
			}
			info := Info{Name: name, Path: path, Size: st.Size(), ModTime: st.ModTime()}
			if winner, ok := seen[name]; ok {
				info.Shadowed, info.ShadowedBy = true, winner
				logf(opts.Logger, false, "plugin shadowed", "plugin", name, "path", path, "used", winner)
				out = append(out, info)
				continue
			}
			seen[name] = path
			refuse := func(err error, msg string) {
				info.Refused, info.Reason = true, err.Error()
				logf(opts.Logger, true, msg, "plugin", name, "path", path, "reason", err)
				out = append(out, info)
			}
			if err := checkFile(path, st); err != nil {
				refuse(err, "refusing untrusted plugin")
				continue
			}
			if err := folders.check(path); err != nil {
				refuse(err, "refusing untrusted plugin")
				continue
			}
			pin := opts.Pins[name]
			if pin == "" {
				if !pinsRead {
					folderPins, pinsErr = readPins(dir)
					pinsRead = true
				}
				if pinsErr != nil {
					refuse(pinsErr, "refusing plugin of a folder whose pins cannot be read")
					continue
				}
				pin = folderPins[name]
			}
			info.Pin = pin
			ent, hit := cache.lookup(path, st)
			if hit && (pin == "" || ent.SHA256 != "") {
				if pin != "" {
					info.SHA256 = ent.SHA256
					if !strings.EqualFold(ent.SHA256, pin) {
						refuse(&PinMismatchError{Path: path, SHA256: ent.SHA256, Pinned: pin}, "refusing plugin with unexpected hash")
						continue
					}
				}
			} else {
				// One open file serves the hash and describe, so what
				// describe reports is what was hashed.
				fresh, err := describeOpened(path, pin, !hit)
				var pm *PinMismatchError
				var ue *UntrustedError
				switch {
				case errors.As(err, &pm):
					info.SHA256 = pm.SHA256
					refuse(err, "refusing plugin with unexpected hash")
					continue
				case errors.As(err, &ue):
					refuse(err, "refusing untrusted plugin")
					continue
				case err != nil:
					refuse(err, "plugin describe failed")
					continue
				}
				if !hit {
					ent.Description = fresh.desc
				}
				ent.SHA256, info.SHA256 = fresh.bin.SHA256, fresh.bin.SHA256
				cache.put(path, fresh.bin.Stat, ent)
				dirty = true
			}
			info.Version = ent.Description.Version
			info.Components = ent.Description.Components
			out = append(out, info)
		}
	}
	if dirty {
		if err := cache.save(opts.CacheFile); err != nil {
			logf(opts.Logger, true, "cannot write plugin cache", "file", opts.CacheFile, "error", err)
		}
	}
	return out, nil
}

// Describe runs `path describe` and parses its JSON. The binary must pass
// the trust checks (OpenBinary).
func Describe(path string) (plugininfo.Description, error) {
	b, err := OpenBinary(path, "")
	if err != nil {
		return plugininfo.Description{}, err
	}
	defer b.Close()
	return describe(b)
}

type opened struct {
	bin  *Binary
	desc plugininfo.Description
}

// describeOpened opens the binary at path, checks its pin and, when run,
// runs its describe, all on the one open file. bin is closed on return
// (its Stat and SHA256 stay).
func describeOpened(path, pin string, run bool) (opened, error) {
	f, err := os.Open(path)
	if err != nil {
		return opened{}, err
	}
	defer f.Close()
	b, err := openedBinary(path, f, pin)
	if err != nil {
		return opened{}, err
	}
	o := opened{bin: b}
	if run {
		o.desc, err = describe(b)
	}
	return o, err
}

func describe(b *Binary) (plugininfo.Description, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DescribeTimeout)
	defer cancel()
	cmd := b.CommandContext(ctx, "describe")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var d plugininfo.Description
	if err != nil {
		return d, fmt.Errorf("run %s describe: %w: %s", b.Path, err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(out, &d); err != nil {
		return d, fmt.Errorf("parse describe output of %s: %w", b.Path, err)
	}
	return d, nil
}

func logf(l Logger, warn bool, msg string, args ...any) {
	if l == nil {
		return
	}
	if warn {
		l.Warn(msg, args...)
	} else {
		l.Info(msg, args...)
	}
}

// cacheVersion changes when the cache layout does; an old cache is ignored.
const cacheVersion = 1

type cacheEntry struct {
	Size        int64                  `json:"size"`
	ModTimeNano int64                  `json:"mtime_ns"`
	SHA256      string                 `json:"sha256,omitempty"`
	Description plugininfo.Description `json:"description"`
}

type cacheFile struct {
	Version int                    `json:"version"`
	Entries map[string]*cacheEntry `json:"entries"`
}

// loadCache reads the cache; a missing, unreadable or corrupt cache is an
// empty one (it is only an optimisation).
func loadCache(path string) *cacheFile {
	c := &cacheFile{Version: cacheVersion, Entries: map[string]*cacheEntry{}}
	if path == "" {
		return c
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return c
	}
	var onDisk cacheFile
	if json.Unmarshal(b, &onDisk) != nil || onDisk.Version != cacheVersion || onDisk.Entries == nil {
		return c
	}
	for k, v := range onDisk.Entries {
		if v != nil {
			c.Entries[k] = v
		}
	}
	return c
}

func (c *cacheFile) lookup(path string, st os.FileInfo) (cacheEntry, bool) {
	e, ok := c.Entries[path]
	if !ok || e.Size != st.Size() || e.ModTimeNano != st.ModTime().UnixNano() {
		return cacheEntry{}, false
	}
	return *e, true
}

func (c *cacheFile) put(path string, st os.FileInfo, e cacheEntry) {
	e.Size, e.ModTimeNano = st.Size(), st.ModTime().UnixNano()
	c.Entries[path] = &e
}

// save writes the cache atomically (temporary file and rename), so a
// concurrent lago never reads half a file.
func (c *cacheFile) save(path string) error {
	if path == "" {
		return nil
	}
	// Forget binaries that are gone, so the cache does not grow forever.
	for p := range c.Entries {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			delete(c.Entries, p)
		}
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode plugin cache: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create plugin cache folder: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".plugins-*.json")
	if err != nil {
		return fmt.Errorf("create plugin cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write plugin cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write plugin cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace plugin cache: %w", err)
	}
	return nil
}

// UsableComponents lists the components of kind ("" for all) served by
// the usable plugins among infos, sorted by kind and name: what both the
// plugin host and the CLI's light front-end offer.
func UsableComponents(infos []Info, kind string) []plugininfo.ComponentInfo {
	var out []plugininfo.ComponentInfo
	for _, in := range infos {
		if !in.Usable() {
			continue
		}
		for _, c := range in.Components {
			if kind == "" || c.Kind == kind {
				out = append(out, c)
			}
		}
	}
	SortComponents(out)
	return out
}

// SortComponents orders component infos by kind then name, for stable
// listings.
func SortComponents(cs []plugininfo.ComponentInfo) {
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].Kind != cs[j].Kind {
			return cs[i].Kind < cs[j].Kind
		}
		return cs[i].Name < cs[j].Name
	})
}
