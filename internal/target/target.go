// Package target defines where revisions run. Implementations: process (local
// child processes), static (upstreams that run elsewhere) and kubernetes
// (a Deployment per slot).
package target

import (
	"context"
	"net/url"
	"time"
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
	// Image, when set, replaces the image of the pod template's container
	// ImageContainer (its first when empty): Kubernetes target.
	Image          string
	ImageContainer string
	// Upstreams are the endpoint URLs for the static target.
	Upstreams []string
	// Replicas is the number of replicas to start: 0 means 1 for the
	// process target, the app's replicas for the Kubernetes one (which
	// takes it only for the first pods of a rolling update).
	Replicas int
	// Env holds extra environment variables for each replica.
	Env map[string]string
	// OnReplicaExit, when set, is called each time a replica exits while
	// the instance is not stopping, with the replica's state once its
	// restart is scheduled (State CrashLoopBackOff, NextRestartAt set). It
	// runs on the target's own goroutine and should return quickly. Targets
	// that run nothing themselves (static) never call it.
	OnReplicaExit func(Replica)
	// OnClusterEvent, when set, is called with each warning the cluster
	// reports about the slot's workload (a Kubernetes Event such as
	// FailedScheduling or BackOff) from the start until the instance
	// stops: each one once, and a bounded number of them. It runs on the
	// target's own goroutine and should return quickly. Targets that run
	// nothing in a cluster never call it.
	OnClusterEvent func(ClusterEvent)
}

// ClusterEvent is a warning from the cluster that runs a slot.
type ClusterEvent struct {
	// Reason is the cluster's (FailedScheduling, BackOff, Unhealthy, ...).
	Reason  string
	Message string
	// Object is what it is about, as Kind/name ("Pod/web-green-5f7c-x2x9q").
	Object string
	// Count is how often the cluster saw it so far.
	Count int
}

// Workload is what the orchestrator that runs a slot says about it (a
// Kubernetes Deployment), for status output.
type Workload struct {
	// Name is the workload's, as namespace/name.
	Name string `json:"name"`
	// Exists is false when the workload is not there (deleted by hand).
	Exists  bool `json:"exists"`
	Ready   int  `json:"ready"`
	Desired int  `json:"desired"`
	// Unready lists the pods that are not ready and why.
	Unready []UnreadyPod `json:"unready,omitempty"`
}

// UnreadyPod is a pod of a Workload that is not ready.
type UnreadyPod struct {
	Name string `json:"name"`
	// Reason is the cluster's (CrashLoopBackOff, ImagePullBackOff,
	// Unschedulable, Pending, ...); empty while it just starts.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// Instance is one started revision.
type Instance interface {
	// Endpoints returns one URL per replica, fixed for the instance's life
	// unless the instance is Changing.
	Endpoints() []*url.URL
	// Replicas describes each replica for progress and status output.
	Replicas() []Replica
	// Err returns a non-nil error while the instance is failing, for
	// example while a replica crash-loops; the error says why (the exit and
	// the replica's last log lines). A target may go on trying (the process
	// target restarts a replica forever, with backoff), so Err can become
	// nil again: a deploy uses it to fail before the flip, while a slot that
	// serves is left to recover.
	Err() error
	// Stop stops every replica (SIGTERM, then SIGKILL after a grace period)
	// and returns when they have exited or ctx is done.
	Stop(ctx context.Context) error
}

// Changing is an Instance whose endpoints change while it runs: Kubernetes
// pods come and go (a pod deleted and replaced by its ReplicaSet, evicted,
// rescheduled), each with its own IP. Its Endpoints returns the endpoints
// of the moment.
type Changing interface {
	Instance
	// WatchEndpoints calls set with the instance's endpoints now and
	// again after every change, until ctx is done. It returns at once;
	// set runs on a goroutine of the target's, one call at a time.
	WatchEndpoints(ctx context.Context, set func([]*url.URL))
}

// Replica states, as Kubernetes names a container's.
const (
	// ReplicaRunning: the replica's process runs (ready or not is for
	// health checks to say).
	ReplicaRunning = "Running"
	// ReplicaCrashLoopBackOff: the replica exited and waits for its restart
	// at NextRestartAt; the wait doubles with each exit in a row.
	ReplicaCrashLoopBackOff = "CrashLoopBackOff"
	// ReplicaStopped: the instance was stopped; no restart follows.
	ReplicaStopped = "Stopped"
)

// Replica describes one replica of an instance.
type Replica struct {
	Index int    `json:"index"`
	URL   string `json:"url"`
	PID   int    `json:"pid,omitempty"`
	// State is one of ReplicaRunning, ReplicaCrashLoopBackOff and
	// ReplicaStopped; a Kubernetes pod that is not ready has Kubernetes'
	// reason instead (ImagePullBackOff, Pending, ...).
	State    string `json:"state,omitempty"`
	Running  bool   `json:"running"`
	Restarts int    `json:"restarts"`
	// LastExit says how the last run ended ("exit status 3", "signal:
	// killed"), at LastExitAt; empty before the first exit.
	LastExit   string    `json:"lastExit,omitempty"`
	LastExitAt time.Time `json:"lastExitAt,omitzero"`
	// NextRestartAt is when a replica in CrashLoopBackOff is started again.
	NextRestartAt time.Time `json:"nextRestartAt,omitzero"`
	LogFile       string    `json:"logFile,omitempty"`
}
