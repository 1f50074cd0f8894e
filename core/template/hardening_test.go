package template

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// silentListener accepts connections and never answers on them, like a
// server whose application hung.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// A server that accepts and never answers fails the download after the
// connect (TLS handshake) or response timeout, or after the stall timeout
// behind a client without timeouts, instead of hanging init.
func TestServerThatNeverAnswers(t *testing.T) {
	addr := silentListener(t)
	short := 200 * time.Millisecond
	tests := []struct {
		name    string
		url     string
		opts    Options
		wantErr error  // errors.Is target, when set
		errHas  string // else a word of the message
	}{
		{name: "http, response timeout", url: "http://" + addr + "/repo.metadata",
			opts: Options{ConnectTimeout: short, ResponseTimeout: short, StallTimeout: time.Hour}, errHas: "template_response_timeout"},
		{name: "https, handshake timeout", url: "https://" + addr + "/repo.metadata",
			opts: Options{ConnectTimeout: short, ResponseTimeout: time.Hour, StallTimeout: time.Hour}, errHas: "template_connect_timeout"},
		{name: "client without timeouts, stall", url: "http://" + addr + "/repo.metadata",
			opts: Options{Client: &http.Client{}, StallTimeout: short}, wantErr: ErrStalled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Path = tt.url
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			t0 := time.Now()
			_, err := OpenRepo(ctx, tt.opts)
			if d := time.Since(t0); d > 10*time.Second {
				t.Fatalf("took %s: %v", d, err)
			}
			if err == nil || !strings.Contains(err.Error(), tt.url) {
				t.Fatalf("got %v, want an error naming %s", err, tt.url)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			if tt.errHas != "" && !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("got %v, want it to name %s", err, tt.errHas)
			}
		})
	}
}

// The timeouts bound waits, not downloads: a slow but steady image whose
// whole transfer takes several times every timeout is not cut.
func TestSlowSteadyDownloadSucceeds(t *testing.T) {
	img := makeImage(1<<20, true, 16)
	srv := newServer(t)
	srv.put("/r/repo.metadata", repoJSON(t, "r", Source{Type: "http", Args: map[string]string{"baseurl": srv.URL + "/r"}},
		map[string]map[string]ver{"i": {"v1": {"i.qcow2", 1}}}))
	srv.put("/r/i.qcow2", img)
	srv.put("/r/i.qcow2.hash", []byte(sha1hex(img)))
	srv.set(func(s *server) { s.slow["/r/i.qcow2"] = true }) // 4 kB every 5 ms: over a second
	short := 250 * time.Millisecond
	ctx := context.Background()
	repo, err := OpenRepo(ctx, Options{Path: srv.URL + "/r/repo.metadata", ConnectTimeout: short, ResponseTimeout: short, StallTimeout: short})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, DecompressAuto)
	s.StallTimeout = short
	t0 := time.Now()
	if _, err := s.Get(ctx, repo, "i", "", nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 4*short {
		t.Logf("the download took only %s; the test proves little on this machine", d)
	}
}

// The .hash and .metadata of a template are bounded as the image is: a
// server that sends part of one and then nothing fails after StallTimeout.
func TestStalledCompanionFails(t *testing.T) {
	img := makeImage(64<<10, true, 9)
	srv := newServer(t)
	srv.put("/i.qcow2", img)
	srv.put("/i.qcow2.hash", []byte(sha1hex(img)))
	srv.set(func(s *server) { s.stallAfter["/i.qcow2.hash"] = 4 })
	repo, _ := ParseRepo(repoJSON(t, "r", Source{Type: "http", Args: map[string]string{"baseurl": srv.URL}},
		map[string]map[string]ver{"i": {"v1": {"i.qcow2", 1}}}), "mem")
	s := newStore(t, DecompressAuto)
	s.StallTimeout = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := s.Get(ctx, repo, "i", "", nil)
	if !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), srv.URL+"/i.qcow2.hash") {
		t.Fatalf("got %v, want ErrStalled naming the .hash URL", err)
	}
	if files := storeFiles(t, s.Dir); len(files) != 0 {
		t.Fatalf("store holds %v", files)
	}
}

