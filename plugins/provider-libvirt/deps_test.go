package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoCoreImport keeps the plugin buildable by third parties: it may use
// sdk and proto from this repository, never core.
func TestNoCoreImport(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/lago-go/lago/core") || strings.HasPrefix(dep, "github.com/lago-go/lago/cmd") {
			t.Errorf("the plugin depends on %s", dep)
		}
	}
}
