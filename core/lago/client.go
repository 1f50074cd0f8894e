package lago

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	commandv1 "github.com/lago-go/lago/proto/lago/command/v1"
	hostv1 "github.com/lago-go/lago/proto/lago/host/v1"
	"github.com/lago-go/lago/sdk"

	"github.com/lago-go/lago/core/config"
	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/pluginhost"
	"github.com/lago-go/lago/core/pluginhost/prestart"
	"github.com/lago-go/lago/core/prefix"
	lagossh "github.com/lago-go/lago/core/ssh"
	"github.com/lago-go/lago/core/template"
)

// Options configure a Client. The zero value is what the lago command
// would do in the current folder: the configuration from lago.conf files
// and LAGO_ variables, plugins from the default folders, nothing printed.
type Options struct {
	// Config is the effective configuration. Nil loads it as the CLI does
	// (files, then LAGO__SECTION__KEY variables), skipping the CLI's own
	// per-verb sections.
	Config *config.Config
	// Progress receives progress lines of long steps (template downloads,
	// bootstrap, builds); nil discards them.
	Progress io.Writer
	// Logger receives the engine's log; nil discards it.
	Logger *slog.Logger
	// PluginLog receives the plugins' own log lines. Nil: LogFile when
	// set, else the log of the prefix the Client acts on (logs/lago.log,
	// as the lago command does; lines wait in memory until init has made
	// the prefix).
	PluginLog io.Writer
	// PluginLogAlso also receives them (the lago command's stderr at
	// debug level).
	PluginLogAlso io.Writer
	// LogFile, when set, receives the plugins' lines (unless PluginLog is
	// set) and, unless Logger is set, the engine's log at PluginLogLevel.
	LogFile string
	// PluginLogLevel is the lowest level of plugin lines kept ("info" when
	// empty; "debug", "warn", "error").
	PluginLogLevel string
	// OnWarning receives each distinct warning a plugin returns, once
	// (for example "domain_type auto: no KVM, guests run under TCG"); nil
	// sends them to Logger.
	OnWarning func(message string)
	// PluginSearchPath overrides the plugin folders (default
	// $LAGO_PLUGIN_PATH, the folders beside the lago binary, the user's
	// $XDG_DATA_HOME/lago/plugins and the system ones).
	PluginSearchPath []string
	// PluginCacheFile is the describe cache; "" is the default and "-"
	// disables it.
	PluginCacheFile string
	// Executable is the lago binary whose hidden __ssh-mux verb keeps ssh
	// connections of ssh_persist between CLI runs; "" means none. A Go
	// program keeps its connections in-process and needs none.
	Executable string
	// HostLog receives the plugin host's own notes (a refused or broken
	// plugin, discovery problems) at HostLogLevel (default "warn"); nil
	// sends them to PluginLog.
	HostLog      io.Writer
	HostLogLevel string
	// Prestarted is a plugin process bin/lago started before it exec'd
	// the engine (the lago command only; programs leave it nil).
	Prestarted *prestart.Process
}

// Client is the front door to lago: it holds the configuration and the
// plugin processes (one per plugin, for the Client's lifetime) and makes
// Envs. It is safe for concurrent use; Close stops its plugins.
type Client struct {
	cfg      *config.Config
	opts     Options
	host     *pluginhost.Host
	mgr      *env.Manager
	eopts    env.Options
	deps     env.Deps
	progress template.Progress
	ssh      *keptSSH
	closed   chan struct{}
	// plog is the prefix log plugin lines go to by default; logFile is
	// Options.LogFile, open.
	plog    *prefixLog
	logFile *os.File

	mu sync.Mutex
	// current is the prefix plugins calling back into the core act on
	// (the last one loaded or made), unless callback is set: the prefix
	// of the call in progress (see onPrefix).
	current, callback string
	callbackMu        sync.Mutex
}

// New returns a Client; no plugin starts until a call needs one.
func New(opts Options) (*Client, error) {
	cfg := opts.Config
	if cfg == nil {
		var err error
		if cfg, err = LoadConfig(); err != nil {
			return nil, err
		}
	}
	c := &Client{cfg: cfg, opts: opts, closed: make(chan struct{})}
	if opts.LogFile != "" {
		f, err := os.OpenFile(opts.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, errs.User(fmt.Errorf("log file: %w", err))
		}
		c.logFile = f
	}
	c.host = pluginhost.New(c.hostOptions())
	eopts := envOptions(cfg)
	eopts.Logger = c.engineLogger()
	if opts.Progress != nil {
		logf := func(format string, a ...any) { fmt.Fprintf(opts.Progress, "lago: "+format+"\n", a...) }
		f, _ := opts.Progress.(*os.File) // a terminal gets a bar
		c.progress = template.NewProgress(f, logf, 10*time.Second)
	}
	deps := realDeps(c.host, cfg, c.progress, opts.Progress)
	deps.Services = pluginServices{c.host}
	deps.VMTypes = pluginVMTypes{c.host}
	inner := env.SSHClient{}
	if opts.Executable != "" && cfg.SSHPersist > 0 {
		inner = env.SSHClient{Persist: cfg.SSHPersist, MuxCommand: []string{opts.Executable, lagossh.MuxVerb}}
		deps.SSH = inner
	} else {
		// A program keeps one connection per VM for its lifetime.
		c.ssh = newKeptSSH(inner)
		deps.SSH = c.ssh
	}
	c.eopts, c.deps = eopts, deps
	c.mgr = env.New(eopts, deps)
	return c, nil
}

