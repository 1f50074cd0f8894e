package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	builderv1 "github.com/lago-go/lago/proto/lago/builder/v1"
	commandv1 "github.com/lago-go/lago/proto/lago/command/v1"
	hostv1 "github.com/lago-go/lago/proto/lago/host/v1"
	outputv1 "github.com/lago-go/lago/proto/lago/output/v1"
	pluginv1 "github.com/lago-go/lago/proto/lago/plugin/v1"
	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	servicev1 "github.com/lago-go/lago/proto/lago/service/v1"
	vmtypev1 "github.com/lago-go/lago/proto/lago/vmtype/v1"
	"github.com/lago-go/lago/sdk/plugininfo"
)

// PluginSetKey is the single entry of the go-plugin plugin set: the set
// model of lago lives one level below, in components.
const PluginSetKey = "lago"

// DebugEnv, when set to 1 in a plugin's environment, makes Serve run the
// plugin outside of lago and print the reattach configuration to stdout.
// Put that JSON under the plugin's name in LAGO_REATTACH_PLUGINS and lago
// attaches to the running process (handy under a debugger):
//
//	LAGO_PLUGIN_DEBUG=1 lago-plugin-json
//	LAGO_REATTACH_PLUGINS='{"json": <printed JSON>}' lago -f json status
const DebugEnv = "LAGO_PLUGIN_DEBUG"

// HandshakeConfig is shared by lago and its plugins. The cookie only keeps
// users from running a plugin by hand by mistake; it is not a security
// feature.
var HandshakeConfig = plugin.HandshakeConfig{
	ProtocolVersion:  APIVersion,
	MagicCookieKey:   plugininfo.MagicCookieKey,
	MagicCookieValue: plugininfo.MagicCookieValue,
}

// PluginSet returns the go-plugin plugin set for p; p is nil on the core's
// side, which only dispenses clients.
func PluginSet(p *Plugin) plugin.PluginSet {
	return plugin.PluginSet{PluginSetKey: &GRPCPlugin{Impl: p}}
}

// GRPCPlugin is the go-plugin glue: on the plugin side it registers every
// kind's service, on the core's side it yields a *PluginClient.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl *Plugin
}

// GRPCServer registers the Plugin service and the service of every kind;
// calls for a kind with no component answer NotFound.
func (g *GRPCPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	if g.Impl == nil {
		return fmt.Errorf("grpc plugin: no implementation to serve")
	}
	reg, err := newRegistry(g.Impl)
	if err != nil {
		return err
	}
	registerServers(s, reg, broker)
	return nil
}

// registerServers registers every service for reg on s.
func registerServers(s *grpc.Server, reg *registry, broker *plugin.GRPCBroker) {
	pluginv1.RegisterPluginServer(s, &pluginServer{reg: reg, broker: broker})
	providerv1.RegisterProviderServer(s, &providerServer{reg: reg})
	vmtypev1.RegisterVMTypeServer(s, &vmTypeServer{reg: reg})
	servicev1.RegisterServiceManagerServer(s, &serviceServer{reg: reg})
	builderv1.RegisterBuilderServer(s, &builderServer{reg: reg})
	outputv1.RegisterOutputFormatServer(s, &outputServer{reg: reg})
	commandv1.RegisterCommandServer(s, &commandServer{reg: reg})
}

// GRPCClient returns a *PluginClient for the connection.
func (g *GRPCPlugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return NewPluginClient(conn, broker), nil
}

// PluginClient is the core's handle on one plugin process: describe,
// configure components and make component clients.
type PluginClient struct {
	Conn   grpc.ClientConnInterface
	broker *plugin.GRPCBroker
	c      pluginv1.PluginClient

	hostOnce sync.Once
	hostID   uint32
}

// NewPluginClient wraps conn; broker may be nil when no Host is served.
func NewPluginClient(conn grpc.ClientConnInterface, broker *plugin.GRPCBroker) *PluginClient {
	return &PluginClient{Conn: conn, broker: broker, c: pluginv1.NewPluginClient(conn)}
}

// Describe asks the running plugin for its description.
func (p *PluginClient) Describe(ctx context.Context) (Description, error) {
	r, err := p.c.Describe(ctx, &pluginv1.DescribeRequest{})
	if err != nil {
		return Description{}, fmt.Errorf("describe plugin: %w", err)
	}
	return describeFromProto(r), nil
}

// Configure hands component its settings. When host is non-nil it is
// served to the plugin over the broker, once per plugin process (the
// first host given wins).
func (p *PluginClient) Configure(ctx context.Context, component string, config map[string]string, host Host, opts ...ClientOption) error {
	var id uint32
	if host != nil && p.broker != nil {
		p.hostOnce.Do(func() {
			p.hostID = p.broker.NextId()
			go p.broker.AcceptAndServe(p.hostID, func(o []grpc.ServerOption) *grpc.Server {
				s := grpc.NewServer(o...)
				hostv1.RegisterHostServer(s, NewHostServer(host))
				return s
			})
		})
		id = p.hostID
	}
	b := newClientBase(component, opts)
	r, err := p.c.Configure(ctx, &pluginv1.ConfigureRequest{Component: component, Config: config, HostBrokerId: id})
	return b.result(ctx, "Configure", r.GetDiagnostics(), err)
}

// Provider returns a client for the provider component.
func (p *PluginClient) Provider(component string, opts ...ClientOption) Provider {
	return NewProviderClient(p.Conn, component, opts...)
}

