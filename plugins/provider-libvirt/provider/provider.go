// Package provider is lago's libvirt provider: it turns the core's network
// and VM specs into libvirt networks, persistent domains and disks, locally
// (qemu:///system, disks as files in the prefix) or on a remote hypervisor
// (disks as volumes in a libvirt storage pool, templates uploaded through
// libvirt streams). Every object it creates carries an owner tag in its
// libvirt metadata so leaks can be found and removed without local state.
package provider

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/lago-go/lago/sdk"
)

// ComponentName is the provider's component name in the plugin.
const ComponentName = "libvirt"

// Setting names and defaults.
const (
	SettingURL          = "libvirt_url"
	SettingUser         = "libvirt_user"
	SettingPassword     = "libvirt_password"
	SettingDomainType   = "domain_type"
	SettingStoragePool  = "storage_pool"
	SettingPoolPath     = "storage_pool_path"
	SettingRemote       = "remote"
	SettingQemuImg      = "qemu_img"
	SettingKVMProbe     = "kvm_probe_binary"
	SettingBridgeSTP    = "bridge_stp"
	DefaultURL          = "qemu:///system"
	DefaultStoragePool  = "lago"
	DefaultPoolPath     = "/var/lib/libvirt/images/lago"
	DefaultQemuImg      = "qemu-img"
	DefaultKVMProbeBin  = "qemu-system-x86_64"
	domainTypeAuto      = "auto"
	remoteAuto          = "auto"
	defaultShutdownWait = 5 * 60 // seconds, as the reference
)

// ConfigSchema documents every setting for `describe`.
func ConfigSchema() []sdk.ConfigField {
	return []sdk.ConfigField{
		{Name: SettingURL, Type: "string", Default: DefaultURL,
			Description: "libvirt connection URI; a URI with a host part (qemu+ssh://user@host/system, qemu+tcp://host:port/system) selects remote mode"},
		{Name: SettingUser, Type: "string",
			Description: "user name answered to libvirt's authentication callback (SASL, ssh password prompt); empty uses libvirt's default authentication"},
		{Name: SettingPassword, Type: "string",
			Description: "password answered to libvirt's authentication callback"},
		{Name: SettingDomainType, Type: "string", Default: domainTypeAuto,
			Description: "auto, kvm or qemu. auto uses kvm only on a local host whose capabilities list kvm AND where a paused probe guest (qemu -accel kvm -cpu host -S) survives 1.5 s; otherwise (and always for remote hosts, which cannot be probed) qemu (TCG) with a warning. Under qemu the CPU is never host-passthrough: cpu_model, cpu_custom or mode='maximum'"},
		{Name: SettingStoragePool, Type: "string", Default: DefaultStoragePool,
			Description: "remote mode: libvirt storage pool holding disks and uploaded templates; a dir pool is created when missing"},
		{Name: SettingPoolPath, Type: "string", Default: DefaultPoolPath,
			Description: "remote mode: directory on the hypervisor host used when the storage pool has to be created"},
		{Name: SettingRemote, Type: "string", Default: remoteAuto,
			Description: "auto, yes or no: remote mode keeps disks in a storage pool instead of the prefix; auto means yes when libvirt_url has a host part"},
		{Name: SettingQemuImg, Type: "string", Default: DefaultQemuImg,
			Description: "qemu-img binary used for overlays, empty disks and export (local side)"},
		{Name: SettingKVMProbe, Type: "string", Default: DefaultKVMProbeBin,
			Description: "qemu binary used by domain_type=auto to probe KVM when libvirt's capabilities name none"},
		{Name: SettingBridgeSTP, Type: "bool", Default: "no",
			Description: "yes runs the spanning tree protocol on the environments' bridges. Only needed when guests bridge two NICs of one network into a loop: with STP on, Linux holds every new port (each VM start, each revert) for 4 s before it forwards, so a VM is unreachable for that long"},
	}
}

// Info is the component description served by the plugin.
func Info() sdk.ComponentInfo {
	return sdk.ComponentInfo{
		Name:         ComponentName,
		Kind:         sdk.KindProvider,
		Description:  "VMs and networks on a local or remote libvirt (qemu/kvm)",
		Capabilities: []string{"snapshot-running", "snapshot-stopped", "console", "export", "remote", "owner-tags", "bridge-networks", "ipv6"},
		ConfigSchema: ConfigSchema(),
	}
}

// settings are the parsed Configure settings.
type settings struct {
	URL        string
	User       string
	Password   string
	DomainType string // auto, kvm, qemu
	Pool       string
	PoolPath   string
	Remote     bool
	QemuImg    string
	KVMProbe   string
	BridgeSTP  bool
}

// Provider implements sdk.Provider and sdk.Configurer over a Conn.
type Provider struct {
	log hclog.Logger
	// dial opens the libvirt connection; tests replace it with a fake.
	dial func(uri, user, password string) (Conn, error)
	// probeKVM reports whether a KVM guest can run on this host.
	probeKVM func(ctx context.Context, emulator string) error

	mu         sync.Mutex
	cfg        settings
	configured bool
	conn       Conn
	domainType string
	host       sdk.Host

	// volMu serialises creation of a shared template volume per name.
	volMu   sync.Mutex
	volLock map[string]*sync.Mutex
}

// New returns an unconfigured provider using the real libvirt.
func New(log hclog.Logger) *Provider {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Provider{log: log, dial: Dial, probeKVM: probeKVM}
}