// engineLogger is the orchestrator's log: Options.Logger (if any) and,
// at PluginLogLevel, the log file (LogFile, else the prefix's
// logs/lago.log), so that info lines such as a vm type's ready time are
// kept where the plugins' lines are even when the terminal shows only
// warnings.
func (c *Client) engineLogger() *slog.Logger {
	var hs fanout
	if c.opts.Logger != nil {
		hs = append(hs, c.opts.Logger.Handler())
	}
	var w io.Writer
	switch {
	case c.logFile != nil:
		w = c.logFile
	case c.plog != nil:
		w = c.plog
	}
	if w != nil {
		hs = append(hs, slog.NewTextHandler(w, &slog.HandlerOptions{Level: slogLevel(c.opts.PluginLogLevel)}))
	}
	if len(hs) == 0 {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(hs)
}

// fanout hands each record to every handler that wants its level.
type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	var first error
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			if err := h.Handle(ctx, r.Clone()); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

func (f fanout) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (f fanout) WithGroup(name string) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithGroup(name)
	}
	return out
}

// withTemplates returns an orchestrator whose templates come from the
// repository and store o names instead of the configuration's.
func (c *Client) withTemplates(o InitOptions) (*env.Manager, error) {
	st, err := templatesFromConfig(c.cfg, c.progress)
	if err != nil {
		return nil, err
	}
	if o.TemplateRepoPath != "" {
		st.Repo.Path, st.Repo.Name = o.TemplateRepoPath, ""
	} else if o.TemplateRepoName != "" {
		st.Repo.Name = o.TemplateRepoName
	}
	if o.TemplateStore != "" {
		st.Store.Dir = o.TemplateStore
	}
	deps := c.deps
	deps.Templates = st
	return env.New(c.eopts, deps), nil
}

// LoadConfig loads the configuration as the lago command does: the
// lago.conf files ($LAGO_CONFIG, ~/.config/lago, /etc/lago), then the
// LAGO__SECTION__KEY variables. Sections only the CLI knows (its verbs'
// flags) are skipped; a bad value is an error naming file and line.
func LoadConfig() (*config.Config, error) {
	return config.Load(config.Options{
		Files:    config.DefaultFiles(os.Getenv),
		Required: config.RequiredFiles(os.Getenv),
		Environ:  os.Environ(),
		Lenient:  true,
	})
}

func (c *Client) hostOptions() pluginhost.Options {
	level := hclog.LevelFromString(c.opts.PluginLogLevel)
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	plog := c.opts.PluginLog
	switch {
	case plog != nil:
	case c.logFile != nil:
		plog = c.logFile
	default:
		c.plog = newPrefixLog(c.LogFile)
		plog = c.plog
	}
	if c.opts.PluginLogAlso != nil {
		plog = io.MultiWriter(plog, c.opts.PluginLogAlso)
	}
	hlog, hlevel := c.opts.HostLog, hclog.LevelFromString(c.opts.HostLogLevel)
	if hlog == nil {
		hlog = plog
	}
	if hlevel == hclog.NoLevel {
		hlevel = hclog.Warn
	}
	o := pluginhost.Options{
		SearchPath: c.opts.PluginSearchPath,
		Pins:       c.cfg.PluginPins,
		CacheFile:  c.opts.PluginCacheFile,
		Logger:     hclog.New(&hclog.LoggerOptions{Name: "lago", Level: hlevel, Output: hlog}),
		PluginLog:  hclog.New(&hclog.LoggerOptions{Level: level, Output: plog}),
		Host:       hostCallbacks{c},
		Prestarted: c.opts.Prestarted,
	}
	if f := c.opts.OnWarning; f != nil {
		o.OnWarning = func(_ string, d sdk.Diagnostic) {
			msg := strings.TrimSpace(d.Summary)
			if detail := strings.TrimSpace(d.Detail); detail != "" {
				msg += ": " + detail
			}
			f(msg)
		}
	}
	return o
}

// Config returns the Client's configuration.
func (c *Client) Config() *config.Config { return c.cfg }

// Plugins returns the plugin host, for callers (the CLI) that run plugin
// verbs and output formats themselves.
func (c *Client) Plugins() *pluginhost.Host { return c.host }

// Close stops the plugin processes and closes kept ssh connections. Envs
// made by the Client must not be used afterwards.
func (c *Client) Close() error {
	select {
	case <-c.closed:
		return nil
	default:
		close(c.closed)
	}
	if c.ssh != nil {
		c.ssh.closeAll()
	}
	// The plugins flush their last lines as they stop, then the logs
	// close.
	c.host.Close()
	if c.plog != nil {
		c.plog.Close()
	}
	if c.logFile != nil {
		return c.logFile.Close()
	}
	return nil
}

