package initfile

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"

	"github.com/lago-go/lago/core/spec"
)

var domainKeys = []string{
	"memory", "vcpu", "cpu_model", "cpu_custom", "numa", "nics", "disks",
	"artifacts", "groups", "bootstrap", "ssh-user", "ssh-password",
	"root-password", "vm-provider", "vm-type", "service_provider",
	"metadata", "based-on", "distro",
}

var diskKeys = []string{
	"name", "dev", "type", "format", "size", "template_name",
	"template_version", "template_repo", "template_type", "path", "url",
	"make_a_copy", "build", "metadata",
}

// vmInfo is a decoded domain with the nodes later checks point at.
type vmInfo struct {
	vm   spec.VM
	path string
	key  *node
	node *node
	nics []nicInfo
}

type nicInfo struct {
	path string
	node *node
	net  *node
	ip   *node
}

// decodeDomains decodes every domain after resolving based-on.
func (d *decoder) decodeDomains(n *node) []*vmInfo {
	if n == nil || n.isNull() {
		return nil
	}
	if !d.wantMap(n, "domains", "domains, a mapping of VM name to VM") {
		return nil
	}
	raw := map[string]*node{}
	for i, k := range n.keys {
		raw[k.value] = n.vals[i]
	}
	r := &resolver{d: d, raw: raw, done: map[string]*node{}, state: map[string]int{}}
	var out []*vmInfo
	for _, k := range n.keys {
		path := "domains." + k.value
		d.checkName(k, path, "VM")
		merged := r.resolve(k.value, path)
		vi := &vmInfo{path: path, key: k, node: merged}
		d.decodeDomain(vi)
		out = append(out, vi)
	}
	return out
}

// resolver follows based-on chains, reporting unknown bases and cycles.
type resolver struct {
	d     *decoder
	raw   map[string]*node
	done  map[string]*node
	state map[string]int // 1 = in progress
}

func (r *resolver) resolve(name, path string) *node {
	if n, ok := r.done[name]; ok {
		return n
	}
	n := r.raw[name]
	if n.kind != kMap {
		return n
	}
	b := n.get("based-on")
	if b == nil {
		r.done[name] = n
		return n
	}
	bp := path + ".based-on"
	base, ok := r.d.str(b, bp)
	switch {
	case !ok:
	case r.raw[base] == nil:
		msg := fmt.Sprintf("unknown domain %q", truncate(base, 40))
		names := make([]string, 0, len(r.raw))
		for k := range r.raw {
			names = append(names, k)
		}
		if s := suggest(base, names); s != "" {
			msg += fmt.Sprintf(", did you mean %q?", s)
		}
		r.d.errorf(b, bp, "%s: based-on must name another domain of this file", msg)
	case base == name || r.state[base] == 1:
		r.d.errorf(b, bp, "based-on cycle: %s inherits from itself through %q", name, base)
	default:
		r.state[name] = 1
		bn := r.resolve(base, "domains."+base)
		delete(r.state, name)
		n = mergeNodes(bn, n)
	}
	r.done[name] = n
	return n
}