var _ sdk.Provider = (*Provider)(nil)
var _ sdk.Configurer = (*Provider)(nil)

// Configure parses settings; the connection is opened lazily on first use
// so `describe` and configuration never touch libvirt.
func (p *Provider) Configure(ctx context.Context, config map[string]string, host sdk.Host) error {
	cfg, diags := parseSettings(config)
	if diags.HasErrors() {
		return diags
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		_ = p.conn.Close()
		p.conn = nil
	}
	p.cfg, p.configured, p.host, p.domainType = cfg, true, host, ""
	return nil
}

func parseSettings(config map[string]string) (settings, sdk.Diagnostics) {
	get := func(k, def string) string {
		if v, ok := config[k]; ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	cfg := settings{
		URL:        get(SettingURL, DefaultURL),
		User:       config[SettingUser],
		Password:   config[SettingPassword],
		DomainType: strings.ToLower(get(SettingDomainType, domainTypeAuto)),
		Pool:       get(SettingStoragePool, DefaultStoragePool),
		PoolPath:   get(SettingPoolPath, DefaultPoolPath),
		QemuImg:    get(SettingQemuImg, DefaultQemuImg),
		KVMProbe:   get(SettingKVMProbe, DefaultKVMProbeBin),
	}
	var diags sdk.Diagnostics
	switch cfg.DomainType {
	case domainTypeAuto, domainTypeKVM, domainTypeQEMU:
	default:
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Attribute: SettingDomainType,
			Summary: fmt.Sprintf("domain_type %q is not one of auto, kvm, qemu", cfg.DomainType)})
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme == "" {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Attribute: SettingURL,
			Summary: fmt.Sprintf("libvirt_url %q is not a libvirt URI", cfg.URL)})
	}
	hasHost := err == nil && u.Host != ""
	switch v := strings.ToLower(get(SettingBridgeSTP, "no")); v {
	case "yes", "true", "1", "on":
		cfg.BridgeSTP = true
	case "no", "false", "0", "off":
	default:
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Attribute: SettingBridgeSTP,
			Summary: fmt.Sprintf("bridge_stp %q is not one of yes, no", v)})
	}
	switch r := strings.ToLower(get(SettingRemote, remoteAuto)); r {
	case remoteAuto:
		cfg.Remote = hasHost
	case "yes", "true", "1":
		cfg.Remote = true
	case "no", "false", "0":
		cfg.Remote = false
	default:
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Attribute: SettingRemote,
			Summary: fmt.Sprintf("remote %q is not one of auto, yes, no", r)})
	}
	return cfg, diags
}

// connect returns the shared connection, opening it on first use.
func (p *Provider) connect(ctx context.Context) (Conn, settings, string, sdk.Diagnostics, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := p.connectLocked()
	return c, p.cfg, p.domainType, nil, err
}

// connectTyped is connect plus the resolved domain type, for the calls that
// define domains. Resolving auto may run a KVM probe, so calls that only
// look (state, lists, removal) do not pay for it. The warnings of the
// resolution go to the first caller.
func (p *Provider) connectTyped(ctx context.Context) (Conn, settings, string, sdk.Diagnostics, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := p.connectLocked()
	if err != nil {
		return nil, p.cfg, "", nil, err
	}
	var warns sdk.Diagnostics
	if p.domainType == "" {
		dt, w, err := p.resolveDomainType(ctx, c)
		if err != nil {
			return nil, p.cfg, "", nil, err
		}
		p.domainType, warns = dt, w
		for _, x := range w {
			p.log.Warn(x.Summary, "detail", x.Detail)
		}
	}
	return c, p.cfg, p.domainType, warns, nil
}

func (p *Provider) connectLocked() (Conn, error) {
	if !p.configured {
		cfg, diags := parseSettings(nil)
		if diags.HasErrors() {
			return nil, diags
		}
		p.cfg, p.configured = cfg, true
	}
	if p.conn == nil {
		c, err := p.dial(p.cfg.URL, p.cfg.User, p.cfg.Password)
		if err != nil {
			return nil, sdk.Diagnostics{{Severity: sdk.SeverityError,
				Summary: fmt.Sprintf("cannot connect to libvirt at %s", p.cfg.URL), Detail: err.Error()}}
		}
		p.conn = c
	}
	return p.conn, nil
}

// Close releases the libvirt connection.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		return nil
	}
	err := p.conn.Close()
	p.conn = nil
	return err
}

// errorDiag is a one-error Diagnostics.
func errorDiag(summary string, detail error) sdk.Diagnostics {
	d := sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary}
	if detail != nil {
		d.Detail = detail.Error()
	}
	return sdk.Diagnostics{d}
}

// withWarnings returns err, or the warnings alone (a success with warnings
// on the wire) when err is nil.
func withWarnings(warns sdk.Diagnostics, err error) error {
	if err != nil {
		var d sdk.Diagnostics
		if errors.As(err, &d) {
			return append(append(sdk.Diagnostics{}, warns...), d...)
		}
		return append(append(sdk.Diagnostics{}, warns...), sdk.Diagnostic{Severity: sdk.SeverityError, Summary: err.Error()})
	}
	if len(warns) > 0 {
		return warns
	}
	return nil
}

// runCmd runs argv (never a shell) and returns its combined output.
func runCmd(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}
