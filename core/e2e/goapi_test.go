//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lago-go/lago/core/config"
	"github.com/lago-go/lago/core/lago"
)

// apiClient is a Go API client with the harness's configuration (its
// lago.conf: scratch leases and store, TCG provider).
func (h *harness) apiClient() *lago.Client {
	h.t.Helper()
	cfg, err := config.Load(config.Options{Required: []string{h.conf}, Environ: os.Environ(), Lenient: true})
	if err != nil {
		h.t.Fatalf("config: %v", err)
	}
	c, err := lago.New(lago.Options{Config: cfg, PluginSearchPath: []string{h.env.PluginPath}})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// TestGoAPI drives a 2-VM environment through the public Go API only, as
// a test suite would: init from bytes, start, typed status, commands
// (argv, command line, script, concurrent on both VMs), snapshots, typed
// errors, stop, load and destroy; then checks nothing is left.
func TestGoAPI(t *testing.T) {
	h := newHarness(t)
	c := h.apiClient()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	initFile := "domains:\n" + vmBlock("vm0", "net: lago") + vmBlock("vm1", "net: lago") + oneNet
	workdir := filepath.Join(h.dir, ".lago")
	io := lago.InitOptions{
		InitFile: filepath.Join(h.dir, "LagoInitFile"), InitFileData: []byte(initFile),
		Workdir: workdir, TemplateRepoPath: h.env.TemplateRepo, SkipBootstrap: true,
	}
	env, err := c.Init(ctx, io)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	if id, err := env.UUID(); err == nil {
		*h.uuids = append(*h.uuids, id)
	}
	if _, err := c.Init(ctx, io); !errors.Is(err, lago.ErrPrefixExists) {
		t.Fatalf("second Init: err = %v, want ErrPrefixExists", err)
	}
	if err := env.Start(ctx, lago.StartOptions{}); err != nil {
		t.Fatalf("Start: %v", err)
	}

	st, err := env.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if len(st.VMs) != 2 || len(st.Networks) != 1 {
		t.Fatalf("status has %d VMs and %d nets, want 2 and 1", len(st.VMs), len(st.Networks))
	}
	for _, v := range st.VMs {
		if v.State != "running" || v.Address == "" || v.Addresses()["lago"] != v.Address || v.RootPassword == "" {
			t.Errorf("vm %s: state %q address %q addresses %v root password %q", v.Name, v.State, v.Address, v.Addresses(), v.RootPassword)
		}
	}
	if n := st.Networks[0]; n.State != "up" || !n.Management || n.Subnet == "" || n.Hosts["vm0"] != st.VM("vm0").Address {
		t.Errorf("network: %+v", n)
	}
	doc, err := env.StatusDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pd, ok := doc["Prefix"].(map[string]any); !ok || pd["VMs"] == nil {
		t.Errorf("status document has no Prefix.VMs: %v", doc)
	}

	vm0, err := env.VM("vm0")
	if err != nil {
		t.Fatal(err)
	}
	r, err := vm0.Run(ctx, "echo", "a  b", "$HOME")
	if err != nil || r.ExitCode != 0 || string(r.Stdout) != "a  b $HOME\n" {
		t.Fatalf("Run: %+v %v", r, err)
	}
	if r, err := vm0.RunShell(ctx, "echo out; echo err >&2; exit 7"); err != nil || r.ExitCode != 7 || string(r.Stdout) != "out\n" || string(r.Stderr) != "err\n" {
		t.Fatalf("RunShell: %+v %v", r, err)
	}
	var ee *lago.ExitError
	if _, err := vm0.Output(ctx, "false"); !errors.As(err, &ee) || ee.Code != 1 {
		t.Fatalf("Output(false): %v, want an ExitError with code 1", err)
	}
	script := filepath.Join(h.dir, "s.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$# $1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := vm0.RunScript(ctx, script, "x y"); err != nil || string(r.Stdout) != "1 x y\n" {
		t.Fatalf("RunScript: %+v %v", r, err)
	}
	var stdin bytes.Buffer
	stdin.WriteString("from stdin\n")
	var out bytes.Buffer
	if code, err := vm0.Exec(ctx, []string{"cat"}, &stdin, &out, nil); err != nil || code != 0 || out.String() != "from stdin\n" {
		t.Fatalf("Exec cat: %d %v %q", code, err, out.String())
	}

	// Concurrent commands on both VMs, several per VM.
	var wg sync.WaitGroup
	for _, name := range []string{"vm0", "vm1"} {
		vm, err := env.VM(name)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := vm.Output(ctx, "hostname")
				if err != nil || strings.TrimSpace(string(out)) == "" {
					t.Errorf("%s hostname: %q %v", vm.Name, out, err)
				}
			}()
		}
	}
	wg.Wait()

	// Copies: a folder in and back out, and a typed error for a path that
	// does not exist.
	tree := filepath.Join(h.dir, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "sub", "f.txt"), []byte("payload\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := vm0.CopyTo(ctx, tree, "/root/tree"); err != nil {
		t.Fatalf("CopyTo: %v", err)
	}
	if out, err := vm0.Output(ctx, "cat", "/root/tree/sub/f.txt"); err != nil || string(out) != "payload\n" {
		t.Fatalf("copied file in the VM: %q %v", out, err)
	}
	back := filepath.Join(h.dir, "back")
	if err := vm0.CopyFrom(ctx, "/root/tree", back); err != nil {
		t.Fatalf("CopyFrom: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(back, "sub", "f.txt")); err != nil || string(b) != "payload\n" {
		t.Fatalf("copied back: %q %v", b, err)
	}
	if err := vm0.CopyFrom(ctx, "/no/such/file", filepath.Join(h.dir, "x")); err == nil || !strings.Contains(err.Error(), "/no/such/file") || !strings.Contains(err.Error(), "vm0") {
		t.Fatalf("CopyFrom of a missing path: %v, want an error naming vm0 and the path", err)
	}

	// The inventory: every VM by its address, the prefix's key.
	inv, err := env.AnsibleInventory(ctx)
	if err != nil {
		t.Fatalf("AnsibleInventory: %v", err)
	}
	for _, v := range st.VMs {
		if !strings.Contains(inv, v.Name+" ansible_host="+v.Address+" ") {
			t.Errorf("inventory lacks %s at %s:\n%s", v.Name, v.Address, inv)
		}
	}

	// Collect: each VM's artifacts (none declared: the folder per VM).
	res, err := env.Collect(ctx, filepath.Join(h.dir, "collected"), lago.CollectOptions{})
	if err != nil || len(res) != 2 {
		t.Fatalf("Collect: %v %v", res, err)
	}

	// Load sees the same environment, by workdir and by prefix.
	for _, p := range []string{workdir, env.Path()} {
		e2, err := c.Load(ctx, p)
		if err != nil || e2.Path() != env.Path() {
			t.Fatalf("Load(%s) = %v, %v; want %s", p, e2, err, env.Path())
		}
	}
	if _, err := c.Load(ctx, filepath.Join(h.dir, "nothing-here")); !errors.Is(err, lago.ErrNoPrefix) {
		t.Fatalf("Load of a missing prefix: %v, want ErrNoPrefix", err)
	}

	// Snapshots: a file written after the snapshot is gone after revert.
	if err := env.Snapshot(ctx, "clean"); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	snaps, err := env.Snapshots(ctx)
	if err != nil || len(snaps["vm0"]) != 1 || snaps["vm0"][0] != "clean" {
		t.Fatalf("Snapshots: %v %v", snaps, err)
	}
	if _, err := vm0.Output(ctx, "touch", "/root/after"); err != nil {
		t.Fatal(err)
	}
	if err := env.Revert(ctx, "clean"); err != nil {
		t.Fatalf("Revert: %v", err)
	}
	if err := vm0.WaitSSH(ctx); err != nil {
		t.Fatalf("WaitSSH after revert: %v", err)
	}
	if r, err := vm0.Run(ctx, "test", "-e", "/root/after"); err != nil || r.ExitCode != 1 {
		t.Fatalf("after revert: %+v %v (want the file gone)", r, err)
	}

	// A stopped VM: a typed error naming it.
	if err := env.Stop(ctx, "vm1"); err != nil {
		t.Fatalf("Stop vm1: %v", err)
	}
	vm1, _ := env.VM("vm1")
	_, err = vm1.Run(ctx, "true")
	var nr *lago.NotRunningError
	if !errors.Is(err, lago.ErrVMNotRunning) || !errors.As(err, &nr) || nr.VM != "vm1" {
		t.Fatalf("Run on stopped vm1: %v, want ErrVMNotRunning for vm1", err)
	}
	if st, err := vm1.Refresh(ctx); err != nil || st == "running" {
		t.Fatalf("Refresh: %q %v", st, err)
	}
	if _, err := env.VM("nope"); !errors.Is(err, lago.ErrNoSuchVM) {
		t.Fatalf("VM(nope): %v", err)
	}

	if err := env.Destroy(ctx); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if _, err := os.Stat(env.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("prefix still there after Destroy: %v", err)
	}
	h.assertNothingLeft()
}
