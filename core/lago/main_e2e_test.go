//go:build e2e

package lago_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lago-go/lago/core/lago"
)

// exampleInitFile is one tiny VM on one nat net (the e2e template logs in
// with the default root password, so bootstrap is skipped).
const exampleInitFile = `domains:
  vm0:
    memory: 256
    nics:
      - net: lago
    disks:
      - template_name: tiny
        type: template
        name: root
        dev: vda
        format: qcow2
nets:
  lago:
    type: nat
    dhcp:
      start: 100
      end: 254
    management: true
`

// TestMain prepares what the examples take for granted, from the e2e
// harness's variables (test/e2e/run.sh): a lago.conf, a LagoInitFile and a
// started environment in ./.lago of a scratch folder. Without the harness
// it fails: the examples need real VMs and are never skipped.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() == "^$" {
		// run.sh's compile step (`go test -run '^$'`): nothing to set up.
		return m.Run()
	}
	root := os.Getenv("LAGO_E2E_ROOT")
	if root == "" || os.Getenv("LAGO_E2E_TEMPLATE_REPO") == "" {
		fmt.Fprintln(os.Stderr, "the examples of core/lago run against real VMs through test/e2e/run.sh (make e2e)")
		return 1
	}
	dir, err := os.MkdirTemp(filepath.Join(root, "work"), "examples-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	conf := fmt.Sprintf("[lago]\nlease_dir = %s\n\n[init]\ntemplate_store = %s\ntemplate_repos = %s\ntemplate_repo_path = %s\nskip_bootstrap = True\n\n[provider local-libvirt]\nplugin = libvirt\ndomain_type = qemu\n",
		os.Getenv("LAGO_E2E_LEASE_DIR"), os.Getenv("LAGO_E2E_STORE"), os.Getenv("LAGO_E2E_REPOS"), os.Getenv("LAGO_E2E_TEMPLATE_REPO"))
	for name, content := range map[string]string{"lago.conf": conf, "LagoInitFile": exampleInitFile} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	os.Setenv("LAGO_CONFIG", filepath.Join(dir, "lago.conf"))
	if err := os.Chdir(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	env, err := lago.Init(ctx, lago.InitOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "init:", err)
		return 1
	}
	defer func() {
		if err := env.Destroy(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintln(os.Stderr, "destroy:", err)
		}
		lago.CloseDefault()
		os.Chdir(root)
		os.RemoveAll(dir)
	}()
	if err := env.Start(ctx, lago.StartOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		return 1
	}
	return m.Run()
}
