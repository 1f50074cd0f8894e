package initfile

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lago-go/lago/core/spec"
)

// docExample is the init file of the original documentation.
const docExample = `
domains:
  vm-el73:
    memory: 2048
    service_provider: systemd
    nics:
      - net: lago
    disks:
      - template_name: el7.3-base
        type: template
        name: root
        dev: vda
        format: qcow2
    artifacts:
      - /var/log
nets:
  lago:
    type: nat
    dhcp:
      start: 100
      end: 254
    management: true
    dns_domain_name: lago.local
`

func parse(t *testing.T, src string) (*Config, error) {
	t.Helper()
	return Parse("LagoInitFile", []byte(src), Options{SkipPathChecks: true, LookupEnv: func(string) (string, bool) { return "", false }})
}

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := parse(t, src)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestParseDocExample(t *testing.T) {
	c := mustParse(t, docExample)
	if c.MgmtNet != "lago" || len(c.Nets) != 1 || len(c.VMs) != 1 {
		t.Fatalf("got mgmt %q, %d nets, %d vms", c.MgmtNet, len(c.Nets), len(c.VMs))
	}
	want := spec.VM{
		Name: "vm-el73", Memory: 2048, VCPU: 2, ServiceProvider: "systemd",
		NICs: []spec.NIC{{Net: "lago"}},
		Disks: []spec.Disk{{Name: "root", Dev: "vda", Type: "template", Format: "qcow2",
			TemplateName: "el7.3-base"}},
		Artifacts: []string{"/var/log"},
		MgmtNet:   "lago",
	}
	if !reflect.DeepEqual(c.VMs[0], want) {
		t.Errorf("vm:\n got %+v\nwant %+v", c.VMs[0], want)
	}
	wantNet := spec.Net{Name: "lago", Type: "nat", DHCP: &spec.DHCP{Start: 100, End: 254}, Management: true, DNSDomainName: "lago.local"}
	if !reflect.DeepEqual(c.Nets[0], wantNet) {
		t.Errorf("net:\n got %+v\nwant %+v", c.Nets[0], wantNet)
	}
}

// TestParseJSON reads the same file written as JSON; positions still work.
func TestParseJSON(t *testing.T) {
	src := `{
    "domains": {
        "vm0": {"memory": 1024, "nics": [{"net": "lago"}],
                "disks": [{"template_name": "t", "type": "template", "dev": "vda"}]}
    },
    "nets": {"lago": {"type": "nat", "management": true}}
}`
	c := mustParse(t, src)
	if c.VMs[0].Memory != 1024 || c.VMs[0].Disks[0].TemplateName != "t" {
		t.Errorf("got %+v", c.VMs[0])
	}
	_, err := parse(t, strings.Replace(src, `"memory"`, `"memroy"`, 1))
	if err == nil || !strings.Contains(err.Error(), `LagoInitFile:3:17: domains.vm0.memroy: unknown key "memroy", did you mean "memory"?`) {
		t.Errorf("error = %v", err)
	}
}

const okNets = `
nets:
  lago: {management: true}
  n2: {}
  br: {type: bridge}
`