// mixedServer serves fixed files, and endless bodies (chunked, no length)
// at the paths of endless, each starting with its prefix.
func mixedServer(t *testing.T, files, endless map[string][]byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if data, ok := files[r.URL.Path]; ok {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.Write(data)
			return
		}
		prefix, ok := endless[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if _, err := w.Write(prefix); err != nil {
			return
		}
		buf := make([]byte, 64<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// An endless body, an xz bomb or an image whose Content-Length passes the
// cap fails at MaxImageSize (as served and as decompressed); an endless
// metadata document at the fixed small cap. The errors name the URL and
// the limit, and nothing is left in the store.
func TestOversizedDownloadsFail(t *testing.T) {
	const limit = 1 << 20
	zeros := make([]byte, 16<<20)
	bomb := xzBytes(t, zeros) // a few kB that decompress to 16 MiB
	small := makeImage(64<<10, true, 10)
	smallXZ := xzBytes(t, small)
	big := makeImage(2<<20, true, 11)
	tests := []struct {
		name    string
		mode    string
		files   map[string][]byte
		endless map[string][]byte
		errHas  []string // besides the limit, "1.0 MiB"
	}{
		{name: "endless plain image", mode: DecompressAuto,
			files:   map[string][]byte{"/i.qcow2.hash": []byte(sha1hex(small))},
			endless: map[string][]byte{"/i.qcow2": small},
			errHas:  []string{"/i.qcow2", "as served", "1.0 MiB"}},
		{name: "xz bomb, binary", mode: DecompressExec,
			files:  map[string][]byte{"/i.qcow2.xz": bomb, "/i.qcow2.hash": []byte(sha1hex(zeros))},
			errHas: []string{"/i.qcow2.xz", "decompressed", "1.0 MiB"}},
		{name: "xz bomb, go", mode: DecompressGo,
			files:  map[string][]byte{"/i.qcow2.xz": bomb, "/i.qcow2.hash": []byte(sha1hex(zeros))},
			errHas: []string{"/i.qcow2.xz", "decompressed", "1.0 MiB"}},
		// Stream padding (zeros after an xz stream) decompresses to nothing:
		// only the cap on the bytes served stops it.
		{name: "endless xz padding, binary", mode: DecompressExec,
			files:   map[string][]byte{"/i.qcow2.hash": []byte(sha1hex(small))},
			endless: map[string][]byte{"/i.qcow2.xz": smallXZ},
			errHas:  []string{"/i.qcow2.xz", "as served", "1.0 MiB"}},
		{name: "endless xz padding, go", mode: DecompressGo,
			files:   map[string][]byte{"/i.qcow2.hash": []byte(sha1hex(small))},
			endless: map[string][]byte{"/i.qcow2.xz": smallXZ},
			errHas:  []string{"/i.qcow2.xz", "as served", "1.0 MiB"}},
		{name: "Content-Length over the cap", mode: DecompressAuto,
			files:  map[string][]byte{"/i.qcow2": big, "/i.qcow2.hash": []byte(sha1hex(big))},
			errHas: []string{"/i.qcow2", "2097152 bytes", "1.0 MiB"}},
		{name: "endless hash", mode: DecompressAuto,
			files:   map[string][]byte{"/i.qcow2": small},
			endless: map[string][]byte{"/i.qcow2.hash": []byte(sha1hex(small))},
			errHas:  []string{"/i.qcow2.hash", "metadata document"}},
		{name: "endless metadata", mode: DecompressAuto,
			files:   map[string][]byte{"/i.qcow2": small, "/i.qcow2.hash": []byte(sha1hex(small))},
			endless: map[string][]byte{"/i.qcow2.metadata": []byte(`{"distro": "`)},
			errHas:  []string{"/i.qcow2.metadata", "metadata document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mode == DecompressExec && !haveXZ() {
				t.Skip("no xz binary on PATH")
			}
			srv := mixedServer(t, tt.files, tt.endless)
			repo, err := ParseRepo(repoJSON(t, "r", Source{Type: "http", Args: map[string]string{"baseurl": srv.URL}},
				map[string]map[string]ver{"i": {"v1": {"i.qcow2", 1}}}), "mem")
			if err != nil {
				t.Fatal(err)
			}
			s := newStore(t, tt.mode)
			s.MaxImageSize = limit
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err = s.Get(ctx, repo, "i", "", nil)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("got %v, want ErrTooLarge", err)
			}
			for _, w := range tt.errHas {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if files := storeFiles(t, s.Dir); len(files) != 0 {
				t.Fatalf("store holds %v", files)
			}
		})
	}
}

// A repo.metadata is capped too.
func TestEndlessRepoMetadataFails(t *testing.T) {
	srv := mixedServer(t, nil, map[string][]byte{"/repo.metadata": []byte(`{"name": "`)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := LoadRepo(ctx, srv.URL+"/repo.metadata", nil)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), srv.URL+"/repo.metadata") {
		t.Fatalf("got %v, want ErrTooLarge naming the URL", err)
	}
}

// A redirect from https to http is refused, for the repository and for
// images, also through a caller's own client; others are followed.
func TestRedirectDowngradeRefused(t *testing.T) {
	img := makeImage(64<<10, true, 12)
	plain := newServer(t)
	plain.put("/i.qcow2", img)
	plain.put("/i.qcow2.hash", []byte(sha1hex(img)))
	var tlsURL string
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/down/repo.metadata":
			http.Redirect(w, r, plain.URL+"/repo.metadata", http.StatusFound)
		case "/same/repo.metadata":
			http.Redirect(w, r, tlsURL+"/repo.metadata", http.StatusFound)
		case "/repo.metadata":
			w.Write(repoJSON(t, "r", Source{Type: "http", Args: map[string]string{"baseurl": tlsURL + "/img"}},
				map[string]map[string]ver{"i": {"v1": {"i.qcow2", 1}}}))
		case "/img/i.qcow2.hash":
			w.Write([]byte(sha1hex(img)))
		case "/img/i.qcow2":
			http.Redirect(w, r, plain.URL+"/i.qcow2", http.StatusMovedPermanently)
		default:
			http.NotFound(w, r)
		}
	}))
	defer tlsSrv.Close()
	tlsURL = tlsSrv.URL
	plain.put("/repo.metadata", []byte(`{"name": "r", "sources": {}, "templates": {}}`))
	ctx := context.Background()

	_, err := LoadRepo(ctx, tlsURL+"/down/repo.metadata", tlsSrv.Client())
	if !errors.Is(err, ErrDowngrade) || !strings.Contains(err.Error(), plain.URL+"/repo.metadata") {
		t.Fatalf("repository: got %v, want ErrDowngrade naming the http URL", err)
	}
	if plain.count("/repo.metadata") != 0 {
		t.Fatal("the http URL was fetched")
	}
	repo, err := LoadRepo(ctx, tlsURL+"/same/repo.metadata", tlsSrv.Client())
	if err != nil {
		t.Fatalf("https to https: %v", err)
	}
	s := newStore(t, DecompressAuto)
	_, err = s.Get(ctx, repo, "i", "", nil)
	if !errors.Is(err, ErrDowngrade) {
		t.Fatalf("image: got %v, want ErrDowngrade", err)
	}
	if plain.count("/i.qcow2") != 0 {
		t.Fatal("the image was fetched over http")
	}
	if files := storeFiles(t, s.Dir); len(files) != 0 {
		t.Fatalf("store holds %v", files)
	}
	// http to http (and http to https) stays allowed: the original's
	// repository is plain http.
	redir := httptest.NewServer(http.RedirectHandler(plain.URL+"/repo.metadata", http.StatusFound))
	defer redir.Close()
	if _, err := LoadRepo(ctx, redir.URL, nil); err != nil {
		t.Fatalf("http to http: %v", err)
	}
}

