package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lago-go/lago/core/errs"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"SSHUser": "root", "SSHPassword": "123456", "SSHTries": 100, "SSHTimeout": 10 * time.Second,
		"LibvirtURL": "qemu:///system", "DefaultVMType": "default", "DefaultVMProvider": "local-libvirt",
		"LeaseDir": "/var/lib/lago/subnets", "PrefixName": "current", "LogLevel": "info", "LogDepth": 3,
		"TemplateRepoPath": "http://templates.ovirt.org/repo/repo.metadata",
		"TemplateStore":    "/var/lib/lago/store", "TemplateRepos": "/var/lib/lago/repos",
		"StartTimeout": 10 * time.Minute, "StartParallelism": 0, "OutFormat": "default",
	}
	rv := reflect.ValueOf(*c)
	for field, w := range want {
		if got := rv.FieldByName(field).Interface(); !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %v, want %v", field, got, w)
		}
	}
	p := c.Providers[DefaultProviderInstance]
	if p.Plugin != "libvirt" || p.Settings["libvirt_url"] != "qemu:///system" {
		t.Errorf("local-libvirt = %+v", p)
	}
}

// TestPrecedence sets ssh_user in every layer at or above the one under
// test and checks that the highest wins, with the right origin.
func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	etc := writeFile(t, dir, "etc/lago.conf", "[lago]\nssh_user = etc\n")
	xdgSys := writeFile(t, dir, "xdg/lago/lago.conf", "[lago]\nssh_user = xdgsys\n")
	xdgHome := writeFile(t, dir, "home/lago/lago.conf", "[lago]\nssh_user = xdghome\n")
	extra := writeFile(t, dir, "extra.conf", "# test\n[lago]\nssh_user = extra\n")
	files := []string{etc, xdgSys, xdgHome}
	tests := []struct {
		name     string
		opts     Options
		want     string
		wantFrom string
	}{
		{"default", Options{}, "root", "default"},
		{"etc", Options{Files: files[:1]}, "etc", etc + ":2"},
		{"xdg dirs", Options{Files: files[:2]}, "xdgsys", xdgSys + ":2"},
		{"xdg home", Options{Files: files}, "xdghome", xdgHome + ":2"},
		{"LAGO_CONFIG", Options{Files: files, Required: []string{extra}}, "extra", extra + ":3"},
		{"env", Options{Files: files, Required: []string{extra}, Environ: []string{"LAGO_SSH_USER=env"}}, "env", "environment LAGO_SSH_USER"},
		{"flag", Options{Files: files, Required: []string{extra}, Environ: []string{"LAGO_SSH_USER=env"},
			Flags: map[string]FlagValue{"lago.ssh_user": {Value: "flag", Flag: "--ssh-user"}}}, "flag", "option --ssh-user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if c.SSHUser != tt.want {
				t.Errorf("SSHUser = %q, want %q", c.SSHUser, tt.want)
			}
			v, _ := c.Get("lago", "ssh_user")
			if v.Source.String() != tt.wantFrom {
				t.Errorf("source = %q, want %q", v.Source, tt.wantFrom)
			}
		})
	}
}

func TestDefaultFiles(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"defaults", map[string]string{"HOME": "/home/u"},
			[]string{"/etc/lago/lago.conf", "/etc/xdg/lago/lago.conf", "/home/u/.config/lago/lago.conf"}},
		{"xdg set", map[string]string{"HOME": "/home/u", "XDG_CONFIG_DIRS": "/a:/b", "XDG_CONFIG_HOME": "/c"},
			[]string{"/etc/lago/lago.conf", "/b/lago/lago.conf", "/a/lago/lago.conf", "/c/lago/lago.conf"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DefaultFiles(func(k string) string { return tt.env[k] })
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DefaultFiles = %v, want %v", got, tt.want)
			}
		})
	}
	if got := RequiredFiles(func(k string) string { return map[string]string{"LAGO_CONFIG": "/x"}[k] }); !reflect.DeepEqual(got, []string{"/x"}) {
		t.Errorf("RequiredFiles = %v", got)
	}
}

