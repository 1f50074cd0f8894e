//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xssh "golang.org/x/crypto/ssh"

	"github.com/lago-go/lago/core/ssh"
)

// TestTemplateBootsToSSH checks the tiny template itself, straight through
// libvirt and core/ssh without lago: it boots from its own disk under TCG,
// takes Lago's default root password and injected keys, gets its name and
// domain from DHCP, runs `bash -s` scripts, copies files and powers off on
// the ACPI button. Its boot-to-ssh time is the floor lago's start can reach.
func TestTemplateBootsToSSH(t *testing.T) {
	h := newHarness(t)
	img := filepath.Join(filepath.Dir(h.env.TemplateRepo), "tiny.qcow2")
	disk := filepath.Join(h.dir, "tpl.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", img, disk).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	tag := fmt.Sprintf("e2etpl%d", os.Getpid()%100000)
	const (
		subnet = "10.254.78"
		mac    = "54:52:0a:fe:4e:0a"
	)
	ip := subnet + ".10"
	owner := fmt.Sprintf(`<metadata><e2e:owner xmlns:e2e="https://lago-go.dev/xmlns/e2e/1" dir=%q/></metadata>`, h.dir)
	netXML := fmt.Sprintf(`<network>
  <name>%[1]s</name>%[2]s
  <forward mode='nat'/>
  <bridge name='%[1]s' stp='off' delay='0'/>
  <domain name='lago.local' localOnly='yes'/>
  <dns><host ip='%[3]s.11'><hostname>other</hostname></host></dns>
  <ip address='%[3]s.1' netmask='255.255.255.0'>
    <dhcp><range start='%[3]s.100' end='%[3]s.200'/><host mac='%[4]s' name='tpl' ip='%[5]s'/></dhcp>
  </ip>
</network>`, tag, owner, subnet, mac, ip)
	domXML := fmt.Sprintf(`<domain type='qemu'>
  <name>%[1]s</name>%[2]s
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%[3]s'/><target dev='vda' bus='virtio'/></disk>
    <interface type='network'><source network='%[1]s'/><mac address='%[4]s'/><model type='virtio'/></interface>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <serial type='file'><source path='%[5]s'/><target port='0'/></serial>
  </devices>
</domain>`, tag, owner, disk, mac, filepath.Join(h.dir, "console.log"))
	for name, x := range map[string]string{"net.xml": netXML, "dom.xml": domXML} {
		if err := os.WriteFile(filepath.Join(h.dir, name), []byte(x), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustVirsh := func(args ...string) {
		t.Helper()
		if _, err := virsh(t, h.env.URI, args...); err != nil {
			t.Fatal(err)
		}
	}
	mustVirsh("net-define", filepath.Join(h.dir, "net.xml"))
	mustVirsh("net-start", tag)
	mustVirsh("define", filepath.Join(h.dir, "dom.xml"))

	target := ssh.Target{Addr: ip, Password: "123456", KnownHostsPath: filepath.Join(h.dir, "known_hosts")}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	mustVirsh("start", tag)
	c, err := ssh.DialWait(ctx, target, 0)
	if err != nil {
		console, _ := os.ReadFile(filepath.Join(h.dir, "console.log"))
		t.Fatalf("guest not reachable over ssh: %v\nconsole:\n%s", err, console)
	}
	defer c.Close()
	t.Logf("FLOOR boot-to-ssh (virsh start to authenticated login, probe every %s): %s", ssh.DefaultProbeInterval, time.Since(start).Round(time.Millisecond))

	run := func(argv ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		code, err := c.Run(ctx, argv, nil, &out, &errb)
		if err != nil || code != 0 {
			t.Fatalf("%q: exit %d, %v, stderr %q", argv, code, err, errb.String())
		}
		return strings.TrimSpace(out.String())
	}

	checks := []struct {
		name string
		argv []string
		want string
	}{
		{"fqdn from DHCP", []string{"hostname", "-f"}, "tpl.lago.local"},
		{"short name", []string{"hostname"}, "tpl"},
		{"search domain", []string{"grep", "-c", "^search lago.local$", "/etc/resolv.conf"}, "1"},
		{"os-release", []string{"sh", "-c", ". /etc/os-release && echo $ID"}, "busybox"},
		{"fstab", []string{"sh", "-c", "test -s /etc/fstab && echo ok"}, "ok"},
		{"bash wrapper", []string{"bash", "-c", "echo ok"}, "ok"},
		{"scp present", []string{"sh", "-c", "command -v scp"}, "/usr/bin/scp"},
		{"sftp-server present", []string{"sh", "-c", "test -x /usr/lib/sftp-server && echo ok"}, "ok"},
		// Names of other VMs resolve through libvirt's dnsmasq (static
		// busybox + glibc NSS + the search domain of resolv.conf).
		{"dns name of another host", []string{"sh", "-c", "ping -c1 -W1 other 2>&1 | head -n1 | cut -d: -f1"}, "PING other (" + subnet + ".11)"},
		{"gateway reachable", []string{"sh", "-c", "ping -c1 -W2 " + subnet + ".1 >/dev/null && echo ok"}, "ok"},
		{"acpid running", []string{"sh", "-c", "pidof acpid >/dev/null && echo ok"}, "ok"},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			if got := run(tc.argv...); got != tc.want {
				t.Errorf("%q = %q, want %q", tc.argv, got, tc.want)
			}
		})
	}

	// bash -s scripts, as deploy runs them.
	var out bytes.Buffer
	code, err := c.RunScript(ctx, strings.NewReader("echo \"script $1\"\nexit 5\n"), []string{"arg"}, &out, nil)
	if err != nil || code != 5 || strings.TrimSpace(out.String()) != "script arg" {
		t.Errorf("RunScript = %d, %v, %q", code, err, out.String())
	}

	// Files both ways.
	src := filepath.Join(h.dir, "payload")
	if err := os.WriteFile(src, []byte("hello guest\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.CopyTo(ctx, src, "/root/payload"); err != nil {
		t.Fatalf("CopyTo: %v", err)
	}
	if got := run("cat", "/root/payload"); got != "hello guest" {
		t.Errorf("copied file reads %q", got)
	}
	back := filepath.Join(h.dir, "back")
	if err := c.CopyFrom(ctx, "/etc/hostname", back); err != nil {
		t.Fatalf("CopyFrom: %v", err)
	}
	if b, _ := os.ReadFile(back); strings.TrimSpace(string(b)) != "tpl" {
		t.Errorf("copied back %q", b)
	}

	// authorized_keys is honoured: a key login without a password.
	keyPath, pub := newKey(t, h.dir)
	if code, err := c.Run(ctx, []string{"sh", "-c", "cat >> /root/.ssh/authorized_keys"}, strings.NewReader(string(xssh.MarshalAuthorizedKey(pub))), nil, nil); err != nil || code != 0 {
		t.Fatalf("install key: %d, %v", code, err)
	}
	kc, err := ssh.Dial(ctx, ssh.Target{Addr: ip, KeyPath: keyPath, KnownHostsPath: target.KnownHostsPath})
	if err != nil {
		t.Fatalf("key login: %v", err)
	}
	kc.Close()

	// The ACPI power button powers the guest off.
	run("sync")
	mustVirsh("shutdown", tag)
	eventually(t, 60*time.Second, 200*time.Millisecond, "ACPI shutdown", func() bool {
		st, _ := virsh(t, h.env.URI, "domstate", tag)
		return strings.TrimSpace(st) == "shut off"
	})

	mustVirsh("undefine", tag)
	mustVirsh("net-destroy", tag)
	mustVirsh("net-undefine", tag)
	h.assertNothingLeft()
}

func newKey(t *testing.T, dir string) (string, xssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := xssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := xssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return p, s.PublicKey()
}
