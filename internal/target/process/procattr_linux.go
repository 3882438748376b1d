package process

import "syscall"

// replicaProcAttr puts a replica in a process group of its own, so Stop can
// signal everything it started, such as the children of `sh -c`.
//
// If cutover dies without stopping its replicas (kill -9, crash), Pdeathsig
// has the kernel kill them, so they do not keep their ports and run
// unsupervised. The signal fires when the OS thread that started the child
// exits; the Go runtime only ends threads whose goroutine exits while locked
// to its thread (runtime.LockOSThread), which nothing here does. It reaches
// the replica's main process only: its own children get SIGKILL from the
// group kill in endGroup when that process exits while cutover still runs,
// and from Reap at cutover's next start when cutover was killed.
func replicaProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
