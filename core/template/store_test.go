package template

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestGetHTTP(t *testing.T) {
	img := makeImage(1<<20, true, 1)
	tests := []struct {
		name       string
		mode       string
		serveXZ    bool
		servePlain bool
		hashLine   string // content of the .hash file; default the bare sha1
		wantPaths  []string
		needXZBin  bool
	}{
		{name: "xz via binary", mode: DecompressExec, serveXZ: true, servePlain: true, wantPaths: []string{"/repo/el7.qcow2.xz"}, needXZBin: true},
		{name: "xz via go", mode: DecompressGo, serveXZ: true, servePlain: true, wantPaths: []string{"/repo/el7.qcow2.xz"}},
		{name: "xz auto", mode: DecompressAuto, serveXZ: true, wantPaths: []string{"/repo/el7.qcow2.xz"}},
		{name: "plain only", mode: DecompressAuto, servePlain: true, wantPaths: []string{"/repo/el7.qcow2.xz", "/repo/el7.qcow2"}},
		{name: "sha1sum style hash file", mode: DecompressAuto, servePlain: true, hashLine: sha1hex(img) + "  el7.qcow2\n", wantPaths: []string{"/repo/el7.qcow2.xz", "/repo/el7.qcow2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needXZBin && !haveXZ() {
				t.Skip("no xz binary on PATH")
			}
			srv := newServer(t)
			if tt.serveXZ {
				srv.put("/repo/el7.qcow2.xz", xzBytes(t, img))
			}
			if tt.servePlain {
				srv.put("/repo/el7.qcow2", img)
			}
			hl := tt.hashLine
			if hl == "" {
				hl = sha1hex(img)
			}
			srv.put("/repo/el7.qcow2.hash", []byte(hl))
			srv.put("/repo/el7.qcow2.metadata", []byte(`{"distro": "el7", "root-password": "123456", "size": 10}`))
			srv.put("/repo/repo.metadata", repoJSON(t, "myrepo",
				Source{Type: "http", Args: map[string]string{"baseurl": srv.URL + "/repo"}},
				map[string]map[string]ver{"el7-base": {"v1": {"el7.qcow2", 1}}}))

			ctx := context.Background()
			repo, err := LoadRepo(ctx, srv.URL+"/repo/repo.metadata", nil)
			if err != nil {
				t.Fatal(err)
			}
			s := newStore(t, tt.mode)
			var buf bytes.Buffer
			got, err := s.Get(ctx, repo, "el7-base", "", &logProgress{logf: func(f string, a ...any) { buf.WriteString(f + "\n") }, every: time.Hour, now: time.Now})
			if err != nil {
				t.Fatal(err)
			}
			want := Image{Path: filepath.Join(s.Dir, "myrepo:el7-base:v1"), Key: "myrepo:el7-base:v1", Hash: sha1hex(img), Format: FormatQcow2}
			if got.Path != want.Path || got.Key != want.Key || got.Hash != want.Hash || got.Format != want.Format {
				t.Fatalf("got %+v, want %+v", got, want)
			}
			if got.Metadata["distro"] != "el7" || got.Metadata["root-password"] != "123456" || got.Metadata["size"] != "10" {
				t.Fatalf("metadata %v", got.Metadata)
			}
			data, err := os.ReadFile(got.Path)
			if err != nil || !bytes.Equal(data, img) {
				t.Fatalf("stored image differs from the served one (err %v)", err)
			}
			if files := storeFiles(t, s.Dir); !slices.Equal(files, []string{"myrepo:el7-base:v1", "myrepo:el7-base:v1.hash", "myrepo:el7-base:v1.metadata"}) {
				t.Fatalf("store holds %v", files)
			}
			if h, _ := os.ReadFile(got.Path + ".hash"); string(h) != sha1hex(img) {
				t.Fatalf("stored hash file %q", h)
			}
			for _, p := range []string{"/repo/el7.qcow2.xz", "/repo/el7.qcow2"} {
				wantN := 0
				if slices.Contains(tt.wantPaths, p) {
					wantN = 1
				}
				if n := srv.count(p); n != wantN {
					t.Errorf("%s requested %d times, want %d", p, n, wantN)
				}
			}
			if !strings.Contains(buf.String(), "downloaded") {
				t.Errorf("progress did not report the end: %q", buf.String())
			}
			// A second Get is served from the store without the network.
			srv.Close()
			again, err := s.Get(ctx, repo, "el7-base", "v1", nil)
			if err != nil || again.Hash != got.Hash {
				t.Fatalf("second Get: %+v %v", again, err)
			}
		})
	}
}

