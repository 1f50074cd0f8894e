package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lago-go/lago/sdk/plugintest"
)

func TestConformance(t *testing.T) {
	plugintest.VMTypeConformance(t, &vmType{})
}

// TestNormalizeSpec: /var/log is added once, other fields survive.
func TestNormalizeSpec(t *testing.T) {
	tests := []struct {
		name, in string
		wantArts []string
	}{
		{"none", `{"name":"vm0","memory":512}`, []string{"/var/log"}},
		{"kept", `{"name":"vm0","artifacts":["/etc"],"x-unknown":1}`, []string{"/etc", "/var/log"}},
		{"once", `{"name":"vm0","artifacts":["/var/log"]}`, []string{"/var/log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := (&vmType{}).NormalizeSpec(context.Background(), "vm0", []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Name      string
				Artifacts []string
				Metadata  map[string]any
				XUnknown  *int `json:"x-unknown"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if got.Name != "vm0" || !slices.Equal(got.Artifacts, tt.wantArts) || got.Metadata[metaKey] != "normalized" {
				t.Errorf("normalized %s", out)
			}
			if strings.Contains(tt.in, "x-unknown") && got.XUnknown == nil {
				t.Errorf("unknown field lost: %s", out)
			}
		})
	}
}

const tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

// TestAfterStartWaitsForPort22: AfterStart polls until port 22 listens,
// then touches the ready file; it gives up when ctx ends.
func TestAfterStartWaitsForPort22(t *testing.T) {
	tests := []struct {
		name      string
		listensAt int32 // poll from which port 22 listens; -1 never
		wantErr   bool
	}{
		{"at once", 0, false},
		{"later", 3, false},
		{"never", -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var polls atomic.Int32
			h := &plugintest.FakeHost{ExecFunc: func(vm string, argv []string, _ []byte, stdout, _ io.Writer) (int, error) {
				switch {
				case slices.Equal(argv, []string{"cat", "/proc/net/tcp"}):
					n := polls.Add(1) - 1
					fmt.Fprint(stdout, tcpHeader)
					if tt.listensAt >= 0 && n >= tt.listensAt {
						fmt.Fprint(stdout, "   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n")
					} else {
						fmt.Fprint(stdout, "   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n")
					}
					return 0, nil
				case argv[0] == "cat":
					return 1, nil // no tcp6
				case argv[0] == "touch":
					return 0, nil
				}
				return 127, nil
			}}
			v := &vmType{}
			if err := v.Configure(context.Background(), nil, h); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err := v.AfterStart(ctx, "vm0")
			if (err != nil) != tt.wantErr {
				t.Fatalf("AfterStart = %v, want error %v", err, tt.wantErr)
			}
			touched := false
			for _, c := range h.Calls() {
				if slices.Equal(c.Argv, []string{"touch", ReadyFile}) {
					touched = true
				}
			}
			if touched == tt.wantErr {
				t.Errorf("ready file touched = %v, want %v", touched, !tt.wantErr)
			}
		})
	}
}

func TestStatusFields(t *testing.T) {
	h := &plugintest.FakeHost{ExecFunc: func(_ string, argv []string, _ []byte, stdout, _ io.Writer) (int, error) {
		fmt.Fprintln(stdout, "6.1.0-tiny")
		return 0, nil
	}}
	v := &vmType{}
	_ = v.Configure(context.Background(), nil, h)
	f, err := v.StatusFields(context.Background(), "vm0")
	if err != nil || f["kernel"] != "6.1.0-tiny" {
		t.Errorf("StatusFields = %v, %v", f, err)
	}
}
