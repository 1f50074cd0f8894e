package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"github.com/lago-go/lago/sdk"
	"github.com/lago-go/lago/sdk/plugintest"
)

// newKey writes a fresh ed25519 private key in OpenSSH format to dir and
// returns its path and public key.
func newKey(t *testing.T, dir, name string) (string, ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return path, sp
}

// server is an ssh server on 127.0.0.1 that accepts one user key and opens
// no channel: enough for a login probe.
type server struct {
	addr    string
	hostKey ssh.PublicKey
}

func startServer(t *testing.T, authorized ssh.PublicKey) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, ln, authorized)
}

// serve serves ssh on ln until the test ends.
func serve(t *testing.T, ln net.Listener, authorized ssh.PublicKey) *server {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if bytes.Equal(k.Marshal(), authorized.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("key not authorized")
	}}
	cfg.AddHostKey(signer)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					c.Close()
					return
				}
				go ssh.DiscardRequests(reqs)
				for ch := range chans {
					_ = ch.Reject(ssh.Prohibited, "no channels here")
				}
				sc.Close()
			}()
		}
	}()
	return &server{addr: ln.Addr().String(), hostKey: signer.PublicKey()}
}

// freePort returns a port on 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// configured returns a provider configured with config, failing the test
// when Configure fails (warnings alone are a success).
func configured(t *testing.T, config map[string]string) *provider {
	t.Helper()
	p := &provider{}
	var d sdk.Diagnostics
	if err := p.Configure(context.Background(), config, nil); err != nil && (!errors.As(err, &d) || d.HasErrors()) {
		t.Fatalf("Configure(%v): %v", config, err)
	}
	return p
}

// TestConformance runs the sdk's provider suite through the real gRPC glue,
// against an address where nothing answers.
func TestConformance(t *testing.T) {
	key, _ := newKey(t, t.TempDir(), "id")
	plugintest.ProviderConformance(t, &provider{}, plugintest.WithInfo(info),
		plugintest.WithConfig(map[string]string{"host": "127.0.0.1", "port": freePort(t), "key": key, "timeout": "2s"}))
}

func TestConfigure(t *testing.T) {
	dir := t.TempDir()
	key, _ := newKey(t, dir, "id")
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	notAKey := filepath.Join(dir, "not-a-key")
	if err := os.WriteFile(notAKey, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		config map[string]string
		// wantAttrs are the attributes of the expected diagnostics: errors,
		// or the warning on known_hosts alone (a success).
		wantAttrs []string
	}{
		{name: "key only: no host key check is a warning", config: map[string]string{"key": key}, wantAttrs: []string{"known_hosts"}},
		{name: "everything", config: map[string]string{"host": "192.0.2.7", "port": "2222", "user": "lago", "key": key,
			"known_hosts": known, "timeout": "1s", "start_command": "true", "stop_command": "true"}},
		{name: "no key", config: map[string]string{"host": "192.0.2.7"}, wantAttrs: []string{"key", "known_hosts"}},
		{name: "blank key", config: map[string]string{"key": "  ", "known_hosts": known}, wantAttrs: []string{"key"}},
		{name: "missing key file", config: map[string]string{"key": filepath.Join(dir, "nope"), "known_hosts": known}, wantAttrs: []string{"key"}},
		{name: "not a key", config: map[string]string{"key": notAKey, "known_hosts": known}, wantAttrs: []string{"key"}},
		{name: "unknown setting", config: map[string]string{"key": key, "hots": "x", "known_hosts": known}, wantAttrs: []string{"hots"}},
		{name: "bad port", config: map[string]string{"key": key, "port": "ssh", "known_hosts": known}, wantAttrs: []string{"port"}},
		{name: "port out of range", config: map[string]string{"key": key, "port": "65536", "known_hosts": known}, wantAttrs: []string{"port"}},
		{name: "bad timeout", config: map[string]string{"key": key, "timeout": "5", "known_hosts": known}, wantAttrs: []string{"timeout"}},
		{name: "missing known_hosts", config: map[string]string{"key": key, "known_hosts": filepath.Join(dir, "nope")}, wantAttrs: []string{"known_hosts"}},
		{name: "all errors at once", config: map[string]string{"port": "0", "timeout": "-1s", "zz": "1"}, wantAttrs: []string{"zz", "port", "timeout", "key", "known_hosts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &provider{}
			err := p.Configure(context.Background(), tt.config, nil)
			var d sdk.Diagnostics
			if len(tt.wantAttrs) == 0 {
				if err != nil {
					t.Fatalf("Configure = %v, want nil", err)
				}
				return
			}
			if !errors.As(err, &d) {
				t.Fatalf("Configure = %v, want diagnostics for %v", err, tt.wantAttrs)
			}
			var got []string
			for _, x := range d {
				got = append(got, x.Attribute)
			}
			if strings.Join(got, ",") != strings.Join(tt.wantAttrs, ",") {
				t.Fatalf("diagnostics on %v, want %v: %v", got, tt.wantAttrs, err)
			}
			if configuredNow := p.cfg != nil; configuredNow == d.HasErrors() {
				t.Fatalf("configured = %v with diagnostics %v: a failed Configure must keep no settings, a warned one must", configuredNow, err)
			}
		})
	}
}

