// Package prefix reads and writes the on-disk layout of workdirs and
// prefixes, compatible with the original Lago:
//
//	.lago/                 workdir
//	  current -> default   relative symlink; a folder without it is not a workdir
//	  default/             a prefix (every subfolder but current)
//	    initialized        empty marker, written last by init
//	    uuid               32 hex chars, no trailing newline
//	    id_rsa, id_rsa.pub the prefix's ssh key pair (id_rsa mode 0600)
//	    logs/ images/ scripts/
//	    metadata           {"lago_version": "..."}
//	    virt/env           {"nets": [names], "vms": [names]}
//	    virt/net-<name>    spec.Net as JSON
//	    virt/vm-<name>     spec.VM as JSON, mode 0600 (it holds passwords)
//	    known_hosts        the guests' ssh host keys
//	    logs/<vm>.serial.log  a VM's serial console
//
// This package is the one reader and writer of these files: every other
// package (env's Environment included) goes through Load, LoadPartial and
// Save, so the file names and the defaults a spec gets when it leaves a
// key out (a net without a type is nat) are decided once.
//
// Init is all-or-nothing: Create makes the folder and writes the uuid
// first and MarkInitialized writes `initialized` last, so a prefix a failed
// init left behind has a uuid but no marker. Such a half-made prefix is
// still found when named explicitly or pointed at by `current`, so that
// destroy can remove it. Every file is written atomically.
package prefix

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lago-go/lago/core/spec"
)

// File and folder names inside a prefix.
const (
	InitializedFile = "initialized"
	UUIDFile        = "uuid"
	PrivateKeyFile  = "id_rsa"
	PublicKeyFile   = "id_rsa.pub"
	MetadataFile    = "metadata"
	LogsDir         = "logs"
	LogFile         = "lago.log"
	ImagesDir       = "images"
	ScriptsDir      = "scripts"
	VirtDir         = "virt"
	EnvFile         = "env"
	KnownHostsFile  = "known_hosts"
	// NetFilePrefix and VMFilePrefix start the names of the spec files
	// in virt/: net-<name> and vm-<name>.
	NetFilePrefix = "net-"
	VMFilePrefix  = "vm-"
	// SerialLogSuffix ends a VM's serial log in logs/: <vm>.serial.log.
	SerialLogSuffix = ".serial.log"
)

// ErrNotInitialized is returned for a prefix whose init never finished.
var ErrNotInitialized = errors.New("prefix is not initialized (a failed or running init left it; lago destroy removes it)")

// Prefix is one environment's folder.
type Prefix struct {
	// Path is the prefix folder, absolute.
	Path string
	// Name is the prefix's name in its workdir ("" when it has none).
	Name string
	// Workdir is the workdir holding the prefix, or nil for a prefix
	// found on its own (the original's old layout or --prefix-path).
	Workdir *Workdir
}

// Paths of the prefix's files.
func (p *Prefix) UUIDPath() string              { return filepath.Join(p.Path, UUIDFile) }
func (p *Prefix) InitializedPath() string       { return filepath.Join(p.Path, InitializedFile) }
func (p *Prefix) PrivateKeyPath() string        { return filepath.Join(p.Path, PrivateKeyFile) }
func (p *Prefix) PublicKeyPath() string         { return filepath.Join(p.Path, PublicKeyFile) }
func (p *Prefix) MetadataPath() string          { return filepath.Join(p.Path, MetadataFile) }
func (p *Prefix) LogsDir() string               { return filepath.Join(p.Path, LogsDir) }
func (p *Prefix) LogPath() string               { return filepath.Join(p.Path, LogsDir, LogFile) }
func (p *Prefix) ImagesDir() string             { return filepath.Join(p.Path, ImagesDir) }
func (p *Prefix) ScriptsDir() string            { return filepath.Join(p.Path, ScriptsDir) }
func (p *Prefix) VirtDir() string               { return filepath.Join(p.Path, VirtDir) }
func (p *Prefix) VirtPath(name string) string   { return filepath.Join(p.Path, VirtDir, name) }
func (p *Prefix) EnvPath() string               { return p.VirtPath(EnvFile) }
func (p *Prefix) NetSpecPath(net string) string { return p.VirtPath(NetFilePrefix + net) }
func (p *Prefix) VMSpecPath(vm string) string   { return p.VirtPath(VMFilePrefix + vm) }
func (p *Prefix) KnownHostsPath() string        { return filepath.Join(p.Path, KnownHostsFile) }
func (p *Prefix) SerialLogPath(vm string) string {
	return filepath.Join(p.LogsDir(), vm+SerialLogSuffix)
}