// VMType returns a client for the vm type component.
func (p *PluginClient) VMType(component string, opts ...ClientOption) VMType {
	return NewVMTypeClient(p.Conn, component, opts...)
}

// Service returns a client for the service manager component.
func (p *PluginClient) Service(component string, opts ...ClientOption) ServiceManager {
	return NewServiceClient(p.Conn, component, opts...)
}

// Builder returns a client for the builder component.
func (p *PluginClient) Builder(component string, opts ...ClientOption) Builder {
	return NewBuilderClient(p.Conn, component, opts...)
}

// Output returns a client for the output component.
func (p *PluginClient) Output(component string, opts ...ClientOption) OutputFormat {
	return NewOutputClient(p.Conn, component, opts...)
}

// Command returns a client for the command component.
func (p *PluginClient) Command(component string, opts ...ClientOption) Command {
	return NewCommandClient(p.Conn, component, opts...)
}

// ReattachInfo is the JSON form of go-plugin's ReattachConfig used in
// LAGO_REATTACH_PLUGINS (net.Addr does not marshal by itself).
type ReattachInfo struct {
	Protocol        string `json:"protocol"`
	ProtocolVersion int    `json:"protocol_version"`
	Pid             int    `json:"pid"`
	Addr            struct {
		Network string `json:"network"`
		String  string `json:"string"`
	} `json:"addr"`
	Test bool `json:"test,omitempty"`
}

// ToConfig converts r for plugin.ClientConfig.Reattach.
func (r ReattachInfo) ToConfig() (*plugin.ReattachConfig, error) {
	var addr net.Addr
	var err error
	switch r.Addr.Network {
	case "unix":
		addr, err = net.ResolveUnixAddr("unix", r.Addr.String)
	case "tcp":
		addr, err = net.ResolveTCPAddr("tcp", r.Addr.String)
	default:
		err = fmt.Errorf("unknown network %q", r.Addr.Network)
	}
	if err != nil {
		return nil, fmt.Errorf("reattach address: %w", err)
	}
	proto := plugin.Protocol(r.Protocol)
	if proto == "" {
		proto = plugin.ProtocolGRPC
	}
	return &plugin.ReattachConfig{Protocol: proto, ProtocolVersion: r.ProtocolVersion, Pid: r.Pid, Addr: addr, Test: r.Test}, nil
}

func reattachInfoFrom(c *plugin.ReattachConfig) ReattachInfo {
	r := ReattachInfo{Protocol: string(c.Protocol), ProtocolVersion: c.ProtocolVersion, Pid: c.Pid, Test: c.Test}
	if c.Addr != nil {
		r.Addr.Network, r.Addr.String = c.Addr.Network(), c.Addr.String()
	}
	return r
}

// realStderr is the process's stderr before go-plugin redirects os.Stderr
// over gRPC: log lines written there reach lago even when the plugin dies.
var realStderr = os.Stderr

var (
	loggerMu sync.Mutex
	logger   hclog.Logger
)

// Logger returns the plugin's logger: JSON lines on stderr that lago
// re-emits into its own log under the plugin's name. Use it instead of
// writing to os.Stderr, which go-plugin redirects.
func Logger() hclog.Logger {
	loggerMu.Lock()
	defer loggerMu.Unlock()
	if logger == nil {
		logger = hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Trace, Output: realStderr, JSONFormat: true})
	}
	return logger
}

func setLogger(l hclog.Logger) {
	loggerMu.Lock()
	defer loggerMu.Unlock()
	logger = l
}

// Serve runs p as a lago plugin binary and never returns.
//
// `lago-plugin-x describe` prints the Description JSON and exits 0 with no
// handshake, so the core can cache it without a gRPC connection. Otherwise
// the plugin serves over go-plugin gRPC and logs JSON lines to stderr
// through hclog, which the core re-emits under the plugin's name. Run by
// hand, go-plugin explains that it is a plugin and exits 1.
func Serve(p Plugin) {
	os.Exit(serve(p, os.Args[1:], os.Stdout, realStderr))
}

func serve(p Plugin, args []string, stdout, stderr io.Writer) int {
	if _, err := newRegistry(&p); err != nil {
		fmt.Fprintf(stderr, "lago-plugin-%s: %v\n", p.Name, err)
		return 1
	}
	if len(args) > 0 && args[0] == "describe" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(describePlugin(&p)); err != nil {
			fmt.Fprintf(stderr, "lago-plugin-%s: describe: %v\n", p.Name, err)
			return 1
		}
		return 0
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       p.Name,
		Level:      hclog.Trace,
		Output:     stderr,
		JSONFormat: true,
	})
	setLogger(logger)
	cfg := &plugin.ServeConfig{
		HandshakeConfig: HandshakeConfig,
		Plugins:         PluginSet(&p),
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          logger,
	}
	if os.Getenv(DebugEnv) == "1" {
		return serveDebug(cfg, stdout)
	}
	plugin.Serve(cfg)
	return 0
}

// serveDebug serves in go-plugin's test mode (no cookie, no parent) and
// prints the reattach JSON until interrupted.
func serveDebug(cfg *plugin.ServeConfig, stdout io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ch := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	cfg.Test = &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: ch, CloseCh: closed}
	go plugin.Serve(cfg)
	select {
	case rc := <-ch:
		b, _ := json.Marshal(reattachInfoFrom(rc))
		fmt.Fprintf(stdout, "%s\n", b)
	case <-closed:
		return 1
	}
	<-closed
	return 0
}
