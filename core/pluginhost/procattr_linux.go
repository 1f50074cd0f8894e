package pluginhost

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the kernel kill the plugin if lago dies without
// reaping it (a SIGKILL, a crash): plugins ignore SIGINT, so they would
// otherwise outlive an interrupted lago.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
