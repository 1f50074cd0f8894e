//go:build e2e

package e2e_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPluginsInstall installs the example markdown output plugin with
// `lago plugins install` into a scratch user plugin folder
// ($XDG_DATA_HOME/lago/plugins), sees it listed as usable and pinned, uses
// it (`lago -f markdown plugins` renders through it), sees a rewritten
// copy refused, and removes it. No VM is involved: the output plugin and
// `lago plugins` need no prefix.
func TestPluginsInstall(t *testing.T) {
	examples := os.Getenv("LAGO_E2E_EXAMPLES")
	if examples == "" {
		t.Fatal("LAGO_E2E_EXAMPLES (the folder `make examples` builds into) is not set: run through test/e2e/run.sh")
	}
	src := filepath.Join(examples, "lago-plugin-markdown")
	srcBytes, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("example plugin missing (run make examples): %v", err)
	}
	sum := sha256.Sum256(srcBytes)
	pin := hex.EncodeToString(sum[:])

	h := newHarness(t)
	data := filepath.Join(h.dir, "data")
	h.extraEnv = append(h.extraEnv, "XDG_DATA_HOME="+data, "XDG_CACHE_HOME="+filepath.Join(h.dir, "cache"))
	dir := filepath.Join(data, "lago", "plugins")
	installed := filepath.Join(dir, "lago-plugin-markdown")

	type listed struct {
		Name, Path, Status, Reason, Pin string
	}
	list := func() map[string]listed {
		t.Helper()
		var doc struct{ Plugins []listed }
		if err := json.Unmarshal([]byte(h.must("-f", "json", "plugins")), &doc); err != nil {
			t.Fatal(err)
		}
		out := map[string]listed{}
		for _, p := range doc.Plugins {
			out[p.Name] = p
		}
		return out
	}
	if _, ok := list()["markdown"]; ok {
		t.Fatalf("markdown listed before it is installed")
	}
	if r := h.lago("-f", "markdown", "plugins"); r.code == 0 {
		t.Fatalf("the markdown format works before the plugin is installed:\n%s", r)
	}

	out := h.must("plugins", "install", src)
	if !strings.Contains(out, installed) || !strings.Contains(out, pin[:12]) {
		t.Errorf("install output names neither %s nor the hash %s:\n%s", installed, pin[:12], out)
	}
	if st, err := os.Stat(installed); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("installed binary: %v, %v; want mode 0755", st, err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "pins.sha256")); string(got) != pin+"  lago-plugin-markdown\n" {
		t.Errorf("pins file = %q", got)
	}
	p := list()["markdown"]
	if p.Path != installed || p.Status != "ok" || p.Pin != pin {
		t.Fatalf("lago plugins lists %+v, want %s usable, pinned to %s", p, installed, pin)
	}
	table := h.must("plugins")
	if !strings.Contains(table, installed) || !strings.Contains(table, pin[:12]) {
		t.Errorf("lago plugins table lacks the folder or the short pin:\n%s", table)
	}
	md := h.must("-f", "markdown", "plugins")
	if !strings.Contains(md, "|") || !strings.Contains(md, installed) {
		t.Errorf("lago -f markdown plugins did not render a Markdown table through the plugin:\n%s", md)
	}

	// The same binary again is fine; another one under the name is not,
	// unless forced.
	h.must("plugins", "install", src)
	other := filepath.Join(h.dir, "other", "lago-plugin-markdown")
	if err := os.MkdirAll(filepath.Dir(other), 0o755); err != nil {
		t.Fatal(err)
	}
	// Bytes after the ELF image change the hash, not what runs.
	if err := os.WriteFile(other, append(append([]byte(nil), srcBytes...), "\nother build\n"...), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := h.lago("plugins", "install", other); r.code == 0 || !strings.Contains(r.stderr, "already installed") || !strings.Contains(r.stderr, "--force") {
		t.Errorf("installing another binary over it without --force:\n%s", r)
	}
	if got, _ := os.ReadFile(installed); string(got) != string(srcBytes) {
		t.Fatalf("a refused install changed the installed binary")
	}

	// Not a plugin: refused, nothing installed.
	notPlugin := filepath.Join(h.dir, "other", "lago-plugin-true")
	if err := os.WriteFile(notPlugin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := h.lago("plugins", "install", notPlugin); r.code == 0 || !strings.Contains(r.stderr, "is not a lago plugin") {
		t.Errorf("installing a script that is no plugin:\n%s", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "lago-plugin-true")); !os.IsNotExist(err) {
		t.Errorf("a refused install left a binary: %v", err)
	}

	// Tampered with: refused by the listing and unusable as a format.
	f, err := os.OpenFile(installed, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("tampered")
	f.Close()
	if p := list()["markdown"]; p.Status != "refused" || !strings.Contains(p.Reason, "does not match the pinned "+pin) {
		t.Errorf("lago plugins lists the tampered plugin as %+v, want refused for its pin", p)
	}
	if r := h.lago("-f", "markdown", "plugins"); r.code == 0 {
		t.Errorf("the tampered plugin still renders:\n%s", r)
	}

	// --force replaces it (with the other build), then remove.
	h.must("plugins", "install", "--force", other)
	if p := list()["markdown"]; p.Status != "ok" || p.Pin == pin || p.Pin == "" {
		t.Errorf("after install --force: %+v, want usable with the new pin", p)
	}
	out = h.must("plugins", "remove", "markdown")
	if !strings.Contains(out, installed) {
		t.Errorf("remove output does not name %s:\n%s", installed, out)
	}
	if _, err := os.Stat(installed); !os.IsNotExist(err) {
		t.Errorf("remove left the binary: %v", err)
	}
	if _, ok := list()["markdown"]; ok {
		t.Errorf("markdown still listed after remove")
	}
	if r := h.lago("plugins", "remove", "markdown"); r.code == 0 || !strings.Contains(r.stderr, "not installed in "+dir) {
		t.Errorf("removing it again:\n%s", r)
	}
}
