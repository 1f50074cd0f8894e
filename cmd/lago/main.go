// Command lago builds throw-away multi-VM environments from a declarative
// init file. This is its front-end, installed as bin/lago: the command
// line of package internal/cli over a plugin host that only reads the
// plugins' describe cache (catalog.go). It serves help, version,
// completion, generate-config and `plugins` itself and execs
// <prefix>/libexec/lago/lago-engine (package cmd/lago/engine) with the same
// arguments for everything else (forward.go). It links no gRPC, go-plugin
// or protobuf, whose package initialisation and page faults would dominate
// the start-up of `lago --help` (TestFrontEndLinksNoRPC).
package main

import (
	"os"

	"github.com/lago-go/lago/cmd/lago/internal/cli"
)

func main() {
	backend := cli.Backend{NewHost: newCatalog, Forward: forward}
	os.Exit(cli.Run(backend, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ()))
}
