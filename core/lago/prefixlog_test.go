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
			path := filepath.Join(t.TempDir(), "logs", "lago.log")
			var exists bool
			l := newPrefixLog(func() (string, bool) { return path, exists })
			l.lastTry = l.lastTry.Add(-prefixLogRetry) // no waiting between attempts in the test
			exists = tt.appear == "first"
			l.Write([]byte("one\n"))
			exists = exists || tt.appear == "later"
			l.lastTry = l.lastTry.Add(-prefixLogRetry)
			l.Write([]byte("two\n"))
			exists = exists || tt.appear == "close"
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
