package main

import "syscall"

// childProcAttr has the kernel kill a traild the bench started when the
// bench dies without stopping it (a panic, a test timeout), so that no
// node outlives its run. The signal is tied to the thread that started the
// child, which the Go runtime keeps alive unless a goroutine locked to it
// exits; the bench locks none.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