// TestErrors checks that each mistake gives a message naming the place,
// the field path and what is allowed.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // each must appear as a line of the error
	}{
		{"unknown top key", "domainz: {}\n" + okNets, []string{
			`LagoInitFile:1:1: domainz: unknown key "domainz", did you mean "domains"?`,
			`LagoInitFile:1:1: domains: missing: the init file needs a domains section with at least one VM`,
		}},
		{"empty file", "", []string{`LagoInitFile: empty init file: want a mapping with domains and nets`}},
		{"bad yaml", "domains: [\n", []string{`LagoInitFile:1:1: not valid YAML or JSON:`}},
		{"memory string", "domains:\n  vm0: {memory: 2G, nics: [{net: lago}]}\n" + okNets, []string{
			`LagoInitFile:2:17: domains.vm0.memory: want an integer of MiB from 16 to 1073741824, got the string "2G"`,
		}},
		{"unknown net with suggestion", "domains:\n  vm0:\n    nics: [{net: lago}, {net: lagp}]\n" + okNets, []string{
			`LagoInitFile:3:31: domains.vm0.nics[1].net: unknown net "lagp", did you mean "lago"?`,
		}},
		{"no management nic", "domains:\n  vm0:\n    nics: [{net: n2}]\n" + okNets, []string{
			`LagoInitFile:2:3: domains.vm0.nics: the VM needs exactly one NIC on the management net lago; add {net: lago} to its nics`,
		}},
		{"two management nics", "domains:\n  vm0:\n    nics: [{net: lago}, {net: lago}]\n" + okNets, []string{
			`LagoInitFile:3:25: domains.vm0.nics[1].net: the VM has more than one NIC on the management net lago (first: domains.vm0.nics[0]); keep exactly one`,
		}},
		{"two management nets", "domains:\n  vm0:\n    nics: [{net: a}]\nnets:\n  a: {management: true}\n  b: {management: true}\n", []string{
			`LagoInitFile:6:7: nets.b.management: more than one management net: a and b both say management: true; keep one`,
		}},
		{"dns on non-management", "domains:\n  vm0:\n    nics: [{net: a}]\nnets:\n  a: {}\n  b: {dns_domain_name: x.local}\n", []string{
			`LagoInitFile:6:7: nets.b.dns_domain_name: dns_domain_name is allowed only on the management net (the management net is a)`,
		}},
		{"duplicate static ip", "domains:\n  vm0:\n    nics: [{net: lago, ip: 192.168.200.5}]\n  vm1:\n    nics: [{net: lago, ip: 192.168.200.5}]\n" + okNets, []string{
			`LagoInitFile:5:28: domains.vm1.nics[0].ip: duplicate static IP 192.168.200.5 on net lago: already used by domains.vm0.nics[0] at line 3`,
		}},
		{"ip outside explicit subnet", "domains:\n  vm0:\n    nics: [{net: a, ip: 192.168.201.5}]\nnets:\n  a: {gw: 192.168.210.1}\n", []string{
			`LagoInitFile:3:25: domains.vm0.nics[0].ip: 192.168.201.5 is outside net a's subnet 192.168.210.0/24 (gw 192.168.210.1)`,
		}},
		{"ip is gateway", "domains:\n  vm0:\n    nics: [{net: a, ip: 192.168.210.1}]\nnets:\n  a: {gw: 192.168.210.1}\n", []string{
			`domains.vm0.nics[0].ip: 192.168.210.1 is net a's gateway`,
		}},
		{"ip on bridge", "domains:\n  vm0:\n    nics: [{net: lago}, {net: br, ip: 10.0.0.5}]\n" + okNets, []string{
			`domains.vm0.nics[1].ip: net br is a bridge net: lago gives bridge NICs no IP; remove ip`,
		}},
		{"bad ip", "domains:\n  vm0:\n    nics: [{net: lago, ip: 300.1.1.1}]\n" + okNets, []string{
			`domains.vm0.nics[0].ip: want an IPv4 address such as 192.168.220.2, got "300.1.1.1"`,
		}},
		{"disk rules", `
domains:
  vm0:
    nics: [{net: lago}]
    disks:
      - {type: empty, dev: vdb}
      - {type: file, dev: vdc}
      - {type: template, dev: vdd}
      - {type: floppy, dev: vde}
      - {type: empty, size: 10, dev: vdf}
      - {type: file, path: /x, url: "http://h/x", dev: vdg}
      - {type: empty, size: 1G, dev: vdb}
      - {type: empty, size: 1G, dev: "bad dev"}
` + okNets, []string{
			`LagoInitFile:6:9: domains.vm0.disks[0].size: missing: an empty disk needs a size, such as 10G`,
			`LagoInitFile:7:9: domains.vm0.disks[1].path: missing: a file disk needs path or url`,
			`LagoInitFile:8:9: domains.vm0.disks[2].template_name: missing: a template disk needs template_name`,
			`LagoInitFile:9:16: domains.vm0.disks[3].type: unknown disk type "floppy": want template, file, empty or iso`,
			`LagoInitFile:10:29: domains.vm0.disks[4].size: size 10 has no unit: write it with one, such as 10G or 512M`,
			`LagoInitFile:11:32: domains.vm0.disks[5].url: a file disk takes path or url, not both`,
			`LagoInitFile:12:9: domains.vm0.disks[6].dev: device vdb is already used by disk 0`,
			`LagoInitFile:13:38: domains.vm0.disks[7].dev: invalid device "bad dev": want vdX (virtio), sdX (virtio-scsi), hdX or xvdX`,
		}},
		{"based-on unknown", "domains:\n  vm0:\n    based-on: bsae\n    nics: [{net: lago}]\n  base: {memory: 512}\n" + okNets, []string{
			`LagoInitFile:3:15: domains.vm0.based-on: unknown domain "bsae", did you mean "base"?: based-on must name another domain of this file`,
		}},
		{"based-on cycle", "domains:\n  a: {based-on: b, nics: [{net: lago}]}\n  b: {based-on: a, nics: [{net: lago}]}\n" + okNets, []string{
			`based-on cycle:`,
		}},
		{"cpu model and custom", "domains:\n  vm0:\n    nics: [{net: lago}]\n    cpu_model: Westmere\n    cpu_custom: {'@mode': custom}\n" + okNets, []string{
			`LagoInitFile:5:17: domains.vm0.cpu_custom: cpu_model and cpu_custom exclude each other: keep one`,
		}},
		{"duplicate key", "domains:\n  vm0:\n    nics: [{net: lago}]\n    nics: [{net: lago}]\n" + okNets, []string{
			`LagoInitFile:4:5: domains.vm0.nics: duplicate key "nics" (first at line 3)`,
		}},
		{"net type", "domains:\n  vm0: {nics: [{net: lago}]}\nnets:\n  lago: {type: nta}\n", []string{
			`LagoInitFile:4:16: nets.lago.type: unknown net type "nta": want nat or bridge`,
		}},
		{"dev alias hint", "domains:\n  vm0:\n    nics: [{net: lago}]\n    disks: [{type: empty, size: 1G, device: vdb}]\n" + okNets, []string{
			`domains.vm0.disks[0].device: unknown key "device", did you mean "dev"?`,
		}},
		{"empty domains", "domains:\n" + okNets, []string{
			`LagoInitFile:1:9: domains: empty: define at least one VM`,
		}},
		{"no nets", "domains:\n  vm0: {memory: 512}\n", []string{
			`LagoInitFile:2:3: domains.vm0.nics: the file defines no nets: add a nat net under nets and a NIC on it`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.src)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList", err)
			}
			lines := strings.Split(err.Error(), "\n")
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					if strings.HasPrefix(l, w) || (!strings.HasPrefix(w, "LagoInitFile") && strings.Contains(l, w)) {
						found = true
					}
				}
				if !found {
					t.Errorf("missing error line %q in:\n%s", w, err)
				}
			}
			for i := 1; i < len(list); i++ {
				if list[i].Line < list[i-1].Line {
					t.Errorf("errors not sorted by position:\n%s", err)
				}
			}
		})
	}
}

