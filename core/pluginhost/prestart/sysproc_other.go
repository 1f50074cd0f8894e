//go:build !linux

package prestart

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
