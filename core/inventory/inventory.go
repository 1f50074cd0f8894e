// Package inventory builds the ansible inventory of an environment's VMs,
// as the original's `lago ansible_hosts` did, from values the caller
// passes in: it reads no files and asks no provider, so the CLI verb, the
// Go API and tests share one builder.
//
// Groups come from key paths into each VM's spec (see Build). The
// inventory renders as the original's INI text (INI) and as ansible's
// JSON inventory shape (Document, MarshalJSON), which an inventory
// script can print for `ansible -i`.
package inventory

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/lago-go/lago/core/errs"
)

// DefaultKeys are the key paths the original groups by when none are
// given.
func DefaultKeys() []string { return []string{"vm-type", "groups", "vm-provider"} }

// Names of the host variables the inventory sets itself.
const (
	VarHost     = "ansible_host"
	VarKeyFile  = "ansible_ssh_private_key_file"
	VarUser     = "ansible_user"
	VarPassword = "ansible_password"
)

// Host is one VM as the inventory needs it.
type Host struct {
	Name string
	// Spec is the VM's spec as decoded JSON (virt/vm-<name>, or SpecMap
	// of the typed spec): maps, lists, strings, numbers (float64 or
	// json.Number), booleans and nil. The original's specs always hold
	// vm-type and vm-provider (it writes the defaults in), so the caller
	// should fill them too; SpecMap does.
	Spec map[string]any
	// Address is the management address; empty when the VM has none
	// (its management NIC is on a bridge net). Such a host is still
	// listed, without ansible_host, and named in Inventory.NoAddress: the
	// original crashed on it.
	Address string
	// KeyFile is the prefix's private key.
	KeyFile string
	// User is the ssh user (the spec's ssh-user or the configured one).
	User string
	// Password is the ssh password; it is set as ansible_password only
	// when KeyInstalled is false, since with the key in the guest ansible
	// needs none (and a password in every inventory is one more copy of
	// a secret).
	Password     string
	KeyInstalled bool
	// Vars are further host variables (ansible_ssh_common_args, ...),
	// written after the inventory's own in name order. They may not set
	// the inventory's own variables.
	Vars map[string]string
}

// Var is one host variable.
type Var struct {
	Name, Value string
}

// Group is one inventory group with its hosts in name order.
type Group struct {
	Name  string
	Hosts []string
}

// HostVars is one host of the inventory with its variables, in the order
// the INI text writes them.
type HostVars struct {
	Name string
	Vars []Var
}

// Inventory is the built inventory.
type Inventory struct {
	// Groups are in the order the original created them: VM by VM (in
	// the order given), for each key in turn its values, then the VM's
	// bare groups.
	Groups []Group
	// Hosts are the hosts that are in at least one group, by name. A VM
	// in no group is not in the inventory at all, as in the original.
	Hosts []HostVars
	// NoAddress names the hosts of Hosts without an address, in name
	// order, for the caller to warn about: ansible would connect to them
	// by their name.
	NoAddress []string
}

// Error is a problem of a key path or of a VM's spec that makes the
// inventory impossible; it names the key and the VM. Build returns it
// marked as a user error (core/errs).
type Error struct {
	// Key is the key path as given ("" when the problem is not a key's).
	Key string
	// VM names the VM ("" for a key path that is itself wrong).
	VM     string
	Reason string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("ansible inventory: ")
	if e.VM != "" {
		fmt.Fprintf(&b, "vm %s: ", e.VM)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, "key %q: ", e.Key)
	}
	b.WriteString(e.Reason)
	return b.String()
}

func fail(key, vm, format string, args ...any) error {
	return errs.User(&Error{Key: key, VM: vm, Reason: fmt.Sprintf(format, args...)})
}

// keyPath is a parsed key: the text as given (which names the groups) and
// its components.
type keyPath struct {
	text  string
	parts []string
}

var indexRE = regexp.MustCompile(`^-?[0-9]+$`)

// parseKey checks a key path: '/'-separated keys into the spec, a leading
// '/' allowed (the original's documentation writes both). The original
// let "" and "/" name the whole spec and silently matched nothing for an
// empty component; both are mistakes here, as is text ansible cannot
// have in a group name, since the key is part of every group it makes.
func parseKey(k string) (keyPath, error) {
	if k == "" || k == "/" {
		return keyPath{}, fail(k, "", "empty key path: name a key of the VM spec, such as vm-type or disks/0/metadata/distro")
	}
	if reason := groupNameProblem(k); reason != "" {
		return keyPath{}, fail(k, "", "%s", reason)
	}
	parts := strings.Split(strings.TrimPrefix(k, "/"), "/")
	for i, p := range parts {
		if p == "" {
			return keyPath{}, fail(k, "", "component %d is empty (a '//' or a trailing '/')", i+1)
		}
	}
	return keyPath{text: k, parts: parts}, nil
}