func TestAllErrorsAtOnce(t *testing.T) {
	src := "domains:\n  vm0: {memroy: 1, nics: [{net: x}]}\n  vm1: {vcpu: many, nics: [{net: lago}]}\n" + okNets
	_, err := parse(t, src)
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 4 {
		t.Fatalf("want 4 errors, got %v", err)
	}
}

func TestBasedOnAndAnchors(t *testing.T) {
	src := `
_defaults: &d
  memory: 512
domains:
  base:
    <<: *d
    vcpu: 4
    nics: [{net: lago}]
    metadata: {a: 1, nested: {x: 1, y: 2}}
    disks: [{template_name: el7, dev: vda}]
  child:
    based-on: base
    memory: 1024
    metadata: {nested: {y: 3}}
  grandchild:
    based-on: child
    disks: [{type: empty, size: 5G}]
` + okNets
	_, err := parse(t, src)
	if err == nil || !strings.Contains(err.Error(), `unknown key "_defaults"`) {
		t.Fatalf("top-level anchors outside known keys must be rejected, got %v", err)
	}
	src = strings.Replace(src, "_defaults: &d\n  memory: 512\ndomains:\n  base:\n    <<: *d\n", "domains:\n  base:\n    <<: &d {memory: 512}\n", 1)
	c := mustParse(t, src)
	byName := map[string]spec.VM{}
	for _, v := range c.VMs {
		byName[v.Name] = v
	}
	base, child, gc := byName["base"], byName["child"], byName["grandchild"]
	if base.Memory != 512 || base.VCPU != 4 {
		t.Errorf("base: memory %d vcpu %d", base.Memory, base.VCPU)
	}
	if child.Memory != 1024 || child.VCPU != 4 || child.Disks[0].TemplateName != "el7" {
		t.Errorf("child: %+v", child)
	}
	wantMD := map[string]any{"a": int64(1), "nested": map[string]any{"x": int64(1), "y": int64(3)}}
	if !reflect.DeepEqual(child.Metadata, wantMD) {
		t.Errorf("child metadata = %#v, want %#v", child.Metadata, wantMD)
	}
	if gc.Memory != 1024 || len(gc.Disks) != 1 || gc.Disks[0].Type != "empty" || gc.Disks[0].Dev != "vda" {
		t.Errorf("grandchild: %+v", gc)
	}
}

