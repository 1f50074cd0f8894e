package initfile

import (
	"strings"
	"testing"

	"github.com/lago-go/lago/core/spec"
)

// Two disks whose images would be named alike, or two scripts whose copies
// would, are refused with the positions of both; names that merely look
// alike, in-place disks and a script shared by VMs are fine.
func TestCollisions(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // each must appear in the error; none: no error
	}{
		{
			name: "vm and disk names joined by _",
			src: `domains:
  a_b:
    nics: [{net: lago}]
    disks: [{name: c, template_name: el7}]
  a:
    nics: [{net: lago}]
    disks: [{name: b_c, template_name: el7}]
`,
			want: []string{
				`LagoInitFile:7:20: domains.a.disks[0].name: disk b_c of vm a and disk c of vm a_b (LagoInitFile:4:20, domains.a_b.disks[0].name) would share the image file images/a_b_c.*`,
			},
		},
		{
			name: "unnamed disk named after its device",
			src: `domains:
  x_y:
    nics: [{net: lago}]
    disks: [{template_name: el7}]
  x:
    nics: [{net: lago}]
    disks: [{name: y_vda, type: empty, size: 1G}]
`,
			want: []string{
				`LagoInitFile:7:20: domains.x.disks[0].name: disk y_vda of vm x and disk vda of vm x_y (LagoInitFile:4:13, domains.x_y.disks[0]) would share the image file images/x_y_vda.*`,
			},
		},
		{
			name: "formats differ",
			src: `domains:
  a_b:
    nics: [{net: lago}]
    disks: [{name: c, type: empty, size: 1G, format: raw}]
  a:
    nics: [{net: lago}]
    disks: [{name: b_c, template_name: el7}]
`,
			want: []string{`disk b_c of vm a and disk c of vm a_b (LagoInitFile:4:20, domains.a_b.disks[0].name) would share the image file images/a_b_c.*`},
		},
		{
			name: "copied file disk",
			src: `domains:
  a_b:
    nics: [{net: lago}]
    disks: [{name: c, type: file, path: /img/c.qcow2, make_a_copy: true}]
  a:
    nics: [{net: lago}]
    disks: [{name: b_c, template_name: el7}]
`,
			want: []string{`images/a_b_c.*`},
		},
		{
			name: "inherited disk",
			src: `domains:
  base:
    nics: [{net: lago}]
    disks: [{name: c, template_name: el7}]
  a_b:
    based-on: base
  a:
    nics: [{net: lago}]
    disks: [{name: b_c, template_name: el7}]
`,
			want: []string{`LagoInitFile:9:20: domains.a.disks[0].name: disk b_c of vm a and disk c of vm a_b (LagoInitFile:4:20, domains.a_b.disks[0].name) would share`},
		},
		{
			name: "disk used in place has no image",
			src: `domains:
  a_b:
    nics: [{net: lago}]
    disks: [{name: c, type: file, path: /img/c.qcow2}]
  a:
    nics: [{net: lago}]
    disks: [{name: b_c, template_name: el7}]
`,
		},
		{
			name: "common names",
			src: `domains:
  vm0:
    nics: [{net: lago}]
    disks: [{name: root, template_name: el7}, {name: data, type: empty, size: 1G}]
  vm1:
    nics: [{net: lago}]
    disks: [{name: root, template_name: el7}]
  vm0_root2:
    nics: [{net: lago}]
    disks: [{name: root, template_name: el7}]
`,
		},
		{
			name: "scripts in different vms",
			src: `domains:
  vm0:
    nics: [{net: lago}]
    metadata: {deploy-scripts: [/x/a_b.sh]}
  vm1:
    nics: [{net: lago}]
    metadata:
      deploy-scripts:
        - /x/ok.sh
        - /x/a/b.sh
`,
			want: []string{
				`LagoInitFile:10:11: domains.vm1.metadata.deploy-scripts[1]: deploy script /x/a/b.sh of vm vm1 and deploy script /x/a_b.sh of vm vm0 (LagoInitFile:4:33, domains.vm0.metadata.deploy-scripts[0]) would share the copy scripts/_x_a_b.sh`,
			},
		},
		{
			name: "scripts in one vm",
			src: `domains:
  vm0:
    nics: [{net: lago}]
    metadata: {deploy-scripts: [/x/a_b.sh, /x/a/b.sh]}
`,
			want: []string{`LagoInitFile:4:44: domains.vm0.metadata.deploy-scripts[1]: deploy script /x/a/b.sh of vm vm0 and deploy script /x/a_b.sh of vm vm0 (LagoInitFile:4:33, domains.vm0.metadata.deploy-scripts[0]) would share the copy scripts/_x_a_b.sh`},
		},
		{
			name: "one script shared by vms",
			src: `domains:
  vm0:
    nics: [{net: lago}]
    metadata: {deploy-scripts: [/x/a_b.sh, /x/a_b.sh]}
  vm1:
    nics: [{net: lago}]
    metadata: {deploy-scripts: [/x/a_b.sh, /x/a_c.sh]}
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.src+okNets)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nlacks\n%s", err, w)
				}
			}
		})
	}
}

// The names checkCollisions compares are the ones init uses: imagePath's
// images/<vm>_<disk>.<format> and the original's scripts/ copy names.
func TestCollisionNamesMatchInit(t *testing.T) {
	for _, d := range []spec.Disk{
		{Name: "b_c", Type: spec.DiskTemplate, Format: "qcow2"},
		{Name: "c", Type: spec.DiskEmpty, Format: "raw"},
		{Name: "c", Type: spec.DiskISO, Format: "raw", URL: "http://x/c.iso"},
	} {
		got := strings.TrimPrefix(imagePath("a", &d), spec.PrefixPathVar+"/")
		if stem := imageStem("a", d.Name); !strings.HasPrefix(got, stem+".") || strings.Contains(strings.TrimPrefix(got, stem+"."), ".") {
			t.Errorf("disk %+v: image %s, want %s.<format>", d, got, stem)
		}
	}
	if got, want := scriptCopy("/x/a/b.sh"), "scripts/_x_a_b.sh"; got != want {
		t.Errorf("copy of /x/a/b.sh is %s, want %s (the original's name)", got, want)
	}
}
