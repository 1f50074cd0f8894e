// Package initfile reads and validates a Lago init file (YAML, or JSON,
// which is read as YAML so that every value keeps its line and column) and
// turns it into the specs of core/spec.
//
// Everything is checked before anything is created: Parse returns all the
// problems of a file at once as an ErrorList, each naming
// file:line:column, the field path and what is allowed.
//
// Choices where the original is vague or wrong (documented for users):
//   - memory is an integer count of MiB; strings such as "2G" are
//     rejected; it defaults to 1024 when missing. vcpu defaults to 2.
//   - A disk's dev defaults to vda, vdb, ... by position, its name to its
//     dev, its format to qcow2 (raw for iso), its type to template when
//     template_name is given.
//   - The management net is the one with management: true, else the
//     alphabetically first nat net, else the alphabetically first bridge
//     net (the original takes the first net of any type). A bridge
//     management net gives its NICs no address: lago reaches such VMs
//     only when it can learn their address.
//   - $VARS ($LAGO_INITFILE_PATH, $LAGO_PREFIX_PATH, $LAGO_WORKDIR_PATH
//     and any environment variable; unknown ones are left as written,
//     like Python's os.path.expandvars) are expanded where the original
//     expands them: disk path and url, and metadata.deploy-scripts.
//     Relative paths there are made absolute against the current folder.
//   - based-on: <domain> deep-merges the base domain (mappings merge key
//     by key, the inheriting domain's values win, lists are replaced);
//     chains are followed, cycles and unknown bases are errors.
package initfile

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/lago-go/lago/core/spec"
)

// Environment variable names set while the init file is read.
const (
	VarInitFilePath = "LAGO_INITFILE_PATH"
	VarPrefixPath   = "LAGO_PREFIX_PATH"
	VarWorkdirPath  = "LAGO_WORKDIR_PATH"
)

// DefaultMemory is the memory (MiB) of a domain that names none.
const DefaultMemory = 1024

// Options tune Parse.
type Options struct {
	// PrefixPath and WorkdirPath are the values of $LAGO_PREFIX_PATH and
	// $LAGO_WORKDIR_PATH while reading the file (the prefix need not
	// exist yet).
	PrefixPath  string
	WorkdirPath string
	// LookupEnv resolves other $VARS; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// SkipPathChecks turns off the checks that local files named by the
	// init file (disk paths, deploy scripts) exist.
	SkipPathChecks bool
	// CheckGateway, when set, vets each explicit gw: (for example that the
	// subnet leaser serves it), so a bad one is reported with its position
	// before anything is created. Its error message is shown as is.
	CheckGateway func(gw netip.Addr) error
}

// Config is a validated init file. Nets and VMs keep the file's order,
// which decides IP allocation. VMs have based-on resolved and defaults
// filled; NIC IPs are the static ones only; Allocate gives the rest.
type Config struct {
	// File is the init file's path as given.
	File    string
	Nets    []spec.Net
	VMs     []spec.VM
	MgmtNet string

	// pos is where some fields were written (vm-type, build steps), for
	// the errors found after parsing, when the plugins are asked.
	pos map[string][2]int
}

// Errorf returns an *Error for the field at path (such as
// domains.vm0.vm-type), with its position when the file gave one, that
// wraps err: problems found after parsing (a vm type or a builder no
// plugin serves) name the line like those found while parsing.
func (c *Config) Errorf(path string, err error) *Error {
	e := &Error{File: c.File, Path: path, Msg: err.Error(), Err: err}
	if p, ok := c.pos[path]; ok {
		e.Line, e.Column = p[0], p[1]
	}
	return e
}

// Load reads and parses the init file at path.
func Load(path string, opts Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read init file: %w", err)
	}
	return Parse(path, data, opts)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse parses and validates data, the content of the init file named