func TestResolveVersions(t *testing.T) {
	repo, err := ParseRepo(repoJSON(t, "r", Source{Type: "file", Args: map[string]string{"root": "/x"}},
		map[string]map[string]ver{
			"el7": {"v1": {"a", 100}, "v2": {"b", 300}, "v3": {"c", 200}},
			"tie": {"a": {"a", 5}, "b": {"b", 5}},
		}), "/x/repo.metadata")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, template, version string
		want                    string
		errHas                  string
	}{
		{name: "newest timestamp", template: "el7", want: "v2"},
		{name: "named", template: "el7", version: "v1", want: "v1"},
		{name: "tie by name", template: "tie", want: "b"},
		{name: "unknown version", template: "el7", version: "v9", errHas: "v1, v2, v3"},
		{name: "unknown template", template: "fc30", errHas: "el7, tie"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := repo.Resolve(tt.template, tt.version)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("got %v, want error mentioning %q", err, tt.errHas)
				}
				return
			}
			if err != nil || r.Version != tt.want || r.Key() != "r:"+tt.template+":"+tt.want {
				t.Fatalf("got %+v %v, want %s", r, err, tt.want)
			}
		})
	}
}

func TestParseRepoRejects(t *testing.T) {
	tests := map[string]string{
		"no name":        `{"sources": {}, "templates": {}}`,
		"unknown source": `{"name": "r", "sources": {}, "templates": {"t": {"versions": {"v": {"source": "x", "handle": "h"}}}}}`,
		"bad type":       `{"name": "r", "sources": {"s": {"type": "ftp", "args": {}}}, "templates": {}}`,
		"slash in name":  `{"name": "r", "sources": {"s": {"type": "file", "args": {"root": "/"}}}, "templates": {"a/b": {"versions": {}}}}`,
		"not json":       `{"name": `,
	}
	for name, data := range tests {
		if _, err := ParseRepo([]byte(data), "x"); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

// A hash that does not match leaves nothing in the store, names both hashes,
// and a later correct download still works.
func TestHashMismatchLeavesNothing(t *testing.T) {
	img := makeImage(1<<20, false, 2)
	srv := newServer(t)
	srv.put("/el7.raw.xz", xzBytes(t, img))
	bad := strings.Repeat("ab", 20)
	srv.put("/el7.raw.hash", []byte(bad))
	repo, err := ParseRepo(repoJSON(t, "r", Source{Type: "http", Args: map[string]string{"baseurl": srv.URL}},
		map[string]map[string]ver{"el7": {"v1": {"el7.raw", 1}}}), "mem")
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, DecompressAuto)
	_, err = s.Get(context.Background(), repo, "el7", "", nil)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), sha1hex(img)) {
		t.Fatalf("got %v, want a mismatch naming %s and %s", err, bad, sha1hex(img))
	}
	if files := storeFiles(t, s.Dir); len(files) != 0 {
		t.Fatalf("store holds %v after a mismatch", files)
	}
	srv.put("/el7.raw.hash", []byte(sha1hex(img)))
	got, err := s.Get(context.Background(), repo, "el7", "", nil)
	if err != nil || got.Format != FormatRaw {
		t.Fatalf("after fixing the hash: %+v %v", got, err)
	}
}