func (d *decoder) decodeDomain(vi *vmInfo) {
	n, path := vi.node, vi.path
	vm := &vi.vm
	vm.Name = vi.key.value
	vm.Memory = DefaultMemory
	vm.VCPU = spec.DefaultVCPU
	if n.isNull() {
		d.errorf(n, path, "empty domain: a VM needs at least nics")
		return
	}
	if !d.wantMap(n, path, "a domain") {
		return
	}
	d.checkKeys(n, path, domainKeys)
	if v := n.get("memory"); v != nil {
		vm.Memory, _ = d.integer(v, path+".memory", 16, 1<<30, " of MiB")
	}
	if v := n.get("vcpu"); v != nil {
		vm.VCPU, _ = d.integer(v, path+".vcpu", 1, 4096, "")
	}
	if v := n.get("cpu_model"); v != nil {
		vm.CPUModel, _ = d.str(v, path+".cpu_model")
	}
	if v := n.get("cpu_custom"); v != nil {
		if d.wantMap(v, path+".cpu_custom", "cpu_custom, the <cpu> element written as a mapping") {
			d.checkCPUCustom(v, path+".cpu_custom", "cpu")
			vm.CPUCustom, _ = toAny(v).(map[string]any)
		}
		if n.get("cpu_model") != nil {
			d.errorf(v, path+".cpu_custom", "cpu_model and cpu_custom exclude each other: keep one")
		}
	}
	if v := n.get("numa"); v != nil {
		vm.Numa = d.decodeNuma(v, path+".numa")
	}
	if v := n.get("nics"); v != nil {
		p := path + ".nics"
		if v.kind != kSeq {
			d.errorf(v, p, "want a list of NICs such as [{net: lago}], got %s", v.describe())
		} else {
			for i, it := range v.items {
				vi.nics = append(vi.nics, d.decodeNIC(vm, it, fmt.Sprintf("%s[%d]", p, i)))
			}
		}
	}
	if v := n.get("disks"); v != nil {
		p := path + ".disks"
		if v.kind != kSeq {
			d.errorf(v, p, "want a list of disks, got %s", v.describe())
		} else {
			for i, it := range v.items {
				d.decodeDisk(vm, it, fmt.Sprintf("%s[%d]", p, i), i)
			}
		}
		d.checkDisksUnique(vm, v, p)
	}
	if v := n.get("artifacts"); v != nil {
		vm.Artifacts, _ = d.strList(v, path+".artifacts")
	}
	if v := n.get("groups"); v != nil {
		if v.kind == kScalar && !v.isNull() {
			vm.Groups = spec.StringList{v.value}
		} else {
			l, _ := d.strList(v, path+".groups")
			vm.Groups = l
		}
	}
	if v := n.get("bootstrap"); v != nil {
		if b, ok := d.boolean(v, path+".bootstrap"); ok {
			vm.Bootstrap = &b
		}
	}
	strField := func(key string, dst *string) {
		if v := n.get(key); v != nil {
			*dst, _ = d.str(v, path+"."+key)
		}
	}
	strField("ssh-user", &vm.SSHUser)
	strField("ssh-password", &vm.SSHPassword)
	strField("root-password", &vm.RootPassword)
	strField("vm-provider", &vm.VMProvider)
	strField("vm-type", &vm.VMType)
	d.mark(n.get("vm-type"), path+".vm-type")
	strField("service_provider", &vm.ServiceProvider)
	strField("distro", &vm.Distro)
	if v := n.get("metadata"); v != nil {
		d.decodeMetadata(vm, v, path+".metadata")
	}
}

// cpuCustomKeys lists, for the elements of libvirt's <cpu> (domain XML,
// "CPU model and topology") whose content is fixed, the attributes
// ('@name'), text ('#text') and child elements they may hold, by element
// path. libvirt ignores what it does not know in there, so a misspelt key
// such as topolgy or '@cores ' would silently give the guest another CPU;
// elements not listed here (distances, a NUMA cell's cache, interconnects)
// are passed on unchecked.
var cpuCustomKeys = map[string][]string{
	"cpu": {"@mode", "@match", "@check", "@migratable", "@deprecated_features",
		"model", "vendor", "topology", "cache", "feature", "numa", "maxphysaddr"},
	"cpu.model":       {"@fallback", "@vendor_id", "#text"},
	"cpu.vendor":      {"#text"},
	"cpu.topology":    {"@sockets", "@dies", "@clusters", "@cores", "@threads"},
	"cpu.cache":       {"@level", "@mode"},
	"cpu.feature":     {"@policy", "@name"},
	"cpu.maxphysaddr": {"@mode", "@bits", "@limit"},
	"cpu.numa":        {"cell", "interconnects"},
	"cpu.numa.cell":   {"@id", "@cpus", "@memory", "@unit", "@memAccess", "@discard", "distances", "cache"},
}

// checkCPUCustom checks the keys of cpu_custom's element at elem (a path
// of cpuCustomKeys) and of its known children. A list repeats the element
// (feature, cell); a scalar is the element's text.
func (d *decoder) checkCPUCustom(n *node, path, elem string) {
	allowed, known := cpuCustomKeys[elem]
	if !known {
		return
	}
	switch n.kind {
	case kSeq:
		for i, it := range n.items {
			d.checkCPUCustom(it, fmt.Sprintf("%s[%d]", path, i), elem)
		}
		return
	case kScalar:
		return
	}
	d.checkKeys(n, path, allowed)
	for i, k := range n.keys {
		if !strings.HasPrefix(k.value, "@") && k.value != "#text" {
			d.checkCPUCustom(n.vals[i], joinPath(path, k.value), elem+"."+k.value)
		}
	}
}

