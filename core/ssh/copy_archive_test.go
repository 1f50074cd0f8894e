package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeDisks is an ArchiveSource: per call, the stream for the paths asked
// (keyed by the paths joined with " "), and the paths it reports missing.
type fakeDisks struct {
	mu      sync.Mutex
	streams map[string][]byte
	missing map[string]bool
	err     error
	calls   []string
}

func (d *fakeDisks) read(ctx context.Context, paths []string, w io.Writer) ([]string, error) {
	d.mu.Lock()
	key := strings.Join(paths, " ")
	d.calls = append(d.calls, key)
	s := d.streams[key]
	d.mu.Unlock()
	if _, err := w.Write(s); err != nil {
		return nil, err
	}
	if d.err != nil {
		return nil, d.err
	}
	var gone []string
	for _, p := range paths {
		if d.missing[p] {
			gone = append(gone, p)
		}
	}
	return gone, nil
}

// TestPullArchiveHostile feeds PullArchive what a hostile guest's disk
// could make a provider send: nothing lands outside the destination and a
// refused stream leaves nothing under the final name.
func TestPullArchiveHostile(t *testing.T) {
	tests := []struct {
		name    string
		entries []tarEntry
		wantErr error
		want    map[string]string
	}{
		{name: "plain", entries: []tarEntry{dirE("data/"), fileE("data/f", "x"), symE("data/in", "f"), symE("data/abs", "/etc/passwd")},
			want: map[string]string{"out": "/", "out/f": "x", "out/in": "->f"}},
		{name: "absolute name", entries: []tarEntry{dirE("data/"), fileE("/etc/evil", "x")}, wantErr: ErrUnsafeEntry},
		{name: "dot-dot", entries: []tarEntry{dirE("data/"), fileE("data/../../escape", "x")}, wantErr: ErrUnsafeEntry},
		{name: "not asked for", entries: []tarEntry{dirE("data/"), fileE("etc/shadow", "x")}, wantErr: ErrUnsafeEntry},
		{name: "chain a->. then a/b->.. then b/x",
			entries: []tarEntry{dirE("data/"), symE("data/a", "."), symE("data/a/b", ".."), fileE("data/b/x", "x")},
			wantErr: ErrUnsafeEntry},
		{name: "hard link out", entries: []tarEntry{dirE("data/"), hardE("data/h", "/etc/passwd")}, wantErr: ErrUnsafeEntry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dest := filepath.Join(base, "dest")
			if err := os.Mkdir(dest, 0o755); err != nil {
				t.Fatal(err)
			}
			d := &fakeDisks{streams: map[string][]byte{"/data": archive(t, tc.entries...)}}
			res, err := PullArchive(context.Background(), d.read, dest, []PullItem{{Remote: "/data", Name: "out"}}, PullOptions{})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || res[0].Err == nil {
					t.Fatalf("PullArchive = %v, want %v", err, tc.wantErr)
				}
				if got := listTree(t, dest); len(got) != 0 {
					t.Errorf("a refused copy left %v", got)
				}
			} else if err != nil {
				t.Fatalf("PullArchive: %v", err)
			} else if got := listTree(t, dest); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("destination:\n got %v\nwant %v", got, tc.want)
			}
			if ents, _ := os.ReadDir(base); len(ents) != 1 {
				t.Errorf("written next to the destination: %d entries", len(ents))
			}
		})
	}
}

// TestPullArchive: results and accounting as Pull's; nested items in
// separate streams; a hostile stream of several items costs only the
// item it was about; a missing path is Missing; a path the source
// neither sent nor reported is an error; relative paths are refused.
func TestPullArchive(t *testing.T) {
	hostileA := archive(t, fileE("a.log", "A"), dirE("logs/"), fileE("etc/passwd", "x"))
	d := &fakeDisks{
		streams: map[string][]byte{
			"/a.log /logs /gone /silent": hostileA,
			"/a.log":                     archive(t, fileE("a.log", "A")),
			"/logs":                      archive(t, dirE("logs/"), fileE("logs/x", "XX"), fileE("logs/etc/passwd", "x")),
			"/gone":                      nil,
			"/silent":                    nil,
			"/logs/x":                    archive(t, fileE("logs/x", "XX")),
		},
		missing: map[string]bool{"/gone": true},
	}
	dest := t.TempDir()
	items := []PullItem{{Remote: "/a.log", Name: "_a.log"}, {Remote: "/logs", Name: "_logs"}, {Remote: "/gone", Name: "_gone"},
		{Remote: "/silent", Name: "_silent"}, {Remote: "/logs/x", Name: "_logs_x"}, {Remote: "rel", Name: "rel"}, {Remote: "/", Name: "_"}}
	res, err := PullArchive(context.Background(), d.read, dest, items, PullOptions{})
	if err == nil {
		t.Fatal("PullArchive: no error for the silent, relative and / paths")
	}
	type r struct {
		missing bool
		files   int
		bytes   int64
		err     string
	}
	want := []r{{files: 1, bytes: 1}, {files: 2, bytes: 3}, {missing: true}, {err: "nothing was sent for /silent"},
		{files: 1, bytes: 2}, {err: "not an absolute path"}, {err: "whole file system"}}
	for i, w := range want {
		g := res[i]
		if g.Missing != w.missing || g.Files != w.files || g.Bytes != w.bytes || (w.err == "") != (g.Err == nil) ||
			(g.Err != nil && !strings.Contains(g.Err.Error(), w.err)) {
			t.Errorf("%s: got missing=%v files=%d bytes=%d err=%v, want %+v", items[i].Remote, g.Missing, g.Files, g.Bytes, g.Err, w)
		}
	}
	if got, want := fmt.Sprint(listTree(t, dest)), fmt.Sprint(map[string]string{"_a.log": "A", "_logs": "/", "_logs/x": "XX",
		"_logs/etc": "/", "_logs/etc/passwd": "x", "_logs_x": "XX"}); got != want {
		t.Errorf("destination:\n got %v\nwant %v", got, want)
	}
	// One stream for the non-nested paths, then each alone after the
	// unsafe entry, then the nested one.
	if got, want := strings.Join(d.calls, "|"), "/a.log /logs /gone /silent|/a.log|/logs|/gone|/silent|/logs/x"; got != want {
		t.Errorf("calls %s, want %s", got, want)
	}
}

// TestPullArchiveSourceFails: a source that fails after part of a stream
// leaves nothing, and its error is the items'.
func TestPullArchiveSourceFails(t *testing.T) {
	boom := errors.New("appliance died")
	d := &fakeDisks{streams: map[string][]byte{"/data": archive(t, dirE("data/"), fileE("data/f", "x"))}, err: boom}
	dest := t.TempDir()
	res, err := PullArchive(context.Background(), d.read, dest, []PullItem{{Remote: "/data", Name: "out"}}, PullOptions{})
	if !errors.Is(err, boom) || !errors.Is(res[0].Err, boom) {
		t.Fatalf("PullArchive = %v, want %v", err, boom)
	}
	if got := listTree(t, dest); len(got) != 0 {
		t.Errorf("a failed copy left %v", got)
	}
}
