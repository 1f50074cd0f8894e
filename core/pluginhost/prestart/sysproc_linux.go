package prestart

import "syscall"

// sysProcAttr makes the kernel kill the plugin when the thread that started
// it dies, like the plugins the engine starts (pluginhost.setProcAttr).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
