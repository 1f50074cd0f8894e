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
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lago-go/lago/core/ssh/sshtest"
)

// fakeGuest answers Pull's commands with a prepared archive: every path
// exists under / as a folder, and tar sends stream then exits with code.
type fakeGuest struct {
	stream []byte
	code   int
	// endless keeps sending after stream until ctx ends.
	endless bool
}

func (g *fakeGuest) Run(ctx context.Context, argv []string, _ io.Reader, stdout, _ io.Writer) (int, error) {
	switch argv[2] {
	case pullProbe:
		fmt.Fprint(stdout, "tz\x00")
		for _, p := range argv[4:] {
			fmt.Fprintf(stdout, "d\x00%s\x00", p)
		}
		return 0, nil
	case pullTar:
		if _, err := stdout.Write(g.stream); err != nil {
			return -1, err
		}
		for g.endless {
			select {
			case <-ctx.Done():
				return -1, ctx.Err()
			default:
			}
			if _, err := stdout.Write(make([]byte, 32<<10)); err != nil {
				return -1, err
			}
		}
		return g.code, nil
	}
	return 127, nil
}

type tarEntry struct {
	name string
	typ  byte
	link string
	body string
	mode int64
}

func archive(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: mode, Size: int64(len(e.body)),
			ModTime: time.Unix(1600000000, 0), Format: tar.FormatGNU}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func dirE(name string) tarEntry             { return tarEntry{name: name, typ: tar.TypeDir, mode: 0o755} }
func fileE(name, body string) tarEntry      { return tarEntry{name: name, typ: tar.TypeReg, body: body} }
func symE(name, link string) tarEntry       { return tarEntry{name: name, typ: tar.TypeSymlink, link: link} }
func hardE(name, link string) tarEntry      { return tarEntry{name: name, typ: tar.TypeLink, link: link} }
func specialE(name string, t byte) tarEntry { return tarEntry{name: name, typ: t} }

// listTree maps every path under dir to its contents ("->target" for a
// link, "/" for a folder).
func listTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			got[rel] = "->" + l
		case d.IsDir():
			got[rel] = "/"
		default:
			b, _ := os.ReadFile(p)
			got[rel] = string(b)
		}
		return nil
	})
	return got
}

