package env

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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

// CopyTo copies a local file into the guest by streaming it to `cat`; the
// remote path travels as an argument, never inside the script.
func (h *HostService) CopyTo(ctx context.Context, vm, localPath, remotePath string) error {
	f, err := os.Open(localPath)
	if err != nil {
		return fmt.Errorf("copy %s to %s:%s: %w", localPath, vm, remotePath, err)
	}
	defer f.Close()
	return h.copy(ctx, vm, []string{"sh", "-c", `cat > "$1"`, "sh", remotePath}, f, io.Discard,
		fmt.Sprintf("copy %s to %s:%s", localPath, vm, remotePath))
}

// CopyFrom copies a guest file to localPath; the local file appears only
// complete (temp file + rename).
func (h *HostService) CopyFrom(ctx context.Context, vm, remotePath, localPath string) error {
	what := fmt.Sprintf("copy %s:%s to %s", vm, remotePath, localPath)
	tmp, err := os.CreateTemp(filepath.Dir(localPath), "."+filepath.Base(localPath)+".*")
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer os.Remove(tmp.Name())
	if err := h.copy(ctx, vm, []string{"cat", "--", remotePath}, nil, tmp, what); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := os.Rename(tmp.Name(), localPath); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (h *HostService) copy(ctx context.Context, vm string, argv []string, in io.Reader, out io.Writer, what string) error {
	p, err := h.Prefix()
	if err != nil {
		return err
	}
	var errb strings.Builder
	code, err := h.M.Shell(ctx, p, vm, argv, in, out, &errb)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if code != 0 {
		return fmt.Errorf("%s: status %d: %s", what, code, strings.TrimSpace(errb.String()))
	}
	return nil
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
