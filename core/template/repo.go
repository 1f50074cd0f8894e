// Package template finds disk templates in template repositories and keeps
// downloaded copies in a local store shared by every lago process on the host
// (and by the original Python Lago, whose file names and locks it keeps).
//
// A repository is a repo.metadata JSON file naming sources (a folder or an
// http base URL) and, per template, versions with a handle (the image's path
// relative to the source) and a timestamp. Beside each image the source holds
// <handle>.hash (sha1 of the uncompressed image) and <handle>.metadata (JSON:
// distro, root-password, ...). Images may be served xz-compressed as
// <handle>.xz.
package template

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// DefaultRepoPath is the original's default repository.
const DefaultRepoPath = "http://templates.ovirt.org/repo/repo.metadata"

// DefaultReposDir is where repositories are looked up by name.
const DefaultReposDir = "/var/lib/lago/repos"

// Source is where a repository's images live: type "file" with args.root, or
// type "http" with args.baseurl.
type Source struct {
	Type string            `json:"type"`
	Args map[string]string `json:"args"`
}

// Version is one version of a template.
type Version struct {
	Source    string  `json:"source"`
	Handle    string  `json:"handle"`
	Timestamp float64 `json:"timestamp"`
}

// Template lists the versions of one template by version name.
type Template struct {
	Versions map[string]Version `json:"versions"`
}

// Repo is a parsed repo.metadata.
type Repo struct {
	Name      string              `json:"name"`
	Sources   map[string]Source   `json:"sources"`
	Templates map[string]Template `json:"templates"`

	// Location is the path or URL the repository was loaded from; relative
	// file roots and base URLs are resolved against it. A repository
	// loaded from a URL may only use http(s) sources.
	Location string `json:"-"`
	// Client fetches http sources; nil means NewClient's defaults.
	Client *http.Client `json:"-"`
}

// Resolved names one version of one template of a repository.
type Resolved struct {
	Repo     *Repo
	Template string
	Version  string
	Spec     Version
}

// Key is the store name of the version: "<repo>:<template>:<version>".
func (r Resolved) Key() string { return r.Repo.Name + ":" + r.Template + ":" + r.Version }

// ParseRepo parses repo.metadata content; location is where it came from.
func ParseRepo(data []byte, location string) (*Repo, error) {
	var r Repo
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("parse template repository %s: %w", location, err)
	}
	if r.Name == "" {
		return nil, fmt.Errorf("template repository %s: no name", location)
	}
	if strings.ContainsAny(r.Name, "/\x00") {
		return nil, fmt.Errorf("template repository %s: name %q holds a slash", location, r.Name)
	}
	for tn, t := range r.Templates {
		if tn == "" || strings.ContainsAny(tn, "/\x00") {
			return nil, fmt.Errorf("template repository %s: bad template name %q", location, tn)
		}
		for vn, v := range t.Versions {
			if vn == "" || strings.ContainsAny(vn, "/\x00") {
				return nil, fmt.Errorf("template repository %s: template %s: bad version name %q", location, tn, vn)
			}
			if _, ok := r.Sources[v.Source]; !ok {
				return nil, fmt.Errorf("template repository %s: template %s version %s: unknown source %q", location, tn, vn, v.Source)
			}
			if v.Handle == "" {
				return nil, fmt.Errorf("template repository %s: template %s version %s: no handle", location, tn, vn)
			}
		}
	}
	for sn, s := range r.Sources {
		switch s.Type {
		case "file":
			if s.Args["root"] == "" {
				return nil, fmt.Errorf("template repository %s: file source %s: no args.root", location, sn)
			}
		case "http":
			if s.Args["baseurl"] == "" {
				return nil, fmt.Errorf("template repository %s: http source %s: no args.baseurl", location, sn)
			}
		default:
			return nil, fmt.Errorf("template repository %s: source %s: unknown type %q (want file or http)", location, sn, s.Type)
		}
	}
	r.Location = location
	return &r, nil
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// LoadRepo reads a repository from a repo.metadata path or http(s) URL (the
// --template-repo-path option). client may be nil.
func LoadRepo(ctx context.Context, pathOrURL string, client *http.Client) (*Repo, error) {
	return loadRepo(ctx, pathOrURL, client, 0)
}