// TestPullHostileStream feeds Pull archives a hostile guest could send:
// nothing may land outside the destination, an unsafe entry fails the copy
// (and nothing is left under the final name), and links that lead out are
// dropped and reported.
func TestPullHostileStream(t *testing.T) {
	tests := []struct {
		name    string
		entries []tarEntry
		// setup prepares the destination folder (a merge target).
		setup   func(t *testing.T, dest, outside string)
		wantErr error
		want    map[string]string // the destination's tree after the copy
		skipped []string
	}{
		{name: "plain", entries: []tarEntry{dirE("./data/"), fileE("./data/f", "x"), dirE("./data/d/"), fileE("data/./d/g", "y")},
			want: map[string]string{"out": "/", "out/f": "x", "out/d": "/", "out/d/g": "y"}},
		{name: "absolute name", entries: []tarEntry{dirE("./data/"), fileE("/etc/evil", "x")}, wantErr: ErrUnsafeEntry},
		{name: "dot-dot", entries: []tarEntry{dirE("./data/"), fileE("../escape", "x")}, wantErr: ErrUnsafeEntry},
		{name: "dot-dot inside", entries: []tarEntry{dirE("./data/"), fileE("./data/../../escape", "x")}, wantErr: ErrUnsafeEntry},
		{name: "not asked for", entries: []tarEntry{dirE("./data/"), fileE("./other/x", "x")}, wantErr: ErrUnsafeEntry},
		{name: "file under a file", entries: []tarEntry{dirE("./data/"), fileE("./data/f", "x"), fileE("./data/f/g", "y")},
			wantErr: ErrUnsafeEntry},
		{name: "chain a->. then a/b->.. then b/x",
			entries: []tarEntry{dirE("./data/"), symE("./data/a", "."), symE("./data/a/b", ".."), fileE("./data/b/x", "x")},
			wantErr: ErrUnsafeEntry},
		{name: "write through a link it sent", entries: []tarEntry{dirE("./data/"), symE("./data/l", "/tmp"), fileE("./data/l/x", "x")},
			wantErr: ErrUnsafeEntry},
		{name: "links out are dropped",
			entries: []tarEntry{dirE("./data/"), fileE("./data/f", "x"), symE("./data/abs", "/etc/passwd"),
				symE("./data/up", "../../etc"), symE("./data/in", "f"), symE("./data/dot", ".")},
			want:    map[string]string{"out": "/", "out/f": "x", "out/in": "->f", "out/dot": "->."},
			skipped: []string{"data/abs", "data/up"}},
		{name: "chains that look inside but lead out",
			entries: []tarEntry{dirE("./data/"), symE("./data/c", "."), symE("./data/e", "d/.."), symE("./data/d", "c/.."),
				dirE("./data/sub/"), symE("./data/sub/s", "../c/../x")},
			want:    map[string]string{"out": "/", "out/c": "->.", "out/sub": "/"},
			skipped: []string{"data/d", "data/e", "data/sub/s"}},
		{name: "hard link to a file it wrote", entries: []tarEntry{dirE("./data/"), fileE("./data/f", "x"), hardE("./data/h", "./data/f")},
			want: map[string]string{"out": "/", "out/f": "x", "out/h": "x"}},
		{name: "hard link out", entries: []tarEntry{dirE("./data/"), hardE("./data/h", "/etc/passwd")}, wantErr: ErrUnsafeEntry},
		{name: "hard link up", entries: []tarEntry{dirE("./data/"), hardE("./data/h", "../outside/secret")}, wantErr: ErrUnsafeEntry},
		{name: "hard link to a file it did not write", entries: []tarEntry{dirE("./data/"), hardE("./data/h", "./data/secret")},
			setup:   func(t *testing.T, dest, _ string) { mustMkdirWrite(t, filepath.Join(dest, "out", "secret"), "s") },
			wantErr: ErrUnsafeEntry},
		{name: "devices and fifos are not created",
			entries: []tarEntry{dirE("./data/"), specialE("./data/null", tar.TypeChar), specialE("./data/sda", tar.TypeBlock),
				specialE("./data/fifo", tar.TypeFifo), fileE("./data/f", "x")},
			want:    map[string]string{"out": "/", "out/f": "x"},
			skipped: []string{"./data/null", "./data/sda", "./data/fifo"}},
		{name: "merge: a link already in the destination is not followed",
			entries: []tarEntry{dirE("./data/"), fileE("./data/evil/x", "x")},
			setup: func(t *testing.T, dest, outside string) {
				if err := os.Mkdir(filepath.Join(dest, "out"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(outside, filepath.Join(dest, "out", "evil")); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: ErrUnsafeEntry},
		{name: "setuid bits are dropped", entries: []tarEntry{dirE("./data/"), {name: "./data/suid", typ: tar.TypeReg, body: "x", mode: 0o4755}},
			want: map[string]string{"out": "/", "out/suid": "x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dest, outside := filepath.Join(base, "dest"), filepath.Join(base, "outside")
			for _, d := range []string{dest, outside} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if tc.setup != nil {
				tc.setup(t, dest, outside)
			}
			before := listTree(t, dest)
			var skipped []string
			g := &fakeGuest{stream: archive(t, tc.entries...)}
			res, err := Pull(context.Background(), g, dest, []PullItem{{Remote: "/data", Name: "out"}},
				PullOptions{Skipped: func(name, why string) { skipped = append(skipped, name) }})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || res[0].Err == nil {
					t.Fatalf("Pull = %v, want %v", err, tc.wantErr)
				}
				if got := listTree(t, dest); fmt.Sprint(got) != fmt.Sprint(before) {
					t.Errorf("a refused copy changed the destination:\n got %v\nwant %v", got, before)
				}
			} else {
				if err != nil {
					t.Fatalf("Pull: %v", err)
				}
				if got := listTree(t, dest); fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("destination:\n got %v\nwant %v", got, tc.want)
				}
			}
			if got := listTree(t, outside); len(got) != 0 {
				t.Errorf("written outside the destination: %v", got)
			}
			if ents, _ := os.ReadDir(base); len(ents) != 2 {
				t.Errorf("written next to the destination: %d entries", len(ents))
			}
			sort.Strings(skipped)
			sort.Strings(tc.skipped)
			if fmt.Sprint(skipped) != fmt.Sprint(tc.skipped) {
				t.Errorf("skipped %q, want %q", skipped, tc.skipped)
			}
			if st, err := os.Stat(filepath.Join(dest, "out", "suid")); err == nil && st.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
				t.Errorf("suid: mode %v", st.Mode())
			}
		})
	}
}

