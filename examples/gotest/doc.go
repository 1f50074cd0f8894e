// Package gotest is an example of a Go test suite outside lago's own
// modules that gets a two-VM environment from lagotest, the way a
// project testing its software on VMs would. Its test needs real VMs and
// runs in lago's e2e suite (`-tags e2e`, see test/e2e/run.sh); a project
// of its own would run it with a lago.conf (LAGO_CONFIG) naming its
// template repository.
package gotest
