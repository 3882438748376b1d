// Package procfs reads what Linux's /proc says about a process.
package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// Stat returns the fields of /proc/PID/stat that follow the command
// (state, parent pid, process group, ...), or nil when pid is gone or
// there is no /proc.
func Stat(pid int) []string {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(stat[i+1:]))
}
