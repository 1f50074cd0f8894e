package initfile

import (
	"errors"
	"strings"
	"testing"
)

// everyLevel is a valid init file that uses every mapping of the init-file
// tree whose keys are fixed; TestUnknownKeyAtEveryLevel adds a misspelt key
// to one of them at a time.
const everyLevel = `domains:
  vm0:
    memory: 1024
    numa:
      - id: 0
        cpus: 0-1
        memory: 512
    cpu_custom:
      '@mode': custom
      model:
        '@fallback': allow
        '#text': Westmere
      topology:
        '@sockets': 1
        '@cores': 2
        '@threads': 1
      feature:
        - '@policy': require
          '@name': vmx
      cache:
        '@mode': passthrough
      maxphysaddr:
        '@mode': passthrough
      numa:
        cell:
          - '@id': 0
            '@cpus': 0-1
            '@memory': 512
            '@unit': MiB
    nics:
      - net: lago
        ip: 192.168.200.5
    disks:
      - type: template
        template_name: el7
        dev: vda
nets:
  lago:
    type: nat
    management: true
    dhcp:
      start: 100
      end: 254
`

// TestUnknownKeyAtEveryLevel: a misspelt key is an error at every level of
// the init-file tree, naming file, line, column and the key's path. Each
// case inserts one unknown key before the first line holding before, with
// the indentation of that line.
func TestUnknownKeyAtEveryLevel(t *testing.T) {
	tests := []struct {
		level  string
		before string // a line of everyLevel, trimmed
		key    string
		path   string
		hint   string // the suggestion, or "" for the list of allowed keys
	}{
		{"top", "nets:", "nest", "nest", `did you mean "nets"?`},
		{"domain", "memory: 1024", "memroy", "domains.vm0.memroy", `did you mean "memory"?`},
		{"numa cell", "cpus: 0-1", "cpuss", "domains.vm0.numa[0].cpuss", `did you mean "cpus"?`},
		{"nic", "ip: 192.168.200.5", "ipp", "domains.vm0.nics[0].ipp", `did you mean "ip"?`},
		{"disk", "dev: vda", "devv", "domains.vm0.disks[0].devv", `did you mean "dev"?`},
		{"net", "type: nat", "managment", "nets.lago.managment", `did you mean "management"?`},
		{"dhcp", "end: 254", "ende", "nets.lago.dhcp.ende", `did you mean "end"?`},
		{"cpu_custom", "'@mode': custom", "topolgy", "domains.vm0.cpu_custom.topolgy", `did you mean "topology"?`},
		{"cpu_custom model", "'#text': Westmere", "'@fallbak'", "domains.vm0.cpu_custom.model.@fallbak", `did you mean "@fallback"?`},
		{"cpu_custom topology", "'@cores': 2", "'@coers'", "domains.vm0.cpu_custom.topology.@coers", `did you mean "@cores"?`},
		{"cpu_custom feature", "'@name': vmx", "'@polcy'", "domains.vm0.cpu_custom.feature[0].@polcy", `did you mean "@policy"?`},
		{"cpu_custom cache", "'@mode': passthrough", "'@levle'", "domains.vm0.cpu_custom.cache.@levle", `did you mean "@level"?`},
		{"cpu_custom numa", "cell:", "cel", "domains.vm0.cpu_custom.numa.cel", `did you mean "cell"?`},
		{"cpu_custom numa cell", "'@unit': MiB", "'@memroy'", "domains.vm0.cpu_custom.numa.cell[0].@memroy", `did you mean "@memory"?`},
		{"cpu_custom no suggestion", "'@mode': custom", "zzz", "domains.vm0.cpu_custom.zzz", "allowed: @check, @deprecated_features"},
	}
	if _, err := parse(t, everyLevel); err != nil {
		t.Fatalf("the base file does not parse: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			lines := strings.Split(everyLevel, "\n")
			at := -1
			for i, l := range lines {
				if strings.TrimSpace(l) == tt.before {
					at = i
					break
				}
			}
			if at < 0 {
				t.Fatalf("no line %q in the base file", tt.before)
			}
			indent := len(lines[at]) - len(strings.TrimLeft(lines[at], " "))
			ins := strings.Repeat(" ", indent) + tt.key + ": 1"
			lines = append(lines[:at], append([]string{ins}, lines[at:]...)...)
			src := strings.Join(lines, "\n")
			_, err := parse(t, src)
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("err = %v, want an ErrorList", err)
			}
			if len(list) != 1 {
				t.Fatalf("want exactly one error, got:\n%v\nfile:\n%s", err, src)
			}
			e := list[0]
			name := strings.Trim(tt.key, "'")
			if e.File != "LagoInitFile" || e.Line != at+1 || e.Column != indent+1 || e.Path != tt.path {
				t.Errorf("error at %s:%d:%d path %q, want LagoInitFile:%d:%d path %q", e.File, e.Line, e.Column, e.Path, at+1, indent+1, tt.path)
			}
			if !strings.HasPrefix(e.Msg, `unknown key "`+name+`"`) || !strings.Contains(e.Msg, tt.hint) {
				t.Errorf("message %q, want unknown key %q and %q", e.Msg, name, tt.hint)
			}
		})
	}
}
