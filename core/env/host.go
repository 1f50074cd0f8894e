package env

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"

	hostv1 "github.com/lago-go/lago/proto/lago/host/v1"
	"github.com/lago-go/lago/sdk"
)

// HostService is the core's side of lago.host.v1: what plugins (service
// managers, vm types, command verbs) call to act on the environment's
// guests without knowing how the core reaches them. It resolves the prefix
// at each call, so a plugin started before any prefix exists still works
// once one does.
type HostService struct {
	M *Manager
	// Prefix returns the path of the environment the plugins act on.
	Prefix func() (string, error)
	// Stderr receives progress lines; nil discards them.
	Stderr io.Writer
}

var _ sdk.Host = (*HostService)(nil)

// Exec runs argv in the guest vm over ssh and returns its exit code.
func (h *HostService) Exec(ctx context.Context, vm string, argv []string, stdin []byte, stdout, stderr io.Writer) (int, error) {
	p, err := h.Prefix()
	if err != nil {
		return 0, err
	}
	return h.M.Shell(ctx, p, vm, argv, bytes.NewReader(stdin), stdout, stderr)
}

// CopyTo copies a local file or folder into the guest (see
// Manager.CopyTo: the verbs' implementation).
func (h *HostService) CopyTo(ctx context.Context, vm, localPath, remotePath string) error {
	p, err := h.Prefix()
	if err != nil {
		return err
	}
	return h.M.CopyTo(ctx, p, vm, localPath, remotePath)
}

// CopyFrom copies a guest file or folder to localPath, which appears only
// complete (see Manager.CopyFrom).
func (h *HostService) CopyFrom(ctx context.Context, vm, remotePath, localPath string) error {
	p, err := h.Prefix()
	if err != nil {
		return err
	}
	return h.M.CopyFrom(ctx, p, vm, remotePath, localPath)
}

// Environment describes the prefix: its path, uuid and specs as JSON
// ({"nets": [...], "vms": [...]}, the on-disk spec format).
func (h *HostService) Environment(ctx context.Context) (*hostv1.GetEnvironmentResponse, error) {
	p, err := h.Prefix()
	if err != nil {
		return nil, err
	}
	e, err := h.M.Load(p)
	if err != nil {
		return nil, err
	}
	doc, err := json.Marshal(map[string]any{"nets": e.Nets, "vms": e.VMs})
	if err != nil {
		return nil, fmt.Errorf("encode environment %s: %w", p, err)
	}
	return &hostv1.GetEnvironmentResponse{PrefixPath: e.Path, Uuid: e.UUID, EnvironmentJson: doc}, nil
}

// Progress prints a plugin's progress line.
func (h *HostService) Progress(_ context.Context, message string, fraction float64) error {
	if h.Stderr == nil {
		return nil
	}
	if fraction >= 0 {
		_, err := fmt.Fprintf(h.Stderr, "lago: %s (%.0f%%)\n", message, fraction*100)
		return err
	}
	_, err := fmt.Fprintf(h.Stderr, "lago: %s\n", message)
	return err
}

// Log re-emits a plugin's log line in the core's log.
func (h *HostService) Log(ctx context.Context, level, message string) error {
	l := slog.LevelInfo
	switch strings.ToLower(level) {
	case "debug", "trace":
		l = slog.LevelDebug
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	}
	h.M.log().Log(ctx, l, message, "source", "plugin")
	return nil
}