// file. A problem of the file is returned as an ErrorList.
func Parse(file string, data []byte, opts Options) (*Config, error) {
	d := &decoder{file: file, opts: opts}
	if d.opts.LookupEnv == nil {
		d.opts.LookupEnv = os.LookupEnv
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		e := &Error{File: file, Msg: "not valid YAML or JSON: " + err.Error()}
		for _, line := range strings.Split(err.Error(), "\n") {
			line = strings.TrimSpace(line)
			if m := yamlLineRE.FindStringSubmatch(line); m != nil {
				e.Line, _ = strconv.Atoi(m[1])
				e.Column = 1
				e.Msg = "not valid YAML or JSON: " + m[2]
				break
			}
		}
		return nil, ErrorList{e}
	}
	c := &converter{file: file, seen: map[*yaml.Node]*node{}, sizes: map[*node]int{}, busy: map[*yaml.Node]bool{}}
	root, err := c.convert(&doc, "", 0)
	if err != nil {
		return nil, ErrorList{{File: file, Line: 1, Column: 1, Msg: err.Error()}}
	}
	d.errs = c.errs
	cfg := d.decodeRoot(root)
	if len(d.errs) > 0 {
		d.errs.sort()
		return nil, d.errs
	}
	cfg.File = file
	cfg.pos = d.pos
	return cfg, nil
}

// decoder turns the tree into specs, collecting every problem.
type decoder struct {
	file string
	opts Options
	errs ErrorList
	pos  map[string][2]int
}

// mark records where the field at path was written (see Config.Errorf).
func (d *decoder) mark(n *node, path string) {
	if n == nil || n.line == 0 {
		return
	}
	if d.pos == nil {
		d.pos = map[string][2]int{}
	}
	d.pos[path] = [2]int{n.line, n.col}
}

func (d *decoder) errorf(n *node, path, format string, args ...any) {
	e := &Error{File: d.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.line, n.col
	}
	d.errs = append(d.errs, e)
}

