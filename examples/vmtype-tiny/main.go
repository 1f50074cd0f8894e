// Command lago-plugin-tiny is lago's example vm-type plugin: the VMs
// whose init-file domain says `vm-type: tiny` get the three things a vm
// type does (docs/plugins/vmtype.md), on lago's tiny busybox guest:
//
//   - at init (NormalizeSpec) /var/log joins the VM's artifacts (what
//     `lago collect` fetches) and metadata vmtype-tiny says so;
//   - after start (AfterStart) it waits until sshd listens on port 22, read
//     from /proc/net/tcp through lago's Host service (no tool in the guest
//     needed), and leaves /tmp/vmtype-tiny-ready in the guest;
//   - in status (StatusFields) the VM shows its kernel release.
//
// It imports only lago's sdk (and proto), as a third-party plugin would.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lago-go/lago/sdk"
)

// version is set at link time by the Makefile.
var version = "dev"

const (
	// Artifact is the path NormalizeSpec adds to a VM's artifacts.
	Artifact = "/var/log"
	// ReadyFile is what AfterStart leaves in the guest once port 22
	// listens.
	ReadyFile = "/tmp/vmtype-tiny-ready"
	// metaKey is the metadata NormalizeSpec sets.
	metaKey = "vmtype-tiny"
	// pollEvery is how often AfterStart looks at the guest's sockets.
	pollEvery = 200 * time.Millisecond
)

var info = sdk.ComponentInfo{
	Name:        "tiny",
	Kind:        sdk.KindVMType,
	Description: "example vm type for the tiny guest: collects /var/log, waits for port 22, shows the kernel",
}

func main() {
	sdk.Serve(sdk.Plugin{Name: "tiny", Version: version, Components: []sdk.Component{{Info: info, Impl: &vmType{}}}})
}

// vmType is the component. host is set once by Configure, before any
// hook, so the hooks (which may run for several VMs at once) only read it.
type vmType struct {
	host sdk.Host
}

// Configure keeps lago's Host service, through which the hooks reach the
// guest. The type has no settings.
func (t *vmType) Configure(_ context.Context, config map[string]string, host sdk.Host) error {
	for k := range config {
		return sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: "unknown setting " + k, Attribute: k}}
	}
	t.host = host
	return nil
}

// NormalizeSpec adds Artifact to the VM's artifacts (once) and marks its
// metadata. The spec is handled as a generic JSON object so that fields
// this plugin does not know survive unchanged.
func (t *vmType) NormalizeSpec(_ context.Context, vm string, specJSON []byte) ([]byte, error) {
	var s map[string]any
	if err := json.Unmarshal(specJSON, &s); err != nil {
		return nil, fmt.Errorf("spec of vm %s: %w", vm, err)
	}
	var arts []string
	if raw, ok := s["artifacts"].([]any); ok {
		for _, a := range raw {
			if str, ok := a.(string); ok {
				arts = append(arts, str)
			}
		}
	}
	if !slices.Contains(arts, Artifact) {
		arts = append(arts, Artifact)
	}
	s["artifacts"] = arts
	md, _ := s["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
	}
	md[metaKey] = "normalized"
	s["metadata"] = md
	return json.Marshal(s)
}

// AfterStart waits, within ctx (lago's start deadline), until something
// listens on TCP port 22 in the guest, then leaves ReadyFile there.
func (t *vmType) AfterStart(ctx context.Context, vm string) error {
	if t.host == nil {
		return errors.New("lago offers no host service: cannot reach the guest")
	}
	for {
		ok, err := t.listens(ctx, vm, 22)
		if err != nil {
			return err
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("vm %s: nothing listens on port 22: %w", vm, ctx.Err())
		case <-time.After(pollEvery):
		}
	}
	var stderr bytes.Buffer
	code, err := t.host.Exec(ctx, vm, []string{"touch", ReadyFile}, nil, nil, &stderr)
	if err != nil {
		return fmt.Errorf("vm %s: touch %s: %w", vm, ReadyFile, err)
	}
	if code != 0 {
		return fmt.Errorf("vm %s: touch %s: exit %d: %s", vm, ReadyFile, code, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// listens reports whether a socket listens on port in the guest, from
// /proc/net/tcp and tcp6 (whichever exist).
func (t *vmType) listens(ctx context.Context, vm string, port int) (bool, error) {
	found := false
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		var out bytes.Buffer
		code, err := t.host.Exec(ctx, vm, []string{"cat", f}, nil, &out, nil)
		if err != nil {
			return false, fmt.Errorf("vm %s: read %s: %w", vm, f, err)
		}
		if code == 0 && listening(out.Bytes(), port) {
			found = true
		}
	}
	return found, nil
}

// listening reports whether a /proc/net/tcp table holds a socket in
// state LISTEN (0A) on the local port.
func listening(table []byte, port int) bool {
	want := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(bytes.NewReader(table))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local_address rem_address st ...
		if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "0A" {
			return true
		}
	}
	return false
}

// StatusFields shows the guest's kernel release. A VM the guest command
// fails on answers no fields: status must not fail for it.
func (t *vmType) StatusFields(ctx context.Context, vm string) (map[string]string, error) {
	if t.host == nil {
		return map[string]string{}, nil
	}
	var out bytes.Buffer
	code, err := t.host.Exec(ctx, vm, []string{"uname", "-r"}, nil, &out, nil)
	if err != nil || code != 0 {
		return map[string]string{}, nil
	}
	return map[string]string{"kernel": strings.TrimSpace(out.String())}, nil
}