// lookup follows the path through v. A component that is an integer
// indexes a list (negative counts from the end, as in the original's
// Python) or, unlike the original, names that key of a map; any other
// component names a map key. ok is false when the path does not exist in
// this spec: the VM is then in no group of the key.
func (k keyPath) lookup(v any) (any, bool) {
	for _, p := range k.parts {
		switch c := v.(type) {
		case map[string]any:
			x, ok := c[p]
			if !ok {
				return nil, false
			}
			v = x
		case []any, []string:
			list := asList(c)
			if !indexRE.MatchString(p) {
				return nil, false
			}
			i, err := strconv.Atoi(p)
			if err != nil {
				return nil, false
			}
			if i < 0 {
				i += len(list)
			}
			if i < 0 || i >= len(list) {
				return nil, false
			}
			v = list[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// asList returns a list value as []any: decoded JSON has []any, a
// caller's own map may have []string.
func asList(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	}
	return nil
}

// scalarText formats a scalar as the original's str() did (True, 2,
// 1.5); ok is false for nil, maps and lists.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		if x {
			return "True", true
		}
		return "False", true
	case json.Number:
		return x.String(), true
	case float64:
		return floatText(x), true
	case float32:
		return floatText(float64(x)), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case uint32:
		return strconv.FormatUint(uint64(x), 10), true
	}
	return "", false
}

// floatText writes a number decoded as float64: integral ones as
// integers (JSON's 2 was an int to the original), others as Python's
// repr does for the usual magnitudes.
func floatText(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	if a := math.Abs(f); a >= 1e-4 && a < 1e16 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'e', -1, 64)
}

// kind names a value's JSON kind for error messages.
func kind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any, []string:
		return "a list"
	case nil:
		return "null"
	}
	return fmt.Sprintf("a %T", v)
}

// groupNameProblem says why ansible cannot have name as a group name in
// the INI format (its section pattern is `[^:\]\s]+`), or "" if it can.
// The JSON format could hold more, but both print the same inventory.
func groupNameProblem(name string) string {
	switch {
	case name == "":
		return "empty group name"
	case name == "_meta":
		return `"_meta" is reserved by ansible's JSON inventory`
	}
	for _, r := range name {
		switch {
		case r == ':' || r == ']':
			return fmt.Sprintf("%q cannot be in an ansible group name", r)
		case r <= ' ' || r == 0x7f || isSpace(r):
			return "white space or control characters cannot be in an ansible group name"
		}
	}
	return ""
}

// hostNameRE is what a host name may be: ansible reads a host line's
// first word as a host pattern (":port", "[1:3]" ranges, "#" comments),
// so names stay within the characters init files allow for VMs.
var hostNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

var varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// builder collects groups in creation order.
type builder struct {
	order   []string
	members map[string]map[string]bool
}

func (b *builder) add(group, host string) {
	m, ok := b.members[group]
	if !ok {
		m = map[string]bool{}
		b.members[group] = m
		b.order = append(b.order, group)
	}
	m[host] = true
}