func (d *decoder) decodeNuma(n *node, path string) []spec.NumaCell {
	if n.kind != kSeq {
		d.errorf(n, path, "want a list of cells such as [{id: 0, cpus: 0-1, memory: 1024}], got %s", n.describe())
		return nil
	}
	var out []spec.NumaCell
	for i, it := range n.items {
		p := fmt.Sprintf("%s[%d]", path, i)
		if !d.wantMap(it, p, "a NUMA cell {id, cpus, memory}") {
			continue
		}
		d.checkKeys(it, p, []string{"id", "cpus", "memory"})
		c := spec.NumaCell{ID: i}
		if v := it.get("id"); v != nil {
			c.ID, _ = d.integer(v, p+".id", 0, 1023, "")
		}
		if v := it.get("cpus"); v != nil {
			c.CPUs, _ = d.str(v, p+".cpus")
		} else {
			d.errorf(it, p+".cpus", "missing: say which vCPUs the cell holds, such as 0-1")
		}
		if v := it.get("memory"); v != nil {
			c.Memory, _ = d.integer(v, p+".memory", 1, 1<<30, " of MiB")
		} else {
			d.errorf(it, p+".memory", "missing: the cell's memory in MiB")
		}
		out = append(out, c)
	}
	return out
}

func (d *decoder) decodeNIC(vm *spec.VM, n *node, path string) nicInfo {
	ni := nicInfo{path: path, node: n}
	if !d.wantMap(n, path, "a NIC such as {net: lago, ip: 192.168.220.2}") {
		vm.NICs = append(vm.NICs, spec.NIC{})
		return ni
	}
	d.checkKeys(n, path, []string{"net", "ip", "mtu"})
	var nic spec.NIC
	if v := n.get("net"); v != nil {
		ni.net = v
		nic.Net, _ = d.str(v, path+".net")
	} else {
		d.errorf(n, path+".net", "missing: name the net this NIC is on")
	}
	if v := n.get("ip"); v != nil {
		if s, ok := d.str(v, path+".ip"); ok {
			a, err := netip.ParseAddr(s)
			if err != nil || !a.Is4() {
				d.errorf(v, path+".ip", "want an IPv4 address such as 192.168.220.2, got %q", truncate(s, 40))
			} else {
				ni.ip = v
				nic.IP = a.String()
			}
		}
	}
	if v := n.get("mtu"); v != nil {
		nic.MTU, _ = d.integer(v, path+".mtu", 68, 65535, "")
	}
	vm.NICs = append(vm.NICs, nic)
	return ni
}

var devRE = regexp.MustCompile(`^(vd|sd|hd|xvd)[a-z]{1,3}$`)
var diskNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

