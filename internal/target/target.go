// Package target defines where revisions run. Implementations: process (local
// child processes) and static (upstreams that run elsewhere).
package target

import (
	"context"
	"net/url"
)

// Spec says what to start for one revision on one slot.
type Spec struct {
	App      string
	Slot     string
	Revision int
	Version  string
	// Command is the replica command for the process target; "${PORT}" in any
	// argument is replaced by the port chosen for each replica.
	Command []string
	// Upstreams are the endpoint URLs for the static target.
	Upstreams []string
	// Replicas is the number of replicas to start (process target); 0 means 1.
	Replicas int
	// Env holds extra environment variables for each replica.
	Env map[string]string
}

// Instance is one started revision.
type Instance interface {
	// Endpoints returns one URL per replica, fixed for the instance's life.
	Endpoints() []*url.URL
	// Replicas describes each replica for progress and status output.
	Replicas() []Replica
	// Err returns a non-nil error once the instance has failed for good, for
	// example a replica that keeps crashing; the error says why.
	Err() error
	// Stop stops every replica (SIGTERM, then SIGKILL after a grace period)
	// and returns when they have exited or ctx is done.
	Stop(ctx context.Context) error
}

// Replica describes one replica of an instance.
type Replica struct {
	Index    int    `json:"index"`
	URL      string `json:"url"`
	PID      int    `json:"pid,omitempty"`
	Running  bool   `json:"running"`
	Restarts int    `json:"restarts"`
	LastExit string `json:"lastExit,omitempty"`
	LogFile  string `json:"logFile,omitempty"`
}