// ScriptPath is where a copy of the deploy script src is kept: scripts/
// and src with every / replaced by _ (the original's naming).
func (p *Prefix) ScriptPath(src string) string {
	return filepath.Join(p.ScriptsDir(), strings.ReplaceAll(src, "/", "_"))
}

// Expand turns a stored path ($LAGO_PREFIX_PATH/...) into a real one.
func (p *Prefix) Expand(path string) string { return spec.ExpandPrefixPath(path, p.Path) }

// Collapse turns a path inside the prefix into its stored form.
func (p *Prefix) Collapse(path string) string { return spec.CollapsePrefixPath(path, p.Path) }

// Initialized reports whether init finished in this prefix.
func (p *Prefix) Initialized() bool {
	st, err := os.Stat(p.InitializedPath())
	return err == nil && !st.IsDir()
}

// UUID returns the prefix's uuid (the file's content, trimmed).
func (p *Prefix) UUID() (string, error) {
	b, err := os.ReadFile(p.UUIDPath())
	if err != nil {
		return "", fmt.Errorf("read prefix uuid: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// CreateOptions tune Create.
type CreateOptions struct {
	// LagoVersion goes into the metadata file.
	LagoVersion string
	// KeyType is "rsa" (2048 bits, the default, as the original) or
	// "ed25519".
	KeyType string
	// AllowExistingEmpty lets Create use a folder that exists and is
	// empty. By default the folder must not exist, so two concurrent
	// inits can never share a prefix.
	AllowExistingEmpty bool
}

// Create makes a new prefix folder at path (which must not exist; see
// CreateOptions.AllowExistingEmpty) with its uuid (written first), ssh key pair, metadata and
// empty logs/, images/, scripts/ and virt/. It does not write
// `initialized`: call MarkInitialized when the whole init succeeded. On
// failure the half-made folder is left for Remove (it has a uuid) unless
// nothing but the folder was made.
func Create(path string, opts CreateOptions) (*Prefix, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("create prefix: %w", err)
	}
	if err := os.Mkdir(abs, 0o755); err != nil {
		if !errors.Is(err, fs.ErrExist) || !opts.AllowExistingEmpty {
			return nil, fmt.Errorf("create prefix: %w", err)
		}
		entries, rerr := os.ReadDir(abs)
		if rerr != nil || len(entries) > 0 {
			return nil, fmt.Errorf("create prefix %s: folder exists and is not empty", abs)
		}
	}
	p := &Prefix{Path: abs, Name: filepath.Base(abs)}
	id, err := newUUID()
	if err != nil {
		os.Remove(abs)
		return nil, fmt.Errorf("create prefix: %w", err)
	}
	if err := WriteFileAtomic(p.UUIDPath(), []byte(id), PublicMode); err != nil {
		os.Remove(abs)
		return nil, fmt.Errorf("create prefix: %w", err)
	}
	for _, d := range []string{LogsDir, ImagesDir, ScriptsDir, VirtDir} {
		if err := os.Mkdir(filepath.Join(abs, d), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return p, fmt.Errorf("create prefix: %w", err)
		}
	}
	if err := GenerateKeyPair(p.PrivateKeyPath(), p.PublicKeyPath(), opts.KeyType, "lago@"+id); err != nil {
		return p, fmt.Errorf("create prefix: %w", err)
	}
	version := opts.LagoVersion
	if version == "" {
		version = "dev"
	}
	if err := writeJSON(p.MetadataPath(), map[string]string{"lago_version": version}); err != nil {
		return p, fmt.Errorf("create prefix: %w", err)
	}
	return p, nil
}

// newUUID returns a random (version 4) uuid as 32 hex chars.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make uuid: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:]), nil
}

// MarkInitialized writes the `initialized` marker: the last step of init.
func (p *Prefix) MarkInitialized() error {
	if err := WriteFileAtomic(p.InitializedPath(), nil, PublicMode); err != nil {
		return fmt.Errorf("mark prefix initialized: %w", err)
	}
	return nil
}

// Uninitialize removes the `initialized` marker (lago cleanup); the uuid
// stays.
func (p *Prefix) Uninitialize() error {
	if err := os.Remove(p.InitializedPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("uninitialize prefix: %w", err)
	}
	return nil
}

// Metadata returns the prefix's metadata file as a map.
func (p *Prefix) Metadata() (map[string]any, error) {
	var m map[string]any
	if err := readJSON(p.MetadataPath(), &m); err != nil {
		return nil, fmt.Errorf("read prefix metadata: %w", err)
	}
	return m, nil
}

// Specs is what a prefix stores in virt/: the nets and VMs in the order
// virt/env names them.
type Specs struct {
	Nets []spec.Net
	VMs  []spec.VM
}

// Net returns the net named name, or nil.
func (s *Specs) Net(name string) *spec.Net {
	for i := range s.Nets {
		if s.Nets[i].Name == name {
			return &s.Nets[i]
		}
	}
	return nil
}

// VM returns the VM named name, or nil.
func (s *Specs) VM(name string) *spec.VM {
	for i := range s.VMs {
		if s.VMs[i].Name == name {
			return &s.VMs[i]
		}
	}
	return nil
}

// Load reads virt/env and every spec it names. Paths stay in their stored
// form ($LAGO_PREFIX_PATH/...); use Expand. A spec gets the defaults of
// NetDefaults and VMDefaults. virt/env or a spec it names that is missing
// or unreadable is an error.
func (p *Prefix) Load() (*Specs, error) {
	s, err := p.LoadPartial()
	if err != nil {
		return nil, err
	}
	return s, nil
}

// LoadPartial reads what a prefix holds, for the verbs that must work on a
// half-made one (destroy, cleanup, undoing a failed init): it always
// returns the specs it could read, as Load would have them, and, when
// virt/env or a spec it names is missing or unreadable, an error naming
// each such file.
func (p *Prefix) LoadPartial() (*Specs, error) {
	s := &Specs{}
	var env spec.Env
	if err := readJSON(p.EnvPath(), &env); err != nil {
		return s, fmt.Errorf("load prefix specs: %w", err)
	}
	var errs []error
	for _, name := range env.Nets {
		var n spec.Net
		if err := readJSON(p.NetSpecPath(name), &n); err != nil {
			errs = append(errs, err)
			continue
		}
		NetDefaults(&n, name)
		s.Nets = append(s.Nets, n)
	}
	for _, name := range env.VMs {
		var v spec.VM
		// A prefix of an earlier version holds this spec's passwords 0644.
		_, _ = TightenSecret(p.VMSpecPath(name))
		if err := readJSON(p.VMSpecPath(name), &v); err != nil {
			errs = append(errs, err)
			continue
		}
		VMDefaults(&v, name)
		s.VMs = append(s.VMs, v)
	}
	if err := errors.Join(errs...); err != nil {
		return s, fmt.Errorf("load prefix specs: %w", err)
	}
	return s, nil
}

// NetDefaults fills in what a stored net spec may leave out: its name
// (older layouts keep it only in the file name, virt/net-<file>) and its
// type, nat, the original's only type before bridge nets.
func NetDefaults(n *spec.Net, file string) {
	if n.Name == "" {
		n.Name = file
	}
	if n.Type == "" {
		n.Type = spec.NetNAT
	}
}

// VMDefaults fills in what a stored VM spec may leave out: its name
// (older layouts keep it only in the file name, virt/vm-<file>).
func VMDefaults(v *spec.VM, file string) {
	if v.Name == "" {
		v.Name = file
	}
}

// Save writes every spec, then virt/env (so env never names a spec not
// yet written), and removes specs of nets and VMs no longer present. Disk
// paths inside the prefix are stored as $LAGO_PREFIX_PATH/...
func (p *Prefix) Save(s *Specs) error {
	if err := os.MkdirAll(p.VirtDir(), 0o755); err != nil {
		return fmt.Errorf("save prefix specs: %w", err)
	}
	env := spec.Env{Nets: []string{}, VMs: []string{}}
	keep := map[string]bool{EnvFile: true}
	for _, n := range s.Nets {
		if n.Mapping == nil {
			n.Mapping = map[string]string{}
		}
		if err := checkSpecName(n.Name); err != nil {
			return fmt.Errorf("save prefix specs: net: %w", err)
		}
		if err := writeJSON(p.NetSpecPath(n.Name), n); err != nil {
			return fmt.Errorf("save prefix specs: %w", err)
		}
		env.Nets = append(env.Nets, n.Name)
		keep[NetFilePrefix+n.Name] = true
	}
	for _, v := range s.VMs {
		if err := checkSpecName(v.Name); err != nil {
			return fmt.Errorf("save prefix specs: vm: %w", err)
		}
		if v.NICs == nil {
			v.NICs = []spec.NIC{}
		}
		v.Disks = append([]spec.Disk{}, v.Disks...)
		for i := range v.Disks {
			v.Disks[i].Path = p.Collapse(v.Disks[i].Path)
			v.Disks[i].SourcePath = p.Collapse(v.Disks[i].SourcePath)
		}
		// A VM spec holds the guest's ssh and root passwords.
		if err := writeJSONMode(p.VMSpecPath(v.Name), v, SecretMode); err != nil {
			return fmt.Errorf("save prefix specs: %w", err)
		}
		env.VMs = append(env.VMs, v.Name)
		keep[VMFilePrefix+v.Name] = true
	}
	if err := writeJSON(p.EnvPath(), env); err != nil {
		return fmt.Errorf("save prefix specs: %w", err)
	}
	entries, err := os.ReadDir(p.VirtDir())
	if err != nil {
		return fmt.Errorf("save prefix specs: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		if !keep[n] && (strings.HasPrefix(n, NetFilePrefix) || strings.HasPrefix(n, VMFilePrefix)) {
			if err := os.Remove(filepath.Join(p.VirtDir(), n)); err != nil {
				return fmt.Errorf("save prefix specs: remove stale %s: %w", n, err)
			}
		}
	}
	return nil
}

func checkSpecName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("invalid name %q", name)
	}
	return nil
}