func (d *decoder) decodeDisk(vm *spec.VM, n *node, path string, idx int) {
	if !d.wantMap(n, path, "a disk") {
		return
	}
	d.checkKeys(n, path, diskKeys)
	disk := spec.Disk{}
	get := func(key string) (*node, string) { return n.get(key), path + "." + key }
	str := func(key string) string {
		if v, p := get(key); v != nil {
			s, _ := d.str(v, p)
			return s
		}
		return ""
	}
	disk.Dev = str("dev")
	if v, p := get("dev"); v != nil && v.kind == kScalar && !v.isNull() && !devRE.MatchString(disk.Dev) {
		d.errorf(v, p, "invalid device %q: want vdX (virtio), sdX (virtio-scsi), hdX or xvdX", truncate(disk.Dev, 40))
	}
	if n.get("dev") == nil {
		disk.Dev = "vd" + devLetters(idx)
	}
	disk.Name = str("name")
	if v, p := get("name"); v != nil && v.kind == kScalar && !v.isNull() && !diskNameRE.MatchString(disk.Name) {
		d.errorf(v, p, "invalid disk name %q: use letters, digits, '.', '_' or '-'", truncate(disk.Name, 40))
	}
	if disk.Name == "" {
		disk.Name = disk.Dev
	}
	disk.TemplateName = str("template_name")
	disk.TemplateVersion = str("template_version")
	disk.TemplateRepo = str("template_repo")
	disk.TemplateType = str("template_type")
	disk.Type = str("type")
	tv, tp := get("type")
	switch {
	case tv == nil && disk.TemplateName != "":
		disk.Type = spec.DiskTemplate
	case tv == nil:
		d.errorf(n, tp, "missing: want template, file, empty or iso")
	case disk.Type != spec.DiskTemplate && disk.Type != spec.DiskFile && disk.Type != spec.DiskEmpty && disk.Type != spec.DiskISO:
		if disk.Type != "" {
			d.errorf(tv, tp, "unknown disk type %q: want template, file, empty or iso", truncate(disk.Type, 40))
		}
	}
	disk.Format = str("format")
	fv, fp := get("format")
	switch {
	case fv == nil && disk.Type == spec.DiskISO:
		disk.Format = "raw"
	case fv == nil:
		disk.Format = spec.DefaultDiskFormat
	case disk.Format == "iso" && disk.Type == spec.DiskISO:
		disk.Format = "raw"
	case disk.Format != "qcow2" && disk.Format != "raw" && disk.Format != "":
		d.errorf(fv, fp, "unknown format %q: want qcow2 or raw", truncate(disk.Format, 40))
	}
	if v, p := get("size"); v != nil {
		if v.kind == kScalar && v.tag == "!!int" {
			d.errorf(v, p, "size %s has no unit: write it with one, such as 10G or 512M", v.value)
		} else if s, ok := d.str(v, p); ok {
			if _, err := spec.ParseSize(s); err != nil {
				d.errorf(v, p, "invalid size %q: want a number with a K, M, G or T suffix, such as 10G", truncate(s, 40))
			} else {
				disk.Size = s
			}
		}
	}
	if v, p := get("make_a_copy"); v != nil {
		disk.MakeACopy, _ = d.boolean(v, p)
	}
	pathNode, pathP := get("path")
	urlNode, urlP := get("url")
	if urlNode != nil {
		if s, ok := d.str(urlNode, urlP); ok {
			disk.URL = d.expand(s)
			u, err := url.Parse(disk.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Scheme != "file" && u.Host == "") {
				d.errorf(urlNode, urlP, "invalid url %q: want an http, https or file URL", truncate(disk.URL, 60))
			}
		}
	}
	if pathNode != nil {
		disk.Path, _ = d.localPath(pathNode, pathP, "disk image")
	}
	if v, p := get("build"); v != nil {
		disk.Build = d.decodeBuild(v, p)
	}
	if v, p := get("metadata"); v != nil {
		if d.wantMap(v, p, "disk metadata") {
			disk.Metadata, _ = toAny(v).(map[string]any)
		}
	}
	d.checkDiskType(&disk, n, path)
	vm.Disks = append(vm.Disks, disk)
}

// checkDiskType enforces the keys each disk type needs and allows.
func (d *decoder) checkDiskType(disk *spec.Disk, n *node, path string) {
	only := func(key string, types ...string) {
		if v := n.get(key); v != nil && !contains(types, disk.Type) {
			d.errorf(keyOf(n, key), path+"."+key, "%s applies only to %s disks, not %s", key, strings.Join(types, " and "), disk.Type)
		}
	}
	only("template_name", spec.DiskTemplate)
	only("template_version", spec.DiskTemplate)
	only("template_repo", spec.DiskTemplate)
	only("template_type", spec.DiskTemplate)
	only("size", spec.DiskTemplate, spec.DiskEmpty)
	only("make_a_copy", spec.DiskFile)
	only("url", spec.DiskFile, spec.DiskISO)
	only("path", spec.DiskFile, spec.DiskISO, spec.DiskTemplate)
	switch disk.Type {
	case spec.DiskTemplate:
		tt := disk.TemplateType
		if tt != "" && tt != "lago" && tt != "qcow2" {
			d.errorf(n.get("template_type"), path+".template_type", "unknown template_type %q: want lago or qcow2", truncate(tt, 40))
		}
		if tt == "qcow2" {
			if n.get("path") == nil {
				d.errorf(n, path+".path", "missing: a template disk of template_type qcow2 needs the path of its image")
			}
		} else {
			if n.get("template_name") == nil {
				d.errorf(n, path+".template_name", "missing: a template disk needs template_name")
			}
			if n.get("path") != nil {
				d.errorf(keyOf(n, "path"), path+".path", "path applies to template disks only with template_type: qcow2")
			}
		}
	case spec.DiskEmpty:
		if n.get("size") == nil {
			d.errorf(n, path+".size", "missing: an empty disk needs a size, such as 10G")
		}
	case spec.DiskFile, spec.DiskISO:
		hasPath, hasURL := n.get("path") != nil, n.get("url") != nil
		switch {
		case !hasPath && !hasURL:
			d.errorf(n, path+".path", "missing: a %s disk needs path or url", disk.Type)
		case hasPath && hasURL:
			d.errorf(keyOf(n, "url"), path+".url", "a %s disk takes path or url, not both", disk.Type)
		}
	}
}

