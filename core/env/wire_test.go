package env

import (
	"testing"
	"time"

	"github.com/lago-go/lago/core/config"
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
	o := OptionsFromConfig(c)
	if o.SSHUser != "bob" || o.DefaultRootPassword != "pw" || o.StartParallelism != 2 || o.StartTimeout != 90*time.Second {
		t.Errorf("options = %+v", o)
	}
	if o.DefaultProvider != config.DefaultProviderInstance || len(o.ProviderInstances) != 1 || o.ProviderInstances[0] != config.DefaultProviderInstance {
		t.Errorf("providers: default %q, instances %v", o.DefaultProvider, o.ProviderInstances)
	}
}