func TestEnvNames(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		check   func(*Config) bool
		wantErr string
	}{
		{"lago section", []string{"LAGO_SSH_TRIES=5"}, func(c *Config) bool { return c.SSHTries == 5 }, ""},
		{"other section", []string{"LAGO__INIT__TEMPLATE_STORE=/var/tmp"}, func(c *Config) bool { return c.TemplateStore == "/var/tmp" }, ""},
		{"start section", []string{"LAGO__START__TIMEOUT=90s"}, func(c *Config) bool { return c.StartTimeout == 90*time.Second }, ""},
		{"plugin pin", []string{"LAGO__PLUGINS__OUTPUT_JSON=" + strings.Repeat("ab", 32)}, func(c *Config) bool {
			return c.PluginPins["output-json"] == strings.Repeat("ab", 32)
		}, ""},
		{"provider instance", []string{"LAGO__PROVIDER_LOCAL_LIBVIRT__DOMAIN_TYPE=qemu"}, func(c *Config) bool {
			return c.Providers["local-libvirt"].Settings["domain_type"] == "qemu"
		}, ""},
		{"unrelated LAGO_ ignored", []string{"LAGO_PLUGIN_PATH=/x", "LAGO_CONFIG=", "LAGOX=1"}, func(c *Config) bool { return true }, ""},
		{"bad value", []string{"LAGO_SSH_TRIES=many"}, nil, `environment LAGO_SSH_TRIES: invalid value "many" for ssh_tries`},
		{"bad value of a compatibility key", []string{"LAGO__START__WAIT_SUSPEND=soon"}, nil, `environment LAGO__START__WAIT_SUSPEND: invalid value "soon" for wait_suspend in [start]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(Options{Environ: tt.environ})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				if !errs.IsUser(err) {
					t.Fatalf("err %v is not a Lago error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("environment %v not applied: %+v", tt.environ, c)
			}
		})
	}
}

// resetWarned forgets the warnings this test process has given, so each
// case sees its own.
func resetWarned(t *testing.T) {
	t.Helper()
	warned.Clear()
	t.Cleanup(warned.Clear)
}

// TestEnvWarnings checks that a LAGO__ variable naming no key is skipped
// with one warning naming it (the environment is not a configuration
// file), while the rest of the environment still applies.
func TestEnvWarnings(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    []string // the warnings, in order
	}{
		{"unknown key", []string{"LAGO__INIT__TEMPLATE_STOR=/x"},
			[]string{`environment LAGO__INIT__TEMPLATE_STOR: unknown key "template_stor" in [init]; did you mean template_store?; ignored`}},
		{"unknown section", []string{"LAGO__INTI__X=1"},
			[]string{"environment LAGO__INTI__X: unknown section [inti]; did you mean [init]?; ignored"}},
		{"malformed", []string{"LAGO__INIT=1"},
			[]string{"environment LAGO__INIT: want LAGO__SECTION__KEY; ignored"}},
		{"unknown provider instance", []string{"LAGO__PROVIDER_REMOTE__LIBVIRT_URL=x"},
			[]string{`environment LAGO__PROVIDER_REMOTE__LIBVIRT_URL: no [provider NAME] instance is called "remote" (known: local-libvirt); ignored`}},
		{"wait_suspend of the original", []string{"LAGO__START__WAIT_SUSPEND=1.0"},
			[]string{"environment LAGO__START__WAIT_SUSPEND: wait_suspend has no effect in this lago: VMs are started running, not paused and resumed after 1s"}},
		{"wait_suspend zero is silent", []string{"LAGO__START__WAIT_SUSPEND=0"}, nil},
		{"known keys are silent", []string{"LAGO__START__TIMEOUT=90s", "LAGO_SSH_TRIES=5"}, nil},
		{"several, sorted by name", []string{"LAGO__ZZZ__A=1", "LAGO__AAA__B=2"}, []string{
			"environment LAGO__AAA__B: unknown section [aaa] (known: ",
			"environment LAGO__ZZZ__A: unknown section [zzz] (known: ",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resetWarned(t)
			env := append([]string{"LAGO_SSH_USER=fromenv"}, tt.environ...)
			c, err := Load(Options{Environ: env})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.SSHUser != "fromenv" {
				t.Errorf("the rest of the environment was not applied: ssh_user = %q", c.SSHUser)
			}
			got := c.Warnings()
			if len(got) != len(tt.want) {
				t.Fatalf("warnings = %q, want %q", got, tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("warning %d = %q, want %q", i, got[i], w)
				}
			}
			// Once per process: a second load (the CLI loads more than
			// once for some commands) does not repeat them.
			c2, err := Load(Options{Environ: env})
			if err != nil {
				t.Fatal(err)
			}
			if w := c2.Warnings(); len(w) != 0 {
				t.Errorf("second Load warned again: %q", w)
			}
		})
	}
}

// TestEnvWarningsGivenByParent: the engine the front-end execs loads the
// same configuration; WarnedEnv keeps it from warning a second time.
func TestEnvWarningsGivenByParent(t *testing.T) {
	resetWarned(t)
	c, err := Load(Options{Environ: []string{"LAGO__NOPE__X=1", WarnedEnv + "=1"}})
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("warnings = %q, want none", w)
	}
}

// TestWaitSuspendInFile: the compatibility key is accepted in a file too,
// named by file and line in its notice, and left out of generate-config
// while unset.
func TestWaitSuspendInFile(t *testing.T) {
	resetWarned(t)
	p := writeFile(t, t.TempDir(), "lago.conf", "[start]\nwait_suspend = 2.5\n")
	c, err := Load(Options{Files: []string{p}})
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.HasPrefix(w[0], p+":2: wait_suspend has no effect") {
		t.Errorf("warnings = %q", w)
	}
	d, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := d.WriteINI(&buf, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "wait_suspend") {
		t.Errorf("generate-config shows the unset compatibility key:\n%s", buf.String())
	}
}

func TestFileErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // after "<path>:"
	}{
		{"unknown key", "[lago]\n\nssh_usr = x\n", `3: unknown key "ssh_usr" in [lago]; did you mean ssh_user?`},
		{"key in wrong section", "[init]\nssh_user = x\n", `2: unknown key "ssh_user" in [init]; it belongs in [lago]`},
		{"unknown section", "; c\n[lagoo]\n", `2: unknown section [lagoo]; did you mean [lago]?`},
		{"malformed line", "[lago]\njust words\n", `2: malformed line "just words"`},
		{"missing bracket", "[lago\n", `1: malformed section header`},
		{"key before section", "ssh_user = x\n", `1: key "ssh_user" appears before any [section] header`},
		{"duplicate key", "[lago]\nssh_user = a\nssh_user = b\n", `3: key "ssh_user" of [lago] is already set on line 2`},
		{"continuation", "[lago]\nssh_user = a\n  b\n", `3: malformed line "b": continuation lines`},
		{"bad int", "[lago]\nssh_tries = lots\n", `2: invalid value "lots" for ssh_tries in [lago]`},
		{"bad choice", "[lago]\nloglevel = debag\n", `2: invalid value "debag" for loglevel in [lago]: want one of debug, info, warning, error; did you mean debug?`},
		{"bad bool", "[init]\nskip_build = maybe\n", `2: invalid value "maybe" for skip_build`},
		{"bad size", "[init]\n\ntemplate_max_image_size = lots\n", `3: invalid value "lots" for template_max_image_size in [init]: size "lots": want a whole number`},
		{"unknown key in [start]", "[start]\nwait_suspnd = 1\n", `2: unknown key "wait_suspnd" in [start]; did you mean wait_suspend?`},
		{"provider without plugin", "[provider remote]\nlibvirt_url = qemu+tcp://127.0.0.1/system\n", `2: [provider remote] needs`},
		{"provider without name", "[provider]\n", `1: section [provider] needs an instance name`},
		{"bad pin", "[plugins]\nprovider-libvirt = abc\n", `2: pin of plugin "provider-libvirt" must be a sha256`},
		{"unknown default provider", "[lago]\ndefault_vm_provider = remote\n", `2: default_vm_provider "remote" names no provider instance`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "lago.conf", tt.body)
			_, err := Load(Options{Files: []string{p}})
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if want := p + ":" + tt.want; !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v\nwant containing %q", err, want)
			}
			if !errs.IsUser(err) {
				t.Fatalf("err %v is not a Lago error", err)
			}
		})
	}
}

func TestRequiredFileMissing(t *testing.T) {
	_, err := Load(Options{Required: []string{filepath.Join(t.TempDir(), "nope.conf")}})
	if err == nil || !errs.IsUser(err) {
		t.Fatalf("err = %v, want a Lago error", err)
	}
	if _, err := Load(Options{Files: []string{filepath.Join(t.TempDir(), "nope.conf")}}); err != nil {
		t.Fatalf("missing optional file: %v", err)
	}
}

func TestProviders(t *testing.T) {
	body := `# comments and ; comments
[lago]
libvirt_url = qemu:///session
default_vm_provider = remote
; a remote libvirt
[Provider remote]
plugin: libvirt
libvirt_url = qemu+ssh://user@host/system
domain_type = qemu

[provider local-libvirt]
domain_type = kvm
`
	p := writeFile(t, t.TempDir(), "lago.conf", body)
	c, err := Load(Options{Files: []string{p}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ProviderInstance{
		"remote": {Name: "remote", Plugin: "libvirt", Settings: map[string]string{
			"libvirt_url": "qemu+ssh://user@host/system", "domain_type": "qemu"}},
		"local-libvirt": {Name: "local-libvirt", Plugin: "libvirt", Settings: map[string]string{
			"libvirt_url": "qemu:///session", "libvirt_user": "", "libvirt_password": "", "domain_type": "kvm"}},
	}
	for name, w := range want {
		got, err := c.Provider(name)
		if err != nil {
			t.Fatal(err)
		}
		if got.Plugin != w.Plugin || !reflect.DeepEqual(got.Settings, w.Settings) {
			t.Errorf("provider %s = %+v, want %+v", name, got, w)
		}
	}
	if c.DefaultVMProvider != "remote" {
		t.Errorf("DefaultVMProvider = %q", c.DefaultVMProvider)
	}
	if _, err := c.Provider("remot"); err == nil || !strings.Contains(err.Error(), "did you mean remote?") {
		t.Errorf("unknown provider err = %v", err)
	}
}

func TestExtraSections(t *testing.T) {
	extra := []Key{{Section: "destroy", Name: "yes", Type: TypeBool, Default: "False", Flag: "yes"}}
	p := writeFile(t, t.TempDir(), "lago.conf", "[destroy]\nyes = True\n")
	c, err := Load(Options{Files: []string{p}, Extra: extra})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Bool("destroy", "yes") {
		t.Error("[destroy] yes not applied")
	}
	if _, err := Load(Options{Files: []string{p}}); err == nil {
		t.Error("[destroy] accepted without its declaration")
	}
	empty := writeFile(t, t.TempDir(), "lago.conf", "[shell]\n")
	if _, err := Load(Options{Files: []string{empty}, Sections: []string{"shell"}}); err != nil {
		t.Errorf("empty declared section: %v", err)
	}
	withKey := writeFile(t, t.TempDir(), "lago.conf", "[shell]\nfoo = 1\n")
	if _, err := Load(Options{Files: []string{withKey}, Sections: []string{"shell"}}); err == nil || !strings.Contains(err.Error(), `:2: unknown key "foo" in [shell]`) {
		t.Errorf("key in a section without keys: %v", err)
	}
}

// TestGenerateRoundTrip checks that generate-config output, read back as
// the only layer, yields the same configuration.
func TestGenerateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "lago.conf", `[lago]
ssh_timeout = 30s
prefix_path = /deprecated/but/set
[provider remote]
plugin = libvirt
libvirt_url = qemu+tcp://127.0.0.1:16510/system
[provider local-libvirt]
domain_type = qemu
[plugins]
output-json = `+strings.Repeat("0f", 32)+`
`)
	extra := []Key{{Section: "export", Name: "dst_dir", Default: ".", Flag: "dst-dir"}}
	opts := Options{
		Files:   []string{p},
		Environ: []string{"LAGO__INIT__SKIP_BUILD=yes", "LAGO_LIBVIRT_USER=me"},
		Flags: map[string]FlagValue{
			"lago.loglevel":     {Value: "debug", Flag: "-l"},
			"start.timeout":     {Value: "2m", Flag: "--timeout"},
			"export.dst_dir":    {Value: "/tmp/out", Flag: "--dst-dir"},
			"lago.ssh_tries":    {Value: "7", Flag: "--ssh-tries"},
			"lago.ssh_password": {Value: "", Flag: "--ssh-password"},
		},
		Extra: extra,
	}
	c1, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, verbose := range []bool{false, true} {
		var buf bytes.Buffer
		if err := c1.WriteINI(&buf, verbose); err != nil {
			t.Fatal(err)
		}
		gen := writeFile(t, dir, "generated.conf", buf.String())
		c2, err := Load(Options{Files: []string{gen}, Extra: extra})
		if err != nil {
			t.Fatalf("generated config does not load: %v\n%s", err, buf.String())
		}
		if !sameConfig(c1, c2) {
			t.Errorf("round trip (verbose=%v) changed the configuration\n%s\nbefore: %+v\nafter:  %+v", verbose, buf.String(), *c1, *c2)
		}
		if verbose {
			for _, w := range []string{"# from: option --timeout", "# from: environment LAGO__INIT__SKIP_BUILD", "# from: " + p + ":2", "# from: default"} {
				if !strings.Contains(buf.String(), w) {
					t.Errorf("verbose output lacks %q", w)
				}
			}
		}
	}
}

// sameConfig compares the typed fields and every value, ignoring origins.
func sameConfig(a, b *Config) bool {
	ta, tb := *a, *b
	ta.keys, tb.keys, ta.values, tb.values, ta.files, tb.files = nil, nil, nil, nil, nil, nil
	ta.warnings, tb.warnings = nil, nil
	for n, p := range ta.Providers {
		p.Source = Source{}
		ta.Providers[n] = p
	}
	for n, p := range tb.Providers {
		p.Source = Source{}
		tb.Providers[n] = p
	}
	if !reflect.DeepEqual(ta, tb) {
		return false
	}
	if len(a.values) != len(b.values) {
		return false
	}
	for id, v := range a.values {
		if b.values[id].Value != v.Value {
			return false
		}
	}
	return true
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"10", 10 * time.Second, true},
		{"1.5", 1500 * time.Millisecond, true},
		{"10m", 10 * time.Minute, true},
		{"-1", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v", tt.in, got, err)
		}
	}
}