// loadRepo is LoadRepo with the stall timeout of the download (0: the
// default).
func loadRepo(ctx context.Context, pathOrURL string, client *http.Client, stall time.Duration) (*Repo, error) {
	var data []byte
	var err error
	loc := pathOrURL
	if isURL(pathOrURL) {
		data, err = httpGetSmall(ctx, client, pathOrURL, maxRepoSize, stall)
	} else {
		if strings.HasPrefix(pathOrURL, "file://") {
			pathOrURL = strings.TrimPrefix(pathOrURL, "file://")
		}
		if loc, err = filepath.Abs(pathOrURL); err == nil {
			data, err = readSmall(loc, maxRepoSize)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("load template repository: %w", err)
	}
	r, err := ParseRepo(data, loc)
	if err != nil {
		return nil, err
	}
	r.Client = client
	return r, nil
}

// FindRepo looks for the repository called name among the repository files
// under dir (the template_repos setting): like the original, every *.json
// file in the tree, and also every repo.metadata.
func FindRepo(ctx context.Context, dir, name string, client *http.Client) (*Repo, error) {
	return findRepo(ctx, dir, name, client, 0)
}

func findRepo(ctx context.Context, dir, name string, client *http.Client, stall time.Duration) (*Repo, error) {
	var found []string
	var hit *Repo
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !(strings.HasSuffix(d.Name(), ".json") || d.Name() == "repo.metadata") {
			return nil
		}
		r, err := loadRepo(ctx, path, client, stall)
		if err != nil {
			return nil // not a repository file
		}
		found = append(found, r.Name)
		if r.Name == name && hit == nil {
			hit = r
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find template repository %s in %s: %w", name, dir, err)
	}
	if hit == nil {
		sort.Strings(found)
		return nil, fmt.Errorf("no template repository named %q in %s (found: %s)", name, dir, listOrNone(found))
	}
	return hit, nil
}

// Options say which repository init uses, as its flags do, and how long
// its server may keep init waiting.
type Options struct {
	Path     string // --template-repo-path: repo.metadata path or URL
	Name     string // --template-repo-name: a repository under ReposDir
	ReposDir string // --template-repos
	// Client fetches the repository and its images; nil means
	// NewClient(ConnectTimeout, ResponseTimeout).
	Client          *http.Client
	ConnectTimeout  time.Duration // 0: DefaultConnectTimeout
	ResponseTimeout time.Duration // 0: DefaultResponseTimeout
	// StallTimeout fails a repo.metadata download that receives nothing
	// for that long; 0 means DefaultStallTimeout.
	StallTimeout time.Duration
}

// OpenRepo opens the repository the options name: by name under ReposDir
// when Name is set, else from Path (DefaultRepoPath when empty).
func OpenRepo(ctx context.Context, o Options) (*Repo, error) {
	client := o.Client
	if client == nil {
		client = NewClient(o.ConnectTimeout, o.ResponseTimeout)
	}
	if o.Name != "" {
		dir := o.ReposDir
		if dir == "" {
			dir = DefaultReposDir
		}
		return findRepo(ctx, dir, o.Name, client, o.StallTimeout)
	}
	p := o.Path
	if p == "" {
		p = DefaultRepoPath
	}
	return loadRepo(ctx, p, client, o.StallTimeout)
}

// Resolve picks a template's version: the named one, or the one with the
// newest timestamp (ties go to the greatest version name) when version is "".
// ErrNotFound is wrapped by Resolve's error when the repository has no
// such template or version, so a caller can tell a typo from a network
// failure.
var ErrNotFound = errors.New("template not found")

func (r *Repo) Resolve(name, version string) (Resolved, error) {
	t, ok := r.Templates[name]
	if !ok {
		names := make([]string, 0, len(r.Templates))
		for n := range r.Templates {
			names = append(names, n)
		}
		sort.Strings(names)
		return Resolved{}, fmt.Errorf("%w: template %q not in repository %s (%s); it has: %s", ErrNotFound, name, r.Name, r.Location, listOrNone(names))
	}
	if version != "" {
		v, ok := t.Versions[version]
		if !ok {
			return Resolved{}, fmt.Errorf("%w: template %s of repository %s has no version %q; it has: %s", ErrNotFound, name, r.Name, version, listOrNone(sortedKeys(t.Versions)))
		}
		return Resolved{Repo: r, Template: name, Version: version, Spec: v}, nil
	}
	best, bestTS := "", math.Inf(-1)
	for vn, v := range t.Versions {
		if v.Timestamp > bestTS || (v.Timestamp == bestTS && vn > best) {
			best, bestTS = vn, v.Timestamp
		}
	}
	if best == "" {
		return Resolved{}, fmt.Errorf("template %s of repository %s has no versions", name, r.Name)
	}
	return Resolved{Repo: r, Template: name, Version: best, Spec: t.Versions[best]}, nil
}

func sortedKeys(m map[string]Version) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// errNotFound marks a missing remote or local file, so callers can try the
// next candidate name.
var errNotFound = errors.New("not found")

// readSmall reads a local metadata document of at most limit bytes.
func readSmall(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, errNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w of %d bytes for a metadata document", path, ErrTooLarge, limit)
	}
	return data, nil
}
