//go:build !linux

package process

import "syscall"

// replicaProcAttr puts a replica in a process group of its own, so Stop can
// signal everything it started. Outside Linux there is no Pdeathsig: Reap at
// cutover's next start stops what a killed cutover left.
func replicaProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