func TestInterruptedDownloadLeavesNothing(t *testing.T) {
	img := makeImage(1<<20, true, 3)
	compressed := xzBytes(t, img)
	tests := []struct {
		name    string
		mode    string
		path    string
		data    []byte
		cancel  bool
		wantErr error
	}{
		{name: "server drops plain", path: "/i.qcow2", data: img},
		{name: "server drops xz, binary", mode: DecompressExec, path: "/i.qcow2.xz", data: compressed},
		{name: "server drops xz, go", mode: DecompressGo, path: "/i.qcow2.xz", data: compressed},
		{name: "cancel plain", path: "/i.qcow2", data: img, cancel: true, wantErr: context.Canceled},
		{name: "cancel xz, binary", mode: DecompressExec, path: "/i.qcow2.xz", data: compressed, cancel: true, wantErr: context.Canceled},
		{name: "cancel xz, go", mode: DecompressGo, path: "/i.qcow2.xz", data: compressed, cancel: true, wantErr: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mode == DecompressExec && !haveXZ() {
				t.Skip("no xz binary on PATH")
			}
			srv := newServer(t)
			srv.put(tt.path, tt.data)
			srv.put("/i.qcow2.hash", []byte(sha1hex(img)))
			if tt.cancel {
				srv.set(func(s *server) { s.slow[tt.path] = true })
			} else {
				srv.set(func(s *server) { s.dropAfter[tt.path] = len(tt.data) / 2 })
			}
			repo, _ := ParseRepo(repoJSON(t, "r", Source{Type: "http", Args: map[string]string{"baseurl": srv.URL}},
				map[string]map[string]ver{"i": {"v1": {"i.qcow2", 1}}}), "mem")
			s := newStore(t, tt.mode)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p := &cancelAfter{n: 16 << 10, cancel: cancel, armed: tt.cancel}
			done := make(chan error, 1)
			go func() { _, err := s.Get(ctx, repo, "i", "", p); done <- err }()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Get did not return after the interruption")
			}
			if err == nil {
				t.Fatal("interrupted download succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			if files := storeFiles(t, s.Dir); len(files) != 0 {
				t.Fatalf("store holds %v after %v", files, err)
			}
		})
	}
}

// cancelAfter cancels the download once n bytes arrived.
type cancelAfter struct {
	nopProgress
	n      int64
	cancel context.CancelFunc
	armed  bool
}

func (c *cancelAfter) Advance(done int64) {
	if c.armed && done >= c.n {
		c.cancel()
	}
}

func TestCorruptXZFails(t *testing.T) {
	img := makeImage(1<<20, false, 4)
	compressed := xzBytes(t, img)
	compressed[len(compressed)/2] ^= 0xff
	for _, mode := range []string{DecompressExec, DecompressGo} {
		t.Run(mode, func(t *testing.T) {
			if mode == DecompressExec && !haveXZ() {
				t.Skip("no xz binary on PATH")
			}
			srv := newServer(t)
			srv.put("/i.xz", compressed)
			srv.put("/i.hash", []byte(sha1hex(img)))
			repo, _ := ParseRepo(repoJSON(t, "r", Source{Type: "http", Args: map[string]string{"baseurl": srv.URL}},
				map[string]map[string]ver{"i": {"v1": {"i", 1}}}), "mem")
			s := newStore(t, mode)
			if _, err := s.Get(context.Background(), repo, "i", "", nil); err == nil {
				t.Fatal("corrupt xz accepted")
			}
			if files := storeFiles(t, s.Dir); len(files) != 0 {
				t.Fatalf("store holds %v", files)
			}
		})
	}
}

