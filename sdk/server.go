package sdk

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/lago-go/lago/proto/lago/plugin/v1"
)

// registry maps (kind, name) to a component implementation on the plugin
// side of the connection.
type registry struct {
	plugin *Plugin
	byKind map[string]map[string]any
	byName map[string]Component
}

func newRegistry(p *Plugin) (*registry, error) {
	r := &registry{plugin: p, byKind: map[string]map[string]any{}, byName: map[string]Component{}}
	for _, c := range p.Components {
		if err := checkKind(c); err != nil {
			return nil, err
		}
		if _, dup := r.byName[c.Info.Name]; dup {
			return nil, fmt.Errorf("plugin %s: duplicate component name %q", p.Name, c.Info.Name)
		}
		r.byName[c.Info.Name] = c
		if r.byKind[c.Info.Kind] == nil {
			r.byKind[c.Info.Kind] = map[string]any{}
		}
		r.byKind[c.Info.Kind][c.Info.Name] = c.Impl
	}
	return r, nil
}

// checkKind makes a kind/implementation mismatch a start-up error rather
// than a failure on the first call.
func checkKind(c Component) error {
	var ok bool
	switch c.Info.Kind {
	case KindProvider:
		_, ok = c.Impl.(Provider)
	case KindVMType:
		_, ok = c.Impl.(VMType)
	case KindService:
		_, ok = c.Impl.(ServiceManager)
	case KindBuilder:
		_, ok = c.Impl.(Builder)
	case KindOutput:
		_, ok = c.Impl.(OutputFormat)
	case KindCommand:
		_, ok = c.Impl.(Command)
	default:
		return fmt.Errorf("component %q: unknown kind %q", c.Info.Name, c.Info.Kind)
	}
	if !ok {
		return fmt.Errorf("component %q: %T does not implement the %s interface", c.Info.Name, c.Impl, c.Info.Kind)
	}
	return nil
}

// lookup finds the component a call is for: the one named in the
// lago-component metadata, or the only component of that kind.
func (r *registry) lookup(ctx context.Context, kind string) (any, error) {
	comps := r.byKind[kind]
	var name string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(ComponentMetadataKey); len(v) > 0 {
			name = v[0]
		}
	}
	if name == "" {
		if len(comps) == 1 {
			for _, impl := range comps {
				return impl, nil
			}
		}
		return nil, status.Errorf(codes.InvalidArgument, "plugin %s: call without %s metadata and %d %s components", r.plugin.Name, ComponentMetadataKey, len(comps), kind)
	}
	impl, ok := comps[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "plugin %s has no %s component %q", r.plugin.Name, kind, name)
	}
	return impl, nil
}

// pluginServer implements lago.plugin.v1.Plugin: Describe and Configure.
type pluginServer struct {
	pluginv1.UnimplementedPluginServer
	reg    *registry
	broker *plugin.GRPCBroker

	mu    sync.Mutex
	hosts map[uint32]Host
}

func (s *pluginServer) Describe(ctx context.Context, _ *pluginv1.DescribeRequest) (*pluginv1.DescribeResponse, error) {
	return describeToProto(describePlugin(s.reg.plugin)), nil
}

func (s *pluginServer) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) (*pluginv1.ConfigureResponse, error) {
	c, ok := s.reg.byName[req.GetComponent()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "plugin %s has no component %q", s.reg.plugin.Name, req.GetComponent())
	}
	var host Host
	if id := req.GetHostBrokerId(); id != 0 {
		h, err := s.host(id)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "dial host service %d: %v", id, err)
		}
		host = h
	}
	cfg, ok := c.Impl.(Configurer)
	if !ok {
		return &pluginv1.ConfigureResponse{}, nil
	}
	diags, err := invoke(ctx, func() error { return cfg.Configure(ctx, req.GetConfig(), host) })
	if err != nil {
		return nil, err
	}
	return &pluginv1.ConfigureResponse{Diagnostics: diags}, nil
}

// host dials the core's brokered Host service once per broker id. It dials
// even for components that take no Host: go-plugin forgets an unclaimed
// broker connection after a few seconds.
func (s *pluginServer) host(id uint32) (Host, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.hosts[id]; ok {
		return h, nil
	}
	if s.broker == nil {
		return nil, fmt.Errorf("no broker")
	}
	conn, err := s.broker.Dial(id)
	if err != nil {
		return nil, err
	}
	if s.hosts == nil {
		s.hosts = map[uint32]Host{}
	}
	h := NewHostClient(conn)
	s.hosts[id] = h
	return h, nil
}

// describePlugin builds the Description of p.
func describePlugin(p *Plugin) Description {
	d := Description{Name: p.Name, Version: p.Version, APIVersions: []int{APIVersion}}
	for _, c := range p.Components {
		d.Components = append(d.Components, c.Info)
	}
	return d
}

func describeToProto(d Description) *pluginv1.DescribeResponse {
	r := &pluginv1.DescribeResponse{Name: d.Name, Version: d.Version}
	for _, v := range d.APIVersions {
		r.ApiVersions = append(r.ApiVersions, int32(v))
	}
	for _, c := range d.Components {
		pc := &pluginv1.Component{Name: c.Name, Kind: c.Kind, Capabilities: c.Capabilities, Description: c.Description}
		for _, f := range c.ConfigSchema {
			pc.ConfigSchema = append(pc.ConfigSchema, &pluginv1.ConfigField{Name: f.Name, Type: f.Type, Default: f.Default, Description: f.Description, Required: f.Required})
		}
		for _, cs := range c.Commands {
			pcs := &pluginv1.CommandSpec{Name: cs.Name, Short: cs.Short, Long: cs.Long, Usage: cs.Usage, MinArgs: int32(cs.MinArgs), MaxArgs: int32(cs.MaxArgs)}
			for _, f := range cs.Flags {
				pcs.Flags = append(pcs.Flags, &pluginv1.FlagSpec{Name: f.Name, Shorthand: f.Shorthand, Type: f.Type, Default: f.Default, Usage: f.Usage})
			}
			pc.Commands = append(pc.Commands, pcs)
		}
		r.Components = append(r.Components, pc)
	}
	return r
}

func describeFromProto(r *pluginv1.DescribeResponse) Description {
	d := Description{Name: r.GetName(), Version: r.GetVersion()}
	for _, v := range r.GetApiVersions() {
		d.APIVersions = append(d.APIVersions, int(v))
	}
	for _, pc := range r.GetComponents() {
		c := ComponentInfo{Name: pc.GetName(), Kind: pc.GetKind(), Capabilities: pc.GetCapabilities(), Description: pc.GetDescription()}
		for _, f := range pc.GetConfigSchema() {
			c.ConfigSchema = append(c.ConfigSchema, ConfigField{Name: f.GetName(), Type: f.GetType(), Default: f.GetDefault(), Description: f.GetDescription(), Required: f.GetRequired()})
		}
		for _, pcs := range pc.GetCommands() {
			cs := CommandSpec{Name: pcs.GetName(), Short: pcs.GetShort(), Long: pcs.GetLong(), Usage: pcs.GetUsage(), MinArgs: int(pcs.GetMinArgs()), MaxArgs: int(pcs.GetMaxArgs())}
			for _, f := range pcs.GetFlags() {
				cs.Flags = append(cs.Flags, FlagSpec{Name: f.GetName(), Shorthand: f.GetShorthand(), Type: f.GetType(), Default: f.GetDefault(), Usage: f.GetUsage()})
			}
			c.Commands = append(c.Commands, cs)
		}
		d.Components = append(d.Components, c)
	}
	return d
}