func TestEnvExpansion(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"disk.qcow2", "deploy.sh"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := `
domains:
  vm0:
    nics: [{net: lago}]
    disks:
      - {type: file, path: $LAGO_INITFILE_PATH/disk.qcow2, dev: vda}
      - {type: iso, url: "http://$MIRROR/x.iso", dev: vdb}
      - {type: template, template_type: qcow2, path: "${LAGO_INITFILE_PATH}/disk.qcow2", dev: vdc}
    metadata:
      deploy-scripts: [$LAGO_INITFILE_PATH/deploy.sh]
      other: $HOME_NOT_EXPANDED
    artifacts: [$LAGO_PREFIX_PATH]
nets:
  lago: {}
`
	file := filepath.Join(dir, "LagoInitFile")
	env := map[string]string{"MIRROR": "mirror.example"}
	c, err := Parse(file, []byte(src), Options{PrefixPath: "/p", WorkdirPath: "/w",
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	vm := c.VMs[0]
	if got := vm.Disks[0].Path; got != filepath.Join(dir, "disk.qcow2") {
		t.Errorf("file path = %q", got)
	}
	if got := vm.Disks[1].URL; got != "http://mirror.example/x.iso" {
		t.Errorf("url = %q", got)
	}
	if got := vm.Disks[2].Path; got != filepath.Join(dir, "disk.qcow2") {
		t.Errorf("qcow2 template path = %q", got)
	}
	if got := vm.DeployScripts(); !reflect.DeepEqual(got, []string{filepath.Join(dir, "deploy.sh")}) {
		t.Errorf("deploy scripts = %q", got)
	}
	if vm.Metadata["other"] != "$HOME_NOT_EXPANDED" || vm.Artifacts[0] != "$LAGO_PREFIX_PATH" {
		t.Errorf("values outside paths must stay as written: %v %v", vm.Metadata["other"], vm.Artifacts)
	}
	// Missing files are reported before anything is created.
	_, err = Parse(file, []byte(strings.ReplaceAll(src, "deploy.sh", "nope.sh")), Options{})
	if err == nil || !strings.Contains(err.Error(), "domains.vm0.metadata.deploy-scripts[0]: deploy script "+filepath.Join(dir, "nope.sh")+" does not exist") {
		t.Errorf("error = %v", err)
	}
}

func TestExpand(t *testing.T) {
	d := &decoder{file: "/x/y/LagoInitFile", opts: Options{PrefixPath: "/p", LookupEnv: func(k string) (string, bool) {
		if k == "A" {
			return "aa", true
		}
		return "", false
	}}}
	tests := []struct{ in, want string }{
		{"$A/b", "aa/b"},
		{"${A}b", "aab"},
		{"$Ab", "$Ab"},
		{"$UNSET", "$UNSET"},
		{"${unterminated", "${unterminated"},
		{"$", "$"},
		{"a$$A", "a$aa"},
		{"$LAGO_INITFILE_PATH/f", "/x/y/f"},
		{"$LAGO_PREFIX_PATH/images", "/p/images"},
	}
	for _, tt := range tests {
		if got := d.expand(tt.in); got != tt.want {
			t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestAliasBomb: an exponential alias document is an error, fast.
func TestAliasBomb(t *testing.T) {
	src := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		src += n + ": &" + n + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
		prev = n
	}
	start := time.Now()
	_, err := parse(t, src)
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("error = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestBuildSteps(t *testing.T) {
	src := `
domains:
  vm0:
    nics: [{net: lago}]
    disks:
      - template_name: el7.3-base
        dev: vda
        build:
          - virt-customize:
              ssh-inject: ''
              touch: [/root/file1, /root/file2]
              selinux-relabel:
` + okNets
	c := mustParse(t, src)
	got := c.VMs[0].Disks[0].Build[0].Args()
	want := []string{"--ssh-inject", "--touch", "/root/file1", "--touch", "/root/file2", "--selinux-relabel"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("args = %q, want %q", got, want)
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct{ word, want string }{
		{"memroy", "memory"},
		{"ssh_user", "ssh-user"},
		{"servce_provider", "service_provider"},
		{"zzz", ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.word, domainKeys); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}

func TestCheckGateway(t *testing.T) {
	src := "domains:\n  vm0: {nics: [{net: a}]}\nnets:\n  a: {gw: 10.0.0.1}\n"
	_, err := Parse("f", []byte(src), Options{CheckGateway: func(gw netip.Addr) error {
		if !netip.MustParsePrefix("192.168.200.0/21").Contains(gw) {
			return fmt.Errorf("gateway %s is outside the subnets lago leases (192.168.200.0 to 192.168.255.0)", gw)
		}
		return nil
	}})
	want := "f:4:11: nets.a.gw: gateway 10.0.0.1 is outside the subnets lago leases (192.168.200.0 to 192.168.255.0)"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}
