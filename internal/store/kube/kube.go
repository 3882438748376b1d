// Package kube keeps cutover's store in the Kubernetes API server, so that
// a cutover whose disk is gone (a rescheduled pod) finds every app, its
// revisions, its history and its rollout in progress where it left them.
//
// Layout, in one namespace:
//
//	CutoverApp <app>            (cutover.dev/v1alpha1, crd.yaml)
//	  status.state              store.AppState
//	  status.revisions          the last MaxRevisions store.Revision, oldest first
//	  status.events             the last MaxEvents store.Event, oldest first
//	  status.activeRevision,
//	  status.activeVersion      what `kubectl get cutoverapps` shows
//	  spec.version, spec.image  the user's: a version to deploy (spec.go)
//	  status.specDeploy         the last spec acted on, and its outcome
//	ConfigMap cutover-rollout-ids   data.last: the last rollout id handed out
//	Lease cutover-store             held by the one cutover that writes
//
// Every write changes the object as this store last wrote it (or reads
// it) and writes it back with that resourceVersion; on a conflict it reads
// the object again and retries, so two writers never lose each other's
// change or get the same number. Revision numbers and
// event sequence numbers go on from the newest one kept, so trimming the
// oldest never reuses a number.
//
// The Lease makes the store one cutover's at a time, as bbolt's file lock
// does for a data dir: Open waits for it (a cutover killed with kill -9
// holds it until it expires, LeaseDuration), fails if a live cutover
// keeps renewing it (with Options.Standby, waits until that one stops
// renewing it), and Lost reports when this one could not renew it.
package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Bounds of what an app's object keeps; older records are dropped. An
// object must stay well under the API server's limit (about 1.5 MB).
const (
	MaxRevisions = 100
	MaxEvents    = 500
)

// callTimeout bounds each call to the API server, retries included.
const callTimeout = 30 * time.Second

// ErrLost is returned (wrapped) by every call once this cutover could not
// renew the store's Lease: another cutover may be writing.
var ErrLost = errors.New("this cutover lost the Lease of its Kubernetes store; another cutover may write to it now, restart this one")

// Options configure Open.
type Options struct {
	// Config reaches the API server.
	Config *rest.Config
	// Namespace holds the objects; required.
	Namespace string
	// Identity names this cutover in the Lease; "" means host name and
	// PID.
	Identity string
	// LeaseDuration is how long the Lease outlives its last renewal;
	// zero means 15s. The Lease is renewed every LeaseDuration/5.
	LeaseDuration time.Duration
	// Wait bounds how long Open waits for a Lease that another cutover
	// holds; zero means twice LeaseDuration: the Lease of a killed
	// cutover expires LeaseDuration after this one first sees it, and
	// client-go then tries to take it every LeaseDuration/5 plus up to
	// 120 % jitter.
	Wait time.Duration
	// Standby waits for the Lease with no bound but ctx: this cutover is
	// a standby that takes the store over when its holder stops renewing
	// the Lease. Wait is then ignored.
	Standby bool
	// Holder, if set, is told the identity of another cutover holding
	// the Lease each time Open (and the renewal after it) sees it change.
	Holder func(identity string)
}

// Store is an open store. It is safe for concurrent use.
type Store struct {
	Watcher
	core    kubernetes.Interface
	lease   *lease
	maxRevs int
	maxEvs  int

	mu   sync.Mutex
	last map[string]written // by app
	// deleted are the apps whose object must not be created again.
	deleted map[string]bool
}

// Open makes sure the CutoverApp definition exists (creating it if the
// credentials allow), takes the store's Lease and returns the store.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Namespace == "" {
		return nil, errors.New("kubernetes store: namespace is empty")
	}
	dyn, err := dynamic.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("kubernetes store: %w", err)
	}
	core, err := kubernetes.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("kubernetes store: %w", err)
	}
	if err := ensureCRD(ctx, dyn, opts.Namespace); err != nil {
		return nil, err
	}
	if opts.Identity == "" {
		host, _ := os.Hostname()
		opts.Identity = fmt.Sprintf("%s_%d", host, os.Getpid())
	}
	if opts.LeaseDuration == 0 {
		opts.LeaseDuration = 15 * time.Second
	}
	if opts.Wait == 0 {
		opts.Wait = 2 * opts.LeaseDuration
	}
	l, err := takeLease(ctx, core, opts)
	if err != nil {
		return nil, err
	}
	return &Store{Watcher: Watcher{ns: opts.Namespace, dyn: dyn}, core: core, lease: l, maxRevs: MaxRevisions, maxEvs: MaxEvents,
		last: map[string]written{}, deleted: map[string]bool{}}, nil
}

// Lost is closed when this cutover could not renew the Lease; every call
// then fails with ErrLost.
func (s *Store) Lost() <-chan struct{} { return s.lease.lost }

// Close gives the Lease up, so that the next cutover takes the store at
// once. Calling it again is a no-op.
func (s *Store) Close() error {
	s.lease.release()
	return nil
}

// call returns a context for one call to the API server, or ErrLost.
func (s *Store) call() (context.Context, context.CancelFunc, error) {
	select {
	case <-s.lease.lost:
		return nil, nil, ErrLost
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	return ctx, cancel, nil
}
