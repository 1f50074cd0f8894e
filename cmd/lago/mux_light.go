//go:build lagolight

package main

import "io"

// hiddenMain: the front-end has no internal entry points; the engine's
// are reached by running the engine itself.
func hiddenMain([]string, io.Reader, io.Writer) (int, bool) { return 0, false }
