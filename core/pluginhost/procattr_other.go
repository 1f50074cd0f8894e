//go:build !linux

package pluginhost

import "os/exec"

func setProcAttr(cmd *exec.Cmd) {}