// looksLikePrefix reports whether dir is safe to delete as a prefix: it
// holds a uuid or the initialized marker, or is empty.
func looksLikePrefix(dir string) bool {
	for _, f := range []string{UUIDFile, InitializedFile} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	entries, err := os.ReadDir(dir)
	return err == nil && len(entries) == 0
}

// Remove deletes the prefix folder. A prefix that is a symlink loses only
// the link. A folder that does not look like a prefix (no uuid, no
// initialized marker, not empty) is refused, so a wrong --prefix-path
// cannot delete unrelated files. Removing what is gone is not an error.
func Remove(p *Prefix) error {
	st, err := os.Lstat(p.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove prefix: %w", err)
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		if err := os.Remove(p.Path); err != nil {
			return fmt.Errorf("remove prefix link: %w", err)
		}
		return nil
	}
	if !looksLikePrefix(p.Path) {
		return fmt.Errorf("remove prefix: %s holds neither a uuid nor an initialized marker; refusing to delete it", p.Path)
	}
	if err := removeMarkersLast(p.Path); err != nil {
		return fmt.Errorf("remove prefix: %w", err)
	}
	return nil
}

// removeMarkersLast deletes a prefix folder so that a kill at any moment
// leaves what the next destroy still recognises as a prefix and finishes:
// `initialized` goes first (what remains is a half-made prefix, never a
// usable one), then everything but the uuid, then the uuid, then the
// folder, empty by then. A plain RemoveAll could delete the uuid and the
// marker before images/, leaving a folder destroy must refuse.
func removeMarkersLast(dir string) error {
	if err := removeStep(filepath.Join(dir, InitializedFile)); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == UUIDFile {
			continue
		}
		if err := removeStep(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if err := removeStep(filepath.Join(dir, UUIDFile)); err != nil {
		return err
	}
	return removeStep(dir)
}

// removeStep removes one entry of a prefix being removed (what is gone is
// not an error); a variable so tests can stop a removal at any step, as a
// kill would.
var removeStep = os.RemoveAll