// Build makes the inventory of hosts grouped by keys (DefaultKeys when
// keys is empty, as in the original).
//
// For each key, a VM whose spec has a value at the key's path is in the
// group "KEY=VALUE" (KEY as written, so "/disks/0/metadata/distro=el7"),
// or, when the value is a list, in one such group per item; a VM without
// the path (or with null there) is in no group of that key. Each entry of
// the spec's groups also puts the VM in the bare group of its name; a
// groups string is one group (the original took each letter for one).
// A value that is a mapping, or a list item that is a list or mapping,
// is an error naming the VM and key, as is a group name ansible cannot
// read; null list items and empty groups entries are skipped (the
// original made groups "KEY=None" and "" of them).
func Build(hosts []Host, keys []string) (*Inventory, error) {
	if len(keys) == 0 {
		keys = DefaultKeys()
	}
	paths := make([]keyPath, 0, len(keys))
	for _, k := range keys {
		p, err := parseKey(k)
		if err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	b := &builder{members: map[string]map[string]bool{}}
	byName := map[string]*Host{}
	for i := range hosts {
		h := &hosts[i]
		if !hostNameRE.MatchString(h.Name) {
			return nil, fail("", h.Name, "invalid host name %q for ansible: use letters, digits, '.', '_' or '-'", h.Name)
		}
		if _, dup := byName[h.Name]; dup {
			return nil, fail("", h.Name, "two VMs have this name")
		}
		byName[h.Name] = h
		for _, p := range paths {
			if err := groupByKey(b, h, p); err != nil {
				return nil, err
			}
		}
		if err := bareGroups(b, h); err != nil {
			return nil, err
		}
	}
	inv := &Inventory{}
	inGroup := map[string]bool{}
	for _, g := range b.order {
		names := make([]string, 0, len(b.members[g]))
		for n := range b.members[g] {
			names = append(names, n)
			inGroup[n] = true
		}
		sort.Strings(names)
		inv.Groups = append(inv.Groups, Group{Name: g, Hosts: names})
	}
	names := make([]string, 0, len(inGroup))
	for n := range inGroup {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		h := byName[n]
		vars, err := hostVars(h)
		if err != nil {
			return nil, err
		}
		inv.Hosts = append(inv.Hosts, HostVars{Name: n, Vars: vars})
		if h.Address == "" {
			inv.NoAddress = append(inv.NoAddress, n)
		}
	}
	return inv, nil
}

// groupByKey adds h to the groups its value at p gives.
func groupByKey(b *builder, h *Host, p keyPath) error {
	v, ok := p.lookup(map[string]any(h.Spec))
	if !ok || v == nil {
		return nil
	}
	var values []string
	switch x := v.(type) {
	case map[string]any:
		return fail(p.text, h.Name, "the value is a mapping; name a key inside it (%s/KEY)", p.text)
	case []any, []string:
		for i, it := range asList(x) {
			if it == nil {
				continue
			}
			s, ok := scalarText(it)
			if !ok {
				return fail(p.text, h.Name, "item %d of the list is %s; name a key inside it (%s/%d/...)", i, kind(it), p.text, i)
			}
			values = append(values, s)
		}
	default:
		s, ok := scalarText(x)
		if !ok {
			return fail(p.text, h.Name, "unsupported value of type %T", x)
		}
		values = []string{s}
	}
	for _, s := range values {
		g := p.text + "=" + s
		if reason := groupNameProblem(g); reason != "" {
			return fail(p.text, h.Name, "group %q: %s", g, reason)
		}
		b.add(g, h.Name)
	}
	return nil
}

// bareGroups adds h to the group of each entry of its spec's groups.
func bareGroups(b *builder, h *Host) error {
	raw, ok := h.Spec["groups"]
	if !ok || raw == nil {
		return nil
	}
	var names []string
	switch x := raw.(type) {
	case []any, []string:
		for i, it := range asList(x) {
			if it == nil {
				continue
			}
			s, ok := scalarText(it)
			if !ok {
				return fail("", h.Name, "groups: item %d is %s, want a group name", i, kind(it))
			}
			names = append(names, s)
		}
	default:
		s, ok := scalarText(x)
		if !ok {
			return fail("", h.Name, "groups: want a group name or a list of them, got %s", kind(x))
		}
		names = []string{s}
	}
	for _, g := range names {
		if g == "" {
			continue
		}
		if reason := groupNameProblem(g); reason != "" {
			return fail("", h.Name, "groups: %q: %s", g, reason)
		}
		b.add(g, h.Name)
	}
	return nil
}

// hostVars lists h's variables in the order the INI text writes them:
// the original's ansible_host and ansible_ssh_private_key_file, then the
// user and the password ansible needs, then the caller's.
func hostVars(h *Host) ([]Var, error) {
	var vars []Var
	if h.Address != "" {
		vars = append(vars, Var{VarHost, h.Address})
	}
	if h.KeyFile != "" {
		vars = append(vars, Var{VarKeyFile, h.KeyFile})
	}
	if h.User != "" {
		vars = append(vars, Var{VarUser, h.User})
	}
	if !h.KeyInstalled && h.Password != "" {
		vars = append(vars, Var{VarPassword, h.Password})
	}
	extra := make([]string, 0, len(h.Vars))
	for n := range h.Vars {
		extra = append(extra, n)
	}
	sort.Strings(extra)
	for _, n := range extra {
		switch {
		case !varNameRE.MatchString(n):
			return nil, fail("", h.Name, "invalid host variable name %q", n)
		case n == VarHost || n == VarKeyFile || n == VarUser || n == VarPassword:
			return nil, fail("", h.Name, "host variable %s is the inventory's own; set it through Host", n)
		}
		vars = append(vars, Var{n, h.Vars[n]})
	}
	return vars, nil
}

// Group returns the hosts of the named group, or nil.
func (inv *Inventory) Group(name string) []string {
	for _, g := range inv.Groups {
		if g.Name == name {
			return g.Hosts
		}
	}
	return nil
}

// HostVarsOf returns the variables of the named host as a map, or nil.
func (inv *Inventory) HostVarsOf(name string) map[string]string {
	for _, h := range inv.Hosts {
		if h.Name == name {
			m := make(map[string]string, len(h.Vars))
			for _, v := range h.Vars {
				m[v.Name] = v.Value
			}
			return m
		}
	}
	return nil
}
