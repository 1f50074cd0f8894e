package lago

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPrefixLog: lines written before the prefix exists wait for it; a
// prefix that never appears drops them.
func TestPrefixLog(t *testing.T) {
	tests := []struct {
		name      string
		appear    string // "first" (before any line), "later" (between lines), "close" (before Close), "never"
		wantLines string
	}{
		{"prefix known at once", "first", "one\ntwo\n"},
		{"prefix made during the command", "later", "one\ntwo\n"},
		{"prefix made by the end", "close", "one\ntwo\n"},
		{"no prefix", "never", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := filepath.Join(t.TempDir(), "logs")
			path := filepath.Join(logs, "lago.log")
			var exists bool
			appear := func(when string) {
				if tt.appear == when {
					if err := os.Mkdir(logs, 0o755); err != nil {
						t.Fatal(err)
					}
					exists = true
				}
			}
			l := newPrefixLog(func() (string, bool) { return path, exists })
			l.lastTry = l.lastTry.Add(-prefixLogRetry) // no waiting between attempts in the test
			appear("first")
			l.Write([]byte("one\n"))
			appear("later")
			l.lastTry = l.lastTry.Add(-prefixLogRetry)
			l.Write([]byte("two\n"))
			appear("close")
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l.Write([]byte("after close\n"))
			b, _ := os.ReadFile(path)
			if string(b) != tt.wantLines {
				t.Fatalf("log holds %q, want %q", b, tt.wantLines)
			}
		})
	}
}

// TestPrefixLogDoesNotRecreateLogs: a prefix whose logs folder is gone
// (destroy under way) gets no log folder back from a late line.
func TestPrefixLogDoesNotRecreateLogs(t *testing.T) {
	logs := filepath.Join(t.TempDir(), "logs")
	l := newPrefixLog(func() (string, bool) { return filepath.Join(logs, "lago.log"), true })
	l.Write([]byte("late line\n"))
	l.Close()
	if _, err := os.Stat(logs); !os.IsNotExist(err) {
		t.Fatalf("logs folder came back: %v", err)
	}
}