func TestFileSource(t *testing.T) {
	img := makeImage(1<<20, true, 5)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "images", "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "images", "a.qcow2"), img, 0o644)
	os.WriteFile(filepath.Join(dir, "images", "a.qcow2.hash"), []byte(sha1hex(img)), 0o644)
	os.WriteFile(filepath.Join(dir, "images", "a.qcow2.metadata"), []byte(`{"distro": "debian"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "images", "sub", "b.qcow2.xz"), xzBytes(t, img), 0o644)
	os.WriteFile(filepath.Join(dir, "images", "sub", "b.qcow2.hash"), []byte(sha1hex(img)), 0o644)
	// A relative root is relative to the repository file.
	os.WriteFile(filepath.Join(dir, "repo.metadata"), repoJSON(t, "local", Source{Type: "file", Args: map[string]string{"root": "images"}},
		map[string]map[string]ver{"a": {"1": {"a.qcow2", 1}}, "b": {"1": {"sub/b.qcow2", 1}}}), 0o644)
	ctx := context.Background()
	repo, err := LoadRepo(ctx, filepath.Join(dir, "repo.metadata"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, DecompressAuto)
	for _, name := range []string{"a", "b"} {
		got, err := s.Get(ctx, repo, name, "", nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		data, _ := os.ReadFile(got.Path)
		if !bytes.Equal(data, img) || got.Format != FormatQcow2 {
			t.Fatalf("%s: stored image differs or format %s", name, got.Format)
		}
	}
	if a, _, _ := s.Stored("local:a:1"); a.Metadata["distro"] != "debian" {
		t.Fatalf("metadata of a: %v", a.Metadata)
	}
	// A missing image is an error naming it.
	os.Remove(filepath.Join(dir, "images", "a.qcow2"))
	os.Remove(filepath.Join(s.Dir, "local:a:1"))
	if _, err := s.Get(ctx, repo, "a", "", nil); err == nil || !strings.Contains(err.Error(), "a.qcow2") {
		t.Fatalf("missing image: %v", err)
	}
}

func TestFindRepo(t *testing.T) {
	dir := t.TempDir()
	src := Source{Type: "file", Args: map[string]string{"root": "/srv"}}
	os.MkdirAll(filepath.Join(dir, "nested"), 0o755)
	os.WriteFile(filepath.Join(dir, "one.json"), repoJSON(t, "one", src, nil), 0o644)
	os.WriteFile(filepath.Join(dir, "nested", "repo.metadata"), repoJSON(t, "two", src, nil), 0o644)
	os.WriteFile(filepath.Join(dir, "junk.json"), []byte("[1,2"), 0o644)
	ctx := context.Background()
	for _, name := range []string{"one", "two"} {
		r, err := OpenRepo(ctx, Options{Name: name, ReposDir: dir})
		if err != nil || r.Name != name {
			t.Fatalf("find %s: %+v %v", name, r, err)
		}
	}
	_, err := FindRepo(ctx, dir, "three", nil)
	if err == nil || !strings.Contains(err.Error(), "one, two") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("missing repo: %v", err)
	}
	r, err := OpenRepo(ctx, Options{Path: filepath.Join(dir, "one.json")})
	if err != nil || r.Name != "one" {
		t.Fatalf("open by path: %+v %v", r, err)
	}
}

func TestProgressOutput(t *testing.T) {
	clock := time.Unix(0, 0)
	now := func() time.Time { return clock }
	var lines []string
	l := &logProgress{logf: func(f string, a ...any) { lines = append(lines, f) }, every: 10 * time.Second, now: now}
	l.Begin("r:t:v", 100<<20)
	for i := 1; i <= 100; i++ {
		clock = clock.Add(time.Second)
		l.Advance(int64(i) << 20)
	}
	l.End(nil)
	// Begin, one line per 10 s, End.
	if len(lines) != 12 {
		t.Fatalf("%d log lines, want 12: %q", len(lines), lines)
	}
	var buf bytes.Buffer
	b := &barProgress{w: &buf, every: 100 * time.Millisecond, now: now}
	b.Begin("r:t:v", 200)
	clock = clock.Add(time.Second)
	b.Advance(100)
	b.End(nil)
	out := buf.String()
	if !strings.Contains(out, "\rr:t:v [==============>               ]  50% 100 B/200 B") || !strings.HasSuffix(out, "done\n") {
		t.Fatalf("bar output %q", out)
	}
}

// A server that stops sending mid-download fails it after StallTimeout
// instead of hanging, and leaves nothing behind.
func TestStalledDownloadFails(t *testing.T) {
	img := makeImage(1<<20, true, 8)
	srv := newServer(t)
	srv.put("/i.qcow2", img)
	srv.put("/i.qcow2.hash", []byte(sha1hex(img)))
	srv.set(func(s *server) { s.stallAfter["/i.qcow2"] = 100 << 10 })
	repo, _ := ParseRepo(repoJSON(t, "r", Source{Type: "http", Args: map[string]string{"baseurl": srv.URL}},
		map[string]map[string]ver{"i": {"v1": {"i.qcow2", 1}}}), "mem")
	s := newStore(t, DecompressAuto)
	s.StallTimeout = 300 * time.Millisecond
	t0 := time.Now()
	_, err := s.Get(context.Background(), repo, "i", "", nil)
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("got %v, want ErrStalled", err)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Fatalf("stall detected after %s", d)
	}
	if files := storeFiles(t, s.Dir); len(files) != 0 {
		t.Fatalf("store holds %v", files)
	}
}

func TestStoredVersions(t *testing.T) {
	s := newStore(t, DecompressAuto)
	os.MkdirAll(s.Dir, 0o755)
	now := time.Now()
	for i, name := range []string{"r:el7:v1", "r:el7:v2.1", "r:el7-other:v1", "q:el7:v9"} {
		p := filepath.Join(s.Dir, name)
		os.WriteFile(p, []byte("QFI\xfbxxxx"), 0o644)
		os.WriteFile(p+".hash", []byte("h"), 0o644)
		os.WriteFile(p+".metadata", []byte(`{"distro": "el7"}`), 0o644)
		os.Chtimes(p, now, now.Add(time.Duration(i)*time.Minute))
	}
	os.WriteFile(filepath.Join(s.Dir, "r:el7:v3.tmp"), nil, 0o644)
	os.WriteFile(filepath.Join(s.Dir, "r:el7:v3.lock"), nil, 0o644)
	got, err := s.StoredVersions("r", "el7")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Key != "r:el7:v2.1" || got[1].Key != "r:el7:v1" || got[0].Format != FormatQcow2 || got[0].Metadata["distro"] != "el7" {
		t.Fatalf("got %+v, want r:el7:v2.1 then r:el7:v1", got)
	}
	if got, err := (&Store{Dir: filepath.Join(t.TempDir(), "none")}).StoredVersions("r", "el7"); err != nil || len(got) != 0 {
		t.Fatalf("missing store: %v %v", got, err)
	}
}

func TestLoadRepoErrors(t *testing.T) {
	srv := newServer(t)
	srv.put("/bad.json", []byte("{"))
	srv.put("/ok.json", []byte(`{"name": "ok", "sources": {}, "templates": {}}`))
	dead := newServer(t)
	deadURL := dead.URL + "/repo.metadata"
	dead.Close()
	missing := filepath.Join(t.TempDir(), "repo.metadata")
	tests := []struct {
		name, loc, errHas string
	}{
		{"missing file", missing, missing},
		{"404", srv.URL + "/none.json", "404"},
		{"bad json", srv.URL + "/bad.json", "parse template repository"},
		{"server down", deadURL, "connection refused"},
		{"ok", srv.URL + "/ok.json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := LoadRepo(context.Background(), tt.loc, nil)
			if tt.errHas == "" {
				if err != nil || r.Name != "ok" || r.Location != tt.loc {
					t.Fatalf("got %+v %v", r, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("got %v, want error mentioning %q", err, tt.errHas)
			}
			if strings.Count(err.Error(), tt.loc) > 1 {
				t.Errorf("error repeats the location: %v", err)
			}
		})
	}
}