func mustMkdirWrite(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPullFailures: a copy that fails part way (limits, a huge header, a
// guest command that fails after sending part of a file) leaves nothing
// under the final name and no temporary file.
func TestPullFailures(t *testing.T) {
	big := strings.Repeat("x", 100)
	long := make([]byte, 2<<20)
	for i := range long {
		long[i] = 'a'
	}
	hugeHeader := func(t *testing.T) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Name: "./data/" + string(long), Typeflag: tar.TypeReg, Format: tar.FormatGNU}); err != nil {
			t.Fatal(err)
		}
		tw.Close()
		return buf.Bytes()
	}
	tests := []struct {
		name    string
		stream  func(t *testing.T) []byte
		code    int
		lim     Limits
		wantErr error
	}{
		{"bytes over the cap", func(t *testing.T) []byte { return archive(t, dirE("./data/"), fileE("./data/f", big)) }, 0,
			Limits{MaxBytes: 50}, ErrTooLarge},
		{"entries over the cap", func(t *testing.T) []byte {
			return archive(t, dirE("./data/"), fileE("./data/a", ""), fileE("./data/b", ""), fileE("./data/c", ""))
		}, 0, Limits{MaxEntries: 3}, ErrTooLarge},
		{"a header past archive/tar's bound", hugeHeader, 0, Limits{}, nil},
		{"the guest's tar fails after a file", func(t *testing.T) []byte { return archive(t, dirE("./data/"), fileE("./data/f", big)) }, 2,
			Limits{}, nil},
		{"a single file, then tar fails", func(t *testing.T) []byte { return archive(t, fileE("./data", big)) }, 1, Limits{}, nil},
		{"a truncated stream", func(t *testing.T) []byte {
			b := archive(t, dirE("./data/"), fileE("./data/f", strings.Repeat("y", 4096)))
			return b[:512*3]
		}, 0, Limits{}, io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dest := t.TempDir()
			g := &fakeGuest{stream: tc.stream(t), code: tc.code}
			_, err := Pull(context.Background(), g, dest, []PullItem{{Remote: "/data", Name: "out"}}, PullOptions{Limits: tc.lim})
			if err == nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Pull = %v, want an error (%v)", err, tc.wantErr)
			}
			if ents, _ := os.ReadDir(dest); len(ents) != 0 {
				t.Errorf("left %q after: %v", ents[0].Name(), err)
			}
		})
	}
}

// TestPullStopsAGuestThatKeepsSending: when the host refuses an entry, the
// guest command still sending is ended rather than waited for.
func TestPullStopsAGuestThatKeepsSending(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	c := dialT(t, Target{Addr: srv.Addr(), Password: "pw"})
	stream := filepath.Join(t.TempDir(), "hostile.tar")
	if err := os.WriteFile(stream, archive(t, dirE("./data/"), fileE("/etc/evil", "x")), 0o644); err != nil {
		t.Fatal(err)
	}
	r := swapRunner{c: c, swap: map[string][]string{
		pullTar: {"sh", "-c", `cat "$1"; exec cat /dev/zero`, "sh", stream},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Pull(ctx, r, t.TempDir(), []PullItem{{Remote: t.TempDir(), Name: "out"}}, PullOptions{})
	if !errors.Is(err, ErrUnsafeEntry) {
		t.Fatalf("Pull = %v, want ErrUnsafeEntry", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v: the endless sender was waited for", d)
	}
}

// swapRunner runs its own commands in place of some of Pull's.
type swapRunner struct {
	c    *Client
	swap map[string][]string
}

func (s swapRunner) Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(argv) > 2 {
		if alt, ok := s.swap[argv[2]]; ok {
			argv = alt
		}
	}
	return s.c.Run(ctx, argv, stdin, stdout, stderr)
}

// TestCopyConstantMemory: a file many times the size of the heap bound
// goes both ways through a real ssh session without the heap growing with
// it.
func TestCopyConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 2 x 256 MiB")
	}
	const size = 256 << 20
	const bound = 64 << 20
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	c := dialT(t, Target{Addr: srv.Addr(), Password: "pw"})
	dir := t.TempDir()
	src := filepath.Join(dir, "big")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	for i := 0; i < size/len(chunk); i++ {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	ctx := context.Background()
	remote := filepath.Join(dir, "remote")
	back := filepath.Join(dir, "back")
	err = c.CopyTo(ctx, src, remote)
	if err == nil {
		err = c.CopyFrom(ctx, remote, back)
	}
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(back); err != nil || st.Size() != size {
		t.Fatalf("copied back: %v, %v", st, err)
	}
	t.Logf("peak heap in use: %d MiB for a %d MiB file each way", peak.Load()>>20, size>>20)
	if peak.Load() > bound {
		t.Errorf("peak heap %d MiB > %d MiB", peak.Load()>>20, bound>>20)
	}
}
