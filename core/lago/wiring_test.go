package lago

import (
	"context"
	"crypto/sha1"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lago-go/lago/core/config"
	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/errs"
)

func TestOptionsFromConfig(t *testing.T) {
	c, err := config.Load(config.Options{Environ: []string{
		"LAGO_SSH_USER=bob",
		"LAGO_DEFAULT_ROOT_PASSWORD=pw",
		"LAGO__START__PARALLELISM=2",
		"LAGO__START__TIMEOUT=90s",
	}})
	if err != nil {
		t.Fatal(err)
	}
	o := envOptions(c)
	if o.SSHUser != "bob" || o.DefaultRootPassword != "pw" || o.StartParallelism != 2 || o.StartTimeout != 90*time.Second {
		t.Errorf("options = %+v", o)
	}
	if o.DefaultProvider != config.DefaultProviderInstance || len(o.ProviderInstances) != 1 || o.ProviderInstances[0] != config.DefaultProviderInstance {
		t.Errorf("providers: default %q, instances %v", o.DefaultProvider, o.ProviderInstances)
	}
}

// TestTemplatesFromConfigRepoChoice: a template_repo_path that was given
// (file, environment or flag) wins over template_repo_name, as in the
// original; the default path gives way to a name.
func TestTemplatesFromConfigRepoChoice(t *testing.T) {
	dir := t.TempDir()
	images := filepath.Join(dir, "images")
	mustMkdir(t, images)
	data := []byte("QFI\xfb pretend qcow2")
	mustWrite(t, filepath.Join(images, "tiny.qcow2"), string(data))
	mustWrite(t, filepath.Join(images, "tiny.qcow2.hash"), fmt.Sprintf("%x", sha1.Sum(data)))
	repoPath := filepath.Join(dir, "repo.metadata")
	mustWrite(t, repoPath, fmt.Sprintf(`{"name": "byPath",
 "sources": {"local": {"type": "file", "args": {"root": %q}}},
 "templates": {"tiny": {"versions": {"v1": {"source": "local", "handle": "tiny.qcow2", "timestamp": 1}}}}}`, images))
	flag := func(id, v string) map[string]config.FlagValue {
		return map[string]config.FlagValue{id: {Value: v, Flag: "--" + strings.ReplaceAll(strings.TrimPrefix(id, "init."), "_", "-")}}
	}
	missingRepos := filepath.Join(dir, "no-repos-here")
	tests := []struct {
		name     string
		opts     config.Options
		wantName string
	}{
		{name: "path flag and name flag", wantName: "",
			opts: config.Options{
				Flags:   mergeFlags(flag("init.template_repo_path", repoPath), flag("init.template_repo_name", "other")),
				Environ: []string{"LAGO__INIT__TEMPLATE_REPOS=" + missingRepos}}},
		{name: "path from the environment, name flag", wantName: "",
			opts: config.Options{
				Flags:   flag("init.template_repo_name", "other"),
				Environ: []string{"LAGO__INIT__TEMPLATE_REPO_PATH=" + repoPath, "LAGO__INIT__TEMPLATE_REPOS=" + missingRepos}}},
		{name: "default path, name flag", wantName: "other",
			opts: config.Options{Flags: flag("init.template_repo_name", "other")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			st, err := templatesFromConfig(c, nil)
			if err != nil {
				t.Fatal(err)
			}
			if st.Repo.Name != tt.wantName {
				t.Fatalf("repository name %q, want %q", st.Repo.Name, tt.wantName)
			}
			if tt.wantName != "" {
				return
			}
			st.Store.Dir, st.Store.NoSync = filepath.Join(t.TempDir(), "store"), true
			img, err := st.Get(context.Background(), env.TemplateRef{Name: "tiny"})
			if err != nil || img.Key != "byPath:tiny:v1" {
				t.Fatalf("got %+v, %v; want the template of the repository at the path", img, err)
			}
		})
	}
}

func mergeFlags(ms ...map[string]config.FlagValue) map[string]config.FlagValue {
	out := map[string]config.FlagValue{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// TestTemplatesFromConfigLimits: the [init] limits reach the store and the
// repository options; a bad size fails the first template with its origin.
func TestTemplatesFromConfigLimits(t *testing.T) {
	c, err := config.Load(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := templatesFromConfig(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Store.MaxImageSize != 64<<30 || st.Store.StallTimeout != 2*time.Minute ||
		st.Repo.ConnectTimeout != 30*time.Second || st.Repo.ResponseTimeout != time.Minute || st.Repo.StallTimeout != 2*time.Minute {
		t.Errorf("defaults: store %+v, repo %+v", st.Store, st.Repo)
	}

	c, err = config.Load(config.Options{Environ: []string{
		"LAGO__INIT__TEMPLATE_CONNECT_TIMEOUT=5s",
		"LAGO__INIT__TEMPLATE_RESPONSE_TIMEOUT=7",
		"LAGO__INIT__TEMPLATE_STALL_TIMEOUT=9s",
		"LAGO__INIT__TEMPLATE_MAX_IMAGE_SIZE=0",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if st, err = templatesFromConfig(c, nil); err != nil {
		t.Fatal(err)
	}
	if st.Store.MaxImageSize != -1 || st.Store.StallTimeout != 9*time.Second ||
		st.Repo.ConnectTimeout != 5*time.Second || st.Repo.ResponseTimeout != 7*time.Second || st.Repo.StallTimeout != 9*time.Second {
		t.Errorf("set: store %+v, repo %+v", st.Store, st.Repo)
	}

	// A bad size is refused when the configuration loads, naming where
	// it came from, before any verb runs.
	_, err = config.Load(config.Options{Environ: []string{"LAGO__INIT__TEMPLATE_MAX_IMAGE_SIZE=lots"}})
	if err == nil || !errs.IsUser(err) || !strings.Contains(err.Error(), "LAGO__INIT__TEMPLATE_MAX_IMAGE_SIZE") || !strings.Contains(err.Error(), `"lots"`) {
		t.Fatalf("got %v, want a Lago error naming the variable and the value", err)
	}
}