func (d *decoder) checkDisksUnique(vm *spec.VM, n *node, path string) {
	devs, names := map[string]int{}, map[string]int{}
	for i, disk := range vm.Disks {
		if i >= len(n.items) {
			break
		}
		p := fmt.Sprintf("%s[%d]", path, i)
		if j, dup := devs[disk.Dev]; dup {
			d.errorf(n.items[i], p+".dev", "device %s is already used by disk %d", disk.Dev, j)
		} else {
			devs[disk.Dev] = i
		}
		if j, dup := names[disk.Name]; dup {
			d.errorf(n.items[i], p+".name", "disk name %s is already used by disk %d; image files are named <vm>_<disk>", disk.Name, j)
		} else {
			names[disk.Name] = i
		}
	}
}

// devLetters gives a, b, ..., z, aa, ab, ... for i = 0, 1, ...
func devLetters(i int) string {
	s := ""
	for i >= 0 {
		s = string(rune('a'+i%26)) + s
		i = i/26 - 1
	}
	return s
}

func (d *decoder) decodeBuild(n *node, path string) []spec.BuildStep {
	if n.kind != kSeq {
		d.errorf(n, path, "want a list of steps such as [{virt-customize: {ssh-inject: ''}}], got %s", n.describe())
		return nil
	}
	var out []spec.BuildStep
	for i, it := range n.items {
		p := fmt.Sprintf("%s[%d]", path, i)
		if it.kind != kMap || len(it.keys) != 1 {
			d.errorf(it, p, "want one builder per step, such as {virt-customize: {option: arg}}")
			continue
		}
		step := spec.BuildStep{Builder: it.keys[0].value}
		d.mark(it.keys[0], p)
		bp := joinPath(p, step.Builder)
		opts := it.vals[0]
		if !d.wantMap(opts, bp, "the builder's options, a mapping of option to argument") {
			continue
		}
		for j, k := range opts.keys {
			op := joinPath(bp, k.value)
			o := spec.BuildOption{Name: k.value}
			v := opts.vals[j]
			switch {
			case v.kind == kSeq:
				o.IsList = true
				for x, e := range v.items {
					if e.kind != kScalar {
						d.errorf(e, fmt.Sprintf("%s[%d]", op, x), "want a string, got %s", e.describe())
						continue
					}
					o.Values = append(o.Values, scalarText(e))
				}
			case v.kind == kScalar:
				o.Values = []string{scalarText(v)}
			default:
				d.errorf(v, op, "want a string or a list of strings, got %s", v.describe())
			}
			step.Options = append(step.Options, o)
		}
		out = append(out, step)
	}
	return out
}

func scalarText(n *node) string {
	if n.tag == "!!null" {
		return ""
	}
	return n.value
}

func (d *decoder) decodeMetadata(vm *spec.VM, n *node, path string) {
	if !d.wantMap(n, path, "metadata") {
		return
	}
	md, _ := toAny(n).(map[string]any)
	if v := n.get("deploy-scripts"); v != nil {
		p := path + ".deploy-scripts"
		if v.kind != kSeq {
			d.errorf(v, p, "want a list of script paths, got %s", v.describe())
		} else {
			scripts := make([]any, 0, len(v.items))
			for i, it := range v.items {
				s, _ := d.localPath(it, fmt.Sprintf("%s[%d]", p, i), "deploy script")
				scripts = append(scripts, s)
			}
			md["deploy-scripts"] = scripts
		}
	}
	vm.Metadata = md
}