// A repository loaded from a URL cannot have a file source read this
// host's files into the store; one loaded from a file can.
func TestRemoteRepoFileSourceRefused(t *testing.T) {
	img := makeImage(64<<10, true, 13)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "i.qcow2"), img, 0o644)
	os.WriteFile(filepath.Join(dir, "i.qcow2.hash"), []byte(sha1hex(img)), 0o644)
	tests := []struct {
		name string
		src  Source
		want error // nil: any error
	}{
		{name: "file source", src: Source{Type: "file", Args: map[string]string{"root": dir}}, want: ErrRemoteFileSource},
		{name: "relative file source", src: Source{Type: "file", Args: map[string]string{"root": "."}}, want: ErrRemoteFileSource},
		{name: "http source with a file URL", src: Source{Type: "http", Args: map[string]string{"baseurl": "file://" + dir}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			srv.put("/repo.metadata", repoJSON(t, "r", tt.src, map[string]map[string]ver{"i": {"v1": {"i.qcow2", 1}}}))
			ctx := context.Background()
			repo, err := LoadRepo(ctx, srv.URL+"/repo.metadata", nil)
			if err != nil {
				t.Fatal(err)
			}
			s := newStore(t, DecompressAuto)
			_, err = s.Get(ctx, repo, "i", "", nil)
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if files := storeFiles(t, s.Dir); len(files) != 0 {
				t.Fatalf("store holds %v", files)
			}
		})
	}
	// The same repository from a file on this host works.
	local := filepath.Join(dir, "repo.metadata")
	os.WriteFile(local, repoJSON(t, "r", Source{Type: "file", Args: map[string]string{"root": dir}},
		map[string]map[string]ver{"i": {"v1": {"i.qcow2", 1}}}), 0o644)
	repo, err := LoadRepo(context.Background(), local, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newStore(t, DecompressAuto).Get(context.Background(), repo, "i", "", nil); err != nil {
		t.Fatalf("local repository: %v", err)
	}
}

