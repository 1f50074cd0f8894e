package cli

import (
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/lago-go/lago/core/errs"
)

func TestNormalizeArgs(t *testing.T) {
	a := newApp(Backend{}, strings.NewReader(""), io.Discard, io.Discard, nil)
	tests := []struct {
		name     string
		in       []string
		want     []string
		wantPath []string
		wantErr  string
	}{
		{"exact", []string{"--workdir-path", "/w", "status"}, []string{"--workdir-path", "/w", "status"}, []string{"status"}, ""},
		{"prefix with value", []string{"--workdir", "/w", "status"}, []string{"--workdir-path", "/w", "status"}, []string{"status"}, ""},
		{"prefix with =", []string{"--work=/w", "status"}, []string{"--workdir-path=/w", "status"}, []string{"status"}, ""},
		{"value looking like a verb", []string{"--prefix-n", "start", "stop"}, []string{"--prefix-name", "start", "stop"}, []string{"stop"}, ""},
		{"short with value", []string{"-l", "debug", "start", "--time", "1m"}, []string{"-l", "debug", "start", "--timeout", "1m"}, []string{"start"}, ""},
		{"bool does not eat the verb", []string{"--ignore", "status"}, []string{"--ignore-warnings", "status"}, []string{"status"}, ""},
		{"verb flag prefix", []string{"destroy", "--all", "-y"}, []string{"destroy", "--all-prefixes", "-y"}, []string{"destroy"}, ""},
		{"global options only before the verb", []string{"status", "--out", "json"}, []string{"status", "--out", "json"}, []string{"status"}, ""},
		{"same letter before and after the verb", []string{"-l", "debug", "snapshot", "-l", "--li"}, []string{"-l", "debug", "snapshot", "-l", "--list"}, []string{"snapshot"}, ""},
		{"version prefix", []string{"--vers"}, []string{"--version"}, nil, ""},
		{"help prefix", []string{"start", "--he"}, []string{"start", "--help"}, []string{"start"}, ""},
		{"unknown kept", []string{"--bogus", "status"}, []string{"--bogus", "status"}, []string{"status"}, ""},
		{"double dash stops", []string{"shell", "vm", "--", "--ssh"}, []string{"shell", "vm", "--", "--ssh"}, []string{"shell"}, ""},
		{"shell stops at first positional", []string{"--ssh-u", "u", "shell", "vm", "ls", "--ssh"}, []string{"--ssh-user", "u", "shell", "vm", "ls", "--ssh"}, []string{"shell"}, ""},
		{"sub-verbs", []string{"completion", "bash", "--no-desc"}, []string{"completion", "bash", "--no-descriptions"}, []string{"completion", "bash"}, ""},
		{"unknown verb left alone", []string{"frob", "--ssh"}, []string{"frob", "--ssh"}, []string{"frob"}, ""},
		{"ambiguous", []string{"--ssh", "x", "status"}, nil, nil, "ambiguous option --ssh could match --ssh-password, --ssh-timeout, --ssh-tries, --ssh-user"},
		{"ambiguous verb flag", []string{"export", "--co"}, nil, nil, "ambiguous option --co could match --collect-only, --compress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, path, err := normalizeArgs(a.root, tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errs.IsUser(err) {
					t.Fatalf("err = %v, want Lago error %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("args = %q, want %q", got, tt.want)
			}
			if !reflect.DeepEqual(path, tt.wantPath) {
				t.Errorf("path = %q, want %q", path, tt.wantPath)
			}
		})
	}
}