// slogLevel maps lago's log levels onto slog's; info is the default.
func slogLevel(l string) slog.Level {
	switch strings.ToLower(l) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (c *Client) setCurrent(path string) {
	c.mu.Lock()
	c.current = path
	c.mu.Unlock()
}

// currentPrefix is the prefix plugins calling back act on: the last one
// this Client loaded or made, else the one the configuration points at.
func (c *Client) currentPrefix() (string, error) {
	c.mu.Lock()
	cur := c.current
	if c.callback != "" {
		cur = c.callback
	}
	c.mu.Unlock()
	if cur != "" {
		return cur, nil
	}
	p, err := prefix.Find(prefix.FindOptions{PrefixPath: c.cfg.PrefixPath, WorkdirPath: c.cfg.WorkdirPath, PrefixName: c.cfg.PrefixName})
	if err != nil {
		return "", err
	}
	return p.Path, nil
}

// LogFile is the log file of the prefix the Client acts on (the last one
// it loaded or made, else the one the configuration points at), once that
// prefix is initialized: where a program may send plugin logs.
func (c *Client) LogFile() (string, bool) {
	path, err := c.currentPrefix()
	if err != nil || !prefix.IsPrefix(path) {
		return "", false
	}
	return (&prefix.Prefix{Path: path}).LogPath(), true
}

// hostCallbacks serves the core's side of lago.host.v1 (guest commands,
// copies, progress) to plugins that call back, on the current prefix.
type hostCallbacks struct{ c *Client }

func (h hostCallbacks) service() *env.HostService {
	w := h.c.opts.Progress
	if w == nil {
		w = io.Discard
	}
	return &env.HostService{M: h.c.mgr, Stderr: w, Prefix: h.c.currentPrefix}
}

func (h hostCallbacks) Exec(ctx context.Context, vm string, argv []string, stdin []byte, stdout, stderr io.Writer) (int, error) {
	return h.service().Exec(ctx, vm, argv, stdin, stdout, stderr)
}

func (h hostCallbacks) CopyTo(ctx context.Context, vm, local, remote string) error {
	return h.service().CopyTo(ctx, vm, local, remote)
}

func (h hostCallbacks) CopyFrom(ctx context.Context, vm, remote, local string) error {
	return h.service().CopyFrom(ctx, vm, remote, local)
}

func (h hostCallbacks) Environment(ctx context.Context) (*hostv1.GetEnvironmentResponse, error) {
	return h.service().Environment(ctx)
}

func (h hostCallbacks) Progress(ctx context.Context, msg string, fraction float64) error {
	return h.service().Progress(ctx, msg, fraction)
}

func (h hostCallbacks) Log(ctx context.Context, level, msg string) error {
	return h.service().Log(ctx, level, msg)
}

// The package-level Init and Load share one Client per program, so a test
// suite that loads an environment in every test starts each plugin once.
var (
	defaultMu     sync.Mutex
	defaultClient *Client
)

// Default returns the program's shared Client, made with zero Options on
// first use. It lives until the program exits (or CloseDefault).
func Default() (*Client, error) {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	if defaultClient != nil {
		return defaultClient, nil
	}
	c, err := New(Options{})
	if err != nil {
		return nil, err
	}
	defaultClient = c
	return c, nil
}

// CloseDefault closes the shared Client (stopping its plugins); a later
// Init or Load makes a new one. Call it at the end of TestMain.
func CloseDefault() error {
	defaultMu.Lock()
	c := defaultClient
	defaultClient = nil
	defaultMu.Unlock()
	if c == nil {
		return nil
	}
	return c.Close()
}

// Init makes an environment with the shared Client; see Client.Init.
func Init(ctx context.Context, o InitOptions) (*Env, error) {
	c, err := Default()
	if err != nil {
		return nil, err
	}
	return c.Init(ctx, o)
}

// Load opens an environment with the shared Client; see Client.Load.
func Load(ctx context.Context, path string) (*Env, error) {
	c, err := Default()
	if err != nil {
		return nil, err
	}
	return c.Load(ctx, path)
}

var errClosed = errors.New("lago: client closed")

func (c *Client) check() error {
	select {
	case <-c.closed:
		return errClosed
	default:
		return nil
	}
}

// PluginVerb is one run of a verb a command plugin serves (`lago VERB`).
type PluginVerb struct {
	Verb       string
	Args       []string
	Flags      map[string]string
	Global     map[string]string
	WorkingDir string
}

// RunPluginVerb runs a command plugin's verb, streaming its output, and
// returns its exit code.
func (c *Client) RunPluginVerb(ctx context.Context, v PluginVerb, stdout, stderr io.Writer) (int, error) {
	if err := c.check(); err != nil {
		return -1, err
	}
	impl, err := c.host.Command(ctx, v.Verb)
	if err != nil {
		return 0, fmt.Errorf("start plugin verb %s: %w", v.Verb, err)
	}
	return impl.Execute(ctx, &commandv1.ExecuteRequest{
		Verb: v.Verb, Args: v.Args, Flags: v.Flags, Global: v.Global, WorkingDir: v.WorkingDir,
	}, stdout, stderr)
}
