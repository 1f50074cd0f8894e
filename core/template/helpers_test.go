package template

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ulikunitz/xz"
)

// makeImage returns n bytes that look like a qcow2 image (or raw) and
// compress like one: runs of zeros and of random bytes.
func makeImage(n int, qcow2 bool, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; {
		run := min(1+r.IntN(8192), n-i)
		if r.IntN(2) == 0 {
			for j := range run {
				b[i+j] = byte(r.Uint32())
			}
		}
		i += run
	}
	if qcow2 && n >= 4 {
		copy(b, qcow2Magic)
	}
	return b
}

// xzBytes compresses data with the xz binary when there is one (the Go
// encoder is very slow under -race), else with the Go encoder.
func xzBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	if haveXZ() {
		cmd := exec.Command("xz", "-0", "-c")
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha1hex(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

// server serves fixed files over 127.0.0.1 and counts requests per path.
type server struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	hits  map[string]int
	// dropAfter cuts the connection after that many body bytes of a path.
	dropAfter map[string]int
	// delay holds the body of a path back for that long.
	delay map[string]time.Duration
	// slow writes a path's body in small pieces with pauses.
	slow map[string]bool
	// stallAfter stops sending a path's body after that many bytes, until
	// the client goes away.
	stallAfter map[string]int
}

func newServer(t *testing.T) *server {
	s := &server{files: map[string][]byte{}, hits: map[string]int{}, dropAfter: map[string]int{}, delay: map[string]time.Duration{}, slow: map[string]bool{}, stallAfter: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *server) put(path string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = data
}

// set changes the server's behaviour under its lock: its handlers run on
// other goroutines, for requests of other processes too.
func (s *server) set(change func(s *server)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	change(s)
}

func (s *server) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hits[r.URL.Path]++
	data, ok := s.files[r.URL.Path]
	drop, dropping := s.dropAfter[r.URL.Path]
	delay := s.delay[r.URL.Path]
	slow := s.slow[r.URL.Path]
	stall, stalling := s.stallAfter[r.URL.Path]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	time.Sleep(delay)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if dropping {
		w.WriteHeader(http.StatusOK)
		w.Write(data[:drop])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}
		return
	}
	if stalling {
		w.Write(data[:stall])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return
	}
	if slow {
		for i := 0; i < len(data); i += 4096 {
			if _, err := w.Write(data[i:min(i+4096, len(data))]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
		return
	}
	w.Write(data)
}

// repoJSON builds a repo.metadata with one source and the given templates,
// each a map version -> [handle, timestamp].
type ver struct {
	handle string
	ts     float64
}

func repoJSON(t *testing.T, name string, src Source, templates map[string]map[string]ver) []byte {
	t.Helper()
	r := map[string]any{"name": name, "sources": map[string]Source{"src": src}}
	ts := map[string]any{}
	for tn, vs := range templates {
		versions := map[string]any{}
		for vn, v := range vs {
			versions[vn] = map[string]any{"source": "src", "handle": v.handle, "timestamp": v.ts}
		}
		ts[tn] = map[string]any{"versions": versions}
	}
	r["templates"] = ts
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// storeFiles lists the store folder, without lock files.
func storeFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lock") {
			out = append(out, e.Name())
		}
	}
	return out
}

func haveXZ() bool {
	_, err := exec.LookPath("xz")
	return err == nil
}

func newStore(t *testing.T, mode string) *Store {
	return &Store{Dir: filepath.Join(t.TempDir(), "store"), Decompressor: mode, LockTimeout: 30 * time.Second}
}