// checkKeys reports keys of n not in allowed, with a did-you-mean hint.
func (d *decoder) checkKeys(n *node, path string, allowed []string) {
	for _, k := range n.keys {
		if contains(allowed, k.value) {
			continue
		}
		msg := fmt.Sprintf("unknown key %q", truncate(k.value, 40))
		if s := suggest(k.value, allowed); s != "" {
			msg += fmt.Sprintf(", did you mean %q?", s)
		} else {
			msg += "; allowed: " + strings.Join(sorted(allowed), ", ")
		}
		d.errorf(k, joinPath(path, k.value), "%s", msg)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func sorted(l []string) []string {
	out := append([]string(nil), l...)
	sort.Strings(out)
	return out
}

func (d *decoder) wantMap(n *node, path, what string) bool {
	if n.kind != kMap {
		d.errorf(n, path, "want %s (a mapping), got %s", what, n.describe())
		return false
	}
	return true
}

// str reads a scalar as a string; numbers and booleans are taken as
// written (ssh-password: 123456 is the string "123456").
func (d *decoder) str(n *node, path string) (string, bool) {
	if n.kind != kScalar || n.tag == "!!null" {
		d.errorf(n, path, "want a string, got %s", n.describe())
		return "", false
	}
	return n.value, true
}

func (d *decoder) integer(n *node, path string, lo, hi int, unit string) (int, bool) {
	if n.kind != kScalar || n.tag != "!!int" {
		d.errorf(n, path, "want an integer%s from %d to %d, got %s", unit, lo, hi, n.describe())
		return 0, false
	}
	v, err := strconv.ParseInt(n.value, 0, 64)
	if err != nil || v < int64(lo) || v > int64(hi) {
		d.errorf(n, path, "want an integer%s from %d to %d, got %s", unit, lo, hi, n.value)
		return 0, false
	}
	return int(v), true
}

func (d *decoder) boolean(n *node, path string) (bool, bool) {
	if n.kind != kScalar || n.tag != "!!bool" {
		d.errorf(n, path, "want true or false, got %s", n.describe())
		return false, false
	}
	var b bool
	if err := (&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: n.value}).Decode(&b); err != nil {
		d.errorf(n, path, "want true or false, got %s", n.describe())
		return false, false
	}
	return b, true
}

func (d *decoder) strList(n *node, path string) ([]string, bool) {
	if n.kind != kSeq {
		d.errorf(n, path, "want a list of strings, got %s", n.describe())
		return nil, false
	}
	out := make([]string, 0, len(n.items))
	ok := true
	for i, it := range n.items {
		s, good := d.str(it, fmt.Sprintf("%s[%d]", path, i))
		ok = ok && good
		out = append(out, s)
	}
	return out, ok
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

func (d *decoder) checkName(k *node, path, what string) bool {
	if !nameRE.MatchString(k.value) {
		d.errorf(k, path, "invalid %s name %q: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", what, truncate(k.value, 40))
		return false
	}
	return true
}

// expand expands $VAR and ${VAR} the way Python's os.path.expandvars
// does: unknown variables are left as written.
func (d *decoder) expand(s string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		var name string
		var end int
		if s[i+1] == '{' {
			j := strings.IndexByte(s[i+2:], '}')
			if j < 0 {
				b.WriteByte(s[i])
				i++
				continue
			}
			name, end = s[i+2:i+2+j], i+3+j
		} else {
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			name, end = s[i+1:j], j
		}
		if v, ok := d.lookup(name); ok && name != "" {
			b.WriteString(v)
		} else {
			b.WriteString(s[i:end])
		}
		i = end
	}
	return b.String()
}

func (d *decoder) lookup(name string) (string, bool) {
	switch name {
	case VarInitFilePath:
		abs, err := filepath.Abs(d.file)
		if err != nil {
			return "", false
		}
		return filepath.Dir(abs), true
	case VarPrefixPath:
		if d.opts.PrefixPath != "" {
			return d.opts.PrefixPath, true
		}
	case VarWorkdirPath:
		if d.opts.WorkdirPath != "" {
			return d.opts.WorkdirPath, true
		}
	}
	return d.opts.LookupEnv(name)
}

// localPath expands and absolutises a path the user names in the init
// file, and checks that it exists unless told not to.
func (d *decoder) localPath(n *node, path, what string) (string, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return "", false
	}
	p := d.expand(s)
	if p == "" {
		d.errorf(n, path, "empty %s", what)
		return "", false
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	if !d.opts.SkipPathChecks {
		st, err := os.Stat(p)
		if err != nil {
			d.errorf(n, path, "%s %s does not exist or cannot be read", what, p)
			return p, false
		}
		if st.IsDir() {
			d.errorf(n, path, "%s %s is a folder, want a file", what, p)
			return p, false
		}
	}
	return p, true
}

func (d *decoder) decodeRoot(root *node) *Config {
	cfg := &Config{}
	if root.isNull() {
		d.errorf(root, "", "empty init file: want a mapping with domains and nets")
		return cfg
	}
	if !d.wantMap(root, "", "the init file's top level") {
		return cfg
	}
	d.checkKeys(root, "", []string{"domains", "nets"})
	nets := d.decodeNets(root.get("nets"))
	vms := d.decodeDomains(root.get("domains"))
	if dn := root.get("domains"); dn == nil {
		d.errorf(root, "domains", "missing: the init file needs a domains section with at least one VM")
	} else if dn.isNull() || (dn.kind == kMap && len(dn.keys) == 0) {
		d.errorf(dn, "domains", "empty: define at least one VM")
	}
	d.checkNetwork(cfg, nets, vms)
	d.checkCollisions(vms)
	for _, n := range nets {
		cfg.Nets = append(cfg.Nets, n.net)
	}
	for _, v := range vms {
		cfg.VMs = append(cfg.VMs, v.vm)
	}
	return cfg
}