// TestWarningOverTheWire: the known_hosts warning reaches lago as a warning
// of a successful Configure, not as an error.
func TestWarningOverTheWire(t *testing.T) {
	key, _ := newKey(t, t.TempDir(), "id")
	client := plugintest.Connect(t, plugintest.Single(sdk.KindProvider, info, &provider{}))
	var warned []sdk.Diagnostic
	err := client.Configure(context.Background(), info.Name, map[string]string{"key": key}, nil,
		sdk.WithWarningHandler(func(d sdk.Diagnostic) { warned = append(warned, d) }))
	if err != nil || len(warned) != 1 || warned[0].Attribute != "known_hosts" {
		t.Fatalf("Configure = %v, warnings %+v; want success with the known_hosts warning", err, warned)
	}
}

func TestVMState(t *testing.T) {
	dir := t.TempDir()
	key, pub := newKey(t, dir, "id")
	otherKey, _ := newKey(t, dir, "other")
	srv := startServer(t, pub)
	host, port := hostPort(t, srv.addr)
	goodKnown := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(goodKnown, []byte(knownhosts.Line([]string{knownhosts.Normalize(srv.addr)}, srv.hostKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stranger := newKey(t, dir, "stranger")
	badKnown := filepath.Join(dir, "known_hosts.bad")
	if err := os.WriteFile(badKnown, []byte(knownhosts.Line([]string{knownhosts.Normalize(srv.addr)}, stranger)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		config  map[string]string
		vm      *providerv1.VM
		want    string
		wantErr string
	}{
		{name: "accepts the key", config: map[string]string{"host": host, "port": port, "key": key}, want: "running"},
		{name: "nothing answers", config: map[string]string{"host": host, "port": freePort(t), "key": key}, want: "down"},
		{name: "refuses the key", config: map[string]string{"host": host, "port": port, "key": otherKey}, wantErr: "answers, but ssh as root fails"},
		{name: "known host key", config: map[string]string{"host": host, "port": port, "key": key, "known_hosts": goodKnown}, want: "running"},
		{name: "changed host key", config: map[string]string{"host": host, "port": port, "key": key, "known_hosts": badKnown}, wantErr: "key mismatch"},
		{name: "metadata wins over host", config: map[string]string{"host": "192.0.2.1", "port": port, "key": key},
			vm: &providerv1.VM{Name: "m", Metadata: map[string]string{metaHost: host}}, want: "running"},
		{name: "first NIC address without host", config: map[string]string{"port": port, "key": key},
			vm: &providerv1.VM{Name: "m", Nics: []*providerv1.Nic{{Net: "bridge"}, {Net: "lab", Ip: host}}}, want: "running"},
		{name: "no address", config: map[string]string{"port": port, "key": key}, wantErr: "has no address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := configured(t, tt.config)
			vm := tt.vm
			if vm == nil {
				vm = &providerv1.VM{Name: "m"}
			}
			got, err := p.VMState(context.Background(), nil, vm)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("VMState = %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("VMState = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestProbeTimeout: a port that accepts but never speaks ssh is given up
// after the timeout setting, as an error (something answers), not a hang.
func TestProbeTimeout(t *testing.T) {
	key, _ := newKey(t, t.TempDir(), "id")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	host, port := hostPort(t, ln.Addr().String())
	p := configured(t, map[string]string{"host": host, "port": port, "key": key, "timeout": "300ms"})
	begin := time.Now()
	st, err := p.VMState(context.Background(), nil, &providerv1.VM{Name: "m"})
	if err == nil || time.Since(begin) > 5*time.Second {
		t.Fatalf("VMState = %q, %v after %s; want an error after ~300ms", st, err, time.Since(begin))
	}
}

func TestStartVM(t *testing.T) {
	dir := t.TempDir()
	key, pub := newKey(t, dir, "id")
	port := freePort(t)
	marker := filepath.Join(dir, "started")

	t.Run("without start_command a machine that does not answer is an error", func(t *testing.T) {
		p := configured(t, map[string]string{"host": "127.0.0.1", "port": port, "key": key})
		err := p.StartVM(context.Background(), nil, &providerv1.VM{Name: "m"})
		if err == nil || !strings.Contains(err.Error(), "start the machine yourself") {
			t.Fatalf("StartVM = %v", err)
		}
	})
	t.Run("without start_command a machine that answers is started", func(t *testing.T) {
		srv := startServer(t, pub)
		host, port := hostPort(t, srv.addr)
		p := configured(t, map[string]string{"host": host, "port": port, "key": key})
		if err := p.StartVM(context.Background(), nil, &providerv1.VM{Name: "m"}); err != nil {
			t.Fatalf("StartVM = %v", err)
		}
	})
	t.Run("start_command runs, then the machine is waited for", func(t *testing.T) {
		// The "machine" comes up on a free port once start_command ran.
		port := freePort(t)
		up := make(chan error, 1)
		go func() {
			for {
				if _, err := os.Stat(marker); err == nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
			if err == nil {
				serve(t, ln, pub)
			}
			up <- err
		}()
		p := configured(t, map[string]string{"host": "127.0.0.1", "port": port, "key": key, "start_command": "touch " + marker})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := p.StartVM(ctx, nil, &providerv1.VM{Name: "m"}); err != nil {
			t.Fatalf("StartVM = %v", err)
		}
		if err := <-up; err != nil {
			t.Fatalf("the fake machine did not come up: %v", err)
		}
	})
	t.Run("a failing start_command is an error naming it", func(t *testing.T) {
		p := configured(t, map[string]string{"host": "127.0.0.1", "port": port, "key": key, "start_command": "false --flag"})
		err := p.StartVM(context.Background(), nil, &providerv1.VM{Name: "m"})
		if err == nil || !strings.Contains(err.Error(), "start_command false --flag") {
			t.Fatalf("StartVM = %v", err)
		}
	})
	t.Run("the wait ends with ctx", func(t *testing.T) {
		p := configured(t, map[string]string{"host": "127.0.0.1", "port": port, "key": key, "start_command": "true"})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := p.StartVM(ctx, nil, &providerv1.VM{Name: "m"})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("StartVM = %v, want a deadline error", err)
		}
	})
}

func TestStopVM(t *testing.T) {
	dir := t.TempDir()
	key, pub := newKey(t, dir, "id")
	srv := startServer(t, pub)
	host, port := hostPort(t, srv.addr)
	marker := filepath.Join(dir, "stopped")
	vm := &providerv1.VM{Name: "m"}

	p := configured(t, map[string]string{"host": host, "port": port, "key": key})
	if err := p.StopVM(context.Background(), nil, vm); err != nil {
		t.Fatalf("StopVM without stop_command = %v", err)
	}
	if st, err := p.VMState(context.Background(), nil, vm); err != nil || st != "running" {
		t.Fatalf("after a stop without stop_command the machine is %q, %v; want it left running", st, err)
	}

	p = configured(t, map[string]string{"host": host, "port": port, "key": key, "stop_command": "touch " + marker})
	if err := p.StopVM(context.Background(), nil, vm); err != nil {
		t.Fatalf("StopVM = %v", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("stop_command did not run: %v", err)
	}
}

func TestValidateSpec(t *testing.T) {
	key, _ := newKey(t, t.TempDir(), "id")
	tests := []struct {
		name      string
		config    map[string]string
		vms       []*providerv1.VM
		wantAttrs []string
	}{
		{name: "machine with a host", config: map[string]string{"host": "192.0.2.1", "key": key}, vms: []*providerv1.VM{{Name: "m"}}},
		{name: "machine with a NIC ip", config: map[string]string{"key": key},
			vms: []*providerv1.VM{{Name: "m", Nics: []*providerv1.Nic{{Net: "lab", Ip: "192.168.200.2"}}}}},
		{name: "disks", config: map[string]string{"host": "192.0.2.1", "key": key},
			vms: []*providerv1.VM{{Name: "m", Disks: []*providerv1.Disk{{Name: "root"}}}}, wantAttrs: []string{"domains.m.disks"}},
		{name: "no address", config: map[string]string{"key": key}, vms: []*providerv1.VM{{Name: "a"}, {Name: "b", Metadata: map[string]string{metaHost: "192.0.2.9"}}},
			wantAttrs: []string{"domains.a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := configured(t, tt.config).ValidateSpec(context.Background(), nil, nil, tt.vms)
			var d sdk.Diagnostics
			if len(tt.wantAttrs) == 0 {
				if err != nil {
					t.Fatalf("ValidateSpec = %v", err)
				}
				return
			}
			if !errors.As(err, &d) {
				t.Fatalf("ValidateSpec = %v, want diagnostics", err)
			}
			var got []string
			for _, x := range d {
				got = append(got, x.Attribute)
			}
			if strings.Join(got, ",") != strings.Join(tt.wantAttrs, ",") {
				t.Fatalf("diagnostics on %v, want %v: %v", got, tt.wantAttrs, err)
			}
		})
	}
}

// TestNothingOwned: the provider creates nothing, so destroy and orphan
// cleanup find and remove nothing, and a machine's nets need no work.
func TestNothingOwned(t *testing.T) {
	key, _ := newKey(t, t.TempDir(), "id")
	p := configured(t, map[string]string{"host": "192.0.2.1", "key": key})
	ctx := context.Background()
	env := &providerv1.EnvRef{PrefixPath: "/x", Uuid: "u"}
	if res, err := p.ListOwned(ctx); err != nil || len(res) != 0 {
		t.Fatalf("ListOwned = %v, %v", res, err)
	}
	if err := p.RemoveOwned(ctx, env, nil); err != nil {
		t.Fatalf("RemoveOwned = %v", err)
	}
	n := &providerv1.Network{Name: "lab"}
	if err := p.StartNetwork(ctx, env, n); err != nil {
		t.Fatal(err)
	}
	if st, err := p.NetworkState(ctx, env, n); err != nil || st != "down" {
		t.Fatalf("NetworkState = %q, %v", st, err)
	}
	if _, err := p.ListSnapshots(ctx, env, &providerv1.VM{Name: "m"}); !errors.Is(err, sdk.ErrNotImplemented) {
		t.Fatalf("ListSnapshots = %v, want not implemented", err)
	}
}
