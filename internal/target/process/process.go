// Package process is the target that runs each replica of a revision as a
// local child process of cutover.
//
// Every replica gets its own free port on 127.0.0.1, passed as PORT in the
// environment and substituted for "${PORT}" in the command's arguments; its
// endpoint is http://127.0.0.1:<port>. An owner goroutine per replica
// restarts it on the same port whenever it exits, for as long as the
// instance is not stopped, with exponential backoff like Kubernetes'
// CrashLoopBackOff: a replica that serves traffic recovers on its own once
// whatever made it crash (a database, a full disk) is back. A replica that
// keeps exiting is reported by Instance.Err, which a deploy uses to fail.
// Replicas run in their own process group so that stopping a replica also
// stops whatever it started (for example the children of `sh -c`). With
// Options.GroupDir the groups are recorded on disk, so that Reap, in the
// next cutover, stops what a killed one left running.
package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/target"
)

// Options configures a process target. The zero value of every field except
// LogDir is a usable default.
type Options struct {
	// LogDir holds replica logs:
	// LogDir/<app>/<slot>-r<revision>-<index>.log, stdout and stderr
	// together, appended across restarts. Required.
	LogDir string
	// Dir is the working directory for replicas; "" means cutover's current
	// directory. A command given as a relative path (./app) is resolved
	// against it; a bare name (app) is looked up on cutover's PATH.
	Dir string
	// StopGrace is the time between SIGTERM and SIGKILL when stopping; 0
	// means 10s.
	StopGrace time.Duration
	// MaxRestarts is how many exits in a row a replica may have before Err
	// reports it as crash-looping (restarts go on regardless); 0 means 3.
	MaxRestarts int
	// FirstBackoff is the wait before restarting a replica after its first
	// exit in a row; each further exit doubles it. 0 means 1s.
	FirstBackoff time.Duration
	// MaxBackoff caps the wait between restarts; 0 means 5m, as Kubernetes.
	MaxBackoff time.Duration
	// BackoffReset is how long a run must last for the next exit to count
	// as the first in a row again (backoff back to FirstBackoff, Err nil
	// again while the replica runs); 0 means 10m, as Kubernetes.
	BackoffReset time.Duration
	// GroupDir, when set, records the process group of every running
	// replica (a file per group), so that the next cutover can stop what a
	// killed one left running: see Reap. "" records nothing.
	GroupDir string
	// Logger receives replica lifecycle events; nil means slog.Default().
	Logger *slog.Logger
}

// Target starts revisions as local child processes.
type Target struct {
	opts Options
}

// New returns a process target with opts' zero values replaced by their
// defaults. A missing LogDir is reported by Start.
func New(opts Options) *Target {
	if opts.StopGrace <= 0 {
		opts.StopGrace = 10 * time.Second
	}
	if opts.MaxRestarts <= 0 {
		opts.MaxRestarts = 3
	}
	if opts.FirstBackoff <= 0 {
		opts.FirstBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	if opts.BackoffReset <= 0 {
		opts.BackoffReset = 10 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Target{opts: opts}
}

// Start starts spec.Replicas replicas (0 means 1) of spec.Command and returns
// as soon as their processes exist; readiness is for health checks to decide.
// Each replica's environment is cutover's own, then spec.Env, then PORT and
// MarkerEnv, later entries winning, so PORT is always the replica's port.
//
// If a replica cannot be started at all (executable not found or not
// executable), Start stops the replicas it already started and returns an
// error naming the command. ctx bounds only Start itself: the replicas run
// until the instance is stopped.
func (t *Target) Start(ctx context.Context, spec target.Spec) (target.Instance, error) {
	name := revisionName(spec)
	if t.opts.LogDir == "" {
		return nil, fmt.Errorf("start %s: the process target has no log directory; set Options.LogDir", name)
	}
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return nil, fmt.Errorf("start %s: no command to run; give the replica command in the app's process target", name)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	count := spec.Replicas
	if count <= 0 {
		count = 1
	}
	logDir := filepath.Join(t.opts.LogDir, spec.App)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("start %s: create log directory: %w; check that %s is writable", name, err, t.opts.LogDir)
	}
	ports, err := freePorts(count)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}

	inst := newInstance(name, t.opts, spec.OnReplicaExit)
	inst.newReplica = func(i, port int) *replica {
		marker := newMarker(spec.App, spec.Slot, spec.Revision, i)
		return &replica{
			inst:    inst,
			index:   i,
			url:     &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))},
			logPath: filepath.Join(logDir, fmt.Sprintf("%s-r%d-%d.log", spec.Slot, spec.Revision, i)),
			args:    substitutePort(spec.Command, port),
			env:     append(replicaEnv(spec.Env, port), MarkerEnv+"="+marker),
			marker:  marker,
			dir:     t.opts.Dir,
			log:     inst.log.With("replica", i, "port", port),
			done:    make(chan struct{}),
			retired: make(chan struct{}),
			kill:    make(chan struct{}),
		}
	}
	for i, port := range ports {
		if err := ctx.Err(); err != nil {
			return nil, errors.Join(fmt.Errorf("start %s: %w", name, err), inst.Stop(ctx))
		}
		if err := inst.add(inst.newReplica(i, port)); err != nil {
			return nil, errors.Join(err, inst.Stop(ctx))
		}
	}
	return inst, nil
}

// revisionName names a revision in messages: "web v2 (slot green)".
func revisionName(spec target.Spec) string {
	version := spec.Version
	if version == "" {
		version = "revision " + strconv.Itoa(spec.Revision)
	}
	return fmt.Sprintf("%s %s (slot %s)", spec.App, version, spec.Slot)
}

// freePorts asks the kernel for n distinct free ports on 127.0.0.1. All
// listeners stay open until every port is known, so the kernel cannot hand
// out the same port twice; after they close, another program could in
// principle take one before the replica binds it, which is the accepted cost
// of letting the replica bind the port itself.
func freePorts(n int) ([]int, error) {
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// substitutePort replaces "${PORT}" in every argument, the program included.
func substitutePort(command []string, port int) []string {
	p := strconv.Itoa(port)
	args := make([]string, len(command))
	for i, a := range command {
		args[i] = strings.ReplaceAll(a, "${PORT}", p)
	}
	return args
}

// replicaEnv is cutover's environment, then extra (in key order, for
// reproducible process listings), then PORT; os/exec keeps the last value of
// a repeated key.
func replicaEnv(extra map[string]string, port int) []string {
	env := os.Environ()
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		env = append(env, k+"="+extra[k])
	}
	return append(env, "PORT="+strconv.Itoa(port))
}
