// Package version holds the lago version string. It is a plain variable so
// the Makefile can set it at link time with
// -ldflags "-X github.com/lago-go/lago/core/version.Version=...".
package version

// Version is the lago release; "dev" for builds outside the Makefile.
var Version = "dev"

// String returns the version line printed by `lago --version`.
func String() string { return "lago " + Version }