// A symlink planted in the shared store where a download file would go is
// never followed: not at the old fixed name "<key>.tmp", nor at the name
// a download draws (it draws another). Stale download files of the key
// are removed, others' are kept.
func TestDownloadFileIgnoresPlantedSymlinks(t *testing.T) {
	img := makeImage(256<<10, true, 14)
	srv := newServer(t)
	srv.put("/i.qcow2", img)
	srv.put("/i.qcow2.hash", []byte(sha1hex(img)))
	repo, _ := ParseRepo(repoJSON(t, "r", Source{Type: "http", Args: map[string]string{"baseurl": srv.URL}},
		map[string]map[string]ver{"i": {"v1": {"i.qcow2", 1}}}), "mem")
	s := newStore(t, DecompressAuto)
	if err := os.MkdirAll(s.Dir, 0o775); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("precious"), 0o644)
	const key = "r:i:v1"
	guessed := ".tmp-guessed-" + key
	for _, name := range []string{key + ".tmp", guessed} {
		if err := os.Symlink(victim, filepath.Join(s.Dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	stale := filepath.Join(s.Dir, ".tmp-123-"+key)
	otherStale := filepath.Join(s.Dir, ".tmp-123-"+key+"x")
	os.WriteFile(stale, []byte("half"), 0o644)
	os.WriteFile(otherStale, []byte("half"), 0o644)

	var draws atomic.Int32
	orig := tempName
	tempName = func(k string) string {
		if draws.Add(1) == 1 {
			return guessed
		}
		return orig(k)
	}
	defer func() { tempName = orig }()

	got, err := s.Get(context.Background(), repo, "i", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(victim); string(data) != "precious" {
		t.Fatalf("the symlink's target was written: %d bytes now", len(data))
	}
	if data, _ := os.ReadFile(got.Path); !bytes.Equal(data, img) {
		t.Fatal("stored image differs")
	}
	if draws.Load() < 2 {
		t.Fatalf("drew %d names, want a second one after the planted name", draws.Load())
	}
	if _, err := os.Lstat(stale); !os.IsNotExist(err) {
		t.Errorf("stale download file of the key kept (%v)", err)
	}
	if _, err := os.Lstat(otherStale); err != nil {
		t.Errorf("another key's download file removed: %v", err)
	}
	want := []string{".tmp-123-" + key + "x", guessed, key, key + ".hash", key + ".metadata", key + ".tmp"}
	if files := storeFiles(t, s.Dir); !slices.Equal(files, want) {
		t.Errorf("store holds %v, want %v", files, want)
	}
}
