package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/store/bolt"
	"github.com/cutover/cutover/internal/store/kube"
)

// errUpgrading is what store calls return while an upgrade has handed the
// store to the new process.
var errUpgrading = errors.New("cutover is upgrading: the store belongs to the new process; try again in a few seconds")

// kubeOpenWait bounds the opening of a store in the API server: the
// CutoverApp definition, and the Lease of a cutover killed without giving
// it up, which expires within kube's default LeaseDuration.
const kubeOpenWait = time.Minute

// lockWait bounds how long a new process waits for the old one to let go
// of the store during an upgrade.
const lockWait = 30 * time.Second

// storeHandle is the controller's store while this process holds it:
// bolt's in the data dir, or kube's in the API server (store.kubernetes).
// An upgrade closes it and, if the new process fails, opens it again; in
// between every call fails with errUpgrading, and the router keeps
// serving from memory.
type storeHandle struct {
	dir  string
	kube *config.KubernetesStore // nil for bolt
	// lost is told when a kube store lost its Lease: the daemon stops.
	lost func(error)
	// holder, if set, is told who holds a kube store's Lease while this
	// process waits for it.
	holder func(identity string)
	mu     sync.RWMutex // held for reading by every call, for writing to swap db
	db     backend      // nil while closed
	// closed is closed when db is, ending the watch of its Lease.
	closed chan struct{}
}

// backend is a store the daemon opens and closes.
type backend interface {
	controller.Store
	Close() error
}

// openStore opens the store. With wait, a store that another process
// holds is waited for (the old process of an upgrade closes it just
// before starting this one); without, it fails at once with bolt's "in
// use" error, or after a kube store's Lease wait.
func (s *storeHandle) openStore(ctx context.Context, wait bool) error {
	var db backend
	var err error
	if s.kube != nil {
		db, err = openKubeStore(ctx, s.kube, s.holder)
	} else {
		db, err = openBolt(ctx, s.dir, wait)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.db, s.closed = db, make(chan struct{})
	if ks, ok := db.(*kube.Store); ok {
		go watchLease(ks, s.closed, s.lost)
	}
	return nil
}

// watchLease reports the loss of ks's Lease, until closed.
func watchLease(ks *kube.Store, closed <-chan struct{}, lost func(error)) {
	select {
	case <-ks.Lost():
		lost(kube.ErrLost)
	case <-closed:
	}
}

// openKubeStore opens the store in the API server. A standby
// (store.kubernetes.standby) waits for the Lease as long as it takes.
func openKubeStore(ctx context.Context, kc *config.KubernetesStore, holder func(string)) (*kube.Store, error) {
	cfg, err := restConfig(kc.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("store.kubernetes: %w", err)
	}
	opts := kube.Options{Config: cfg, Namespace: storeNamespace(kc), Holder: holder}
	if kc.Standby {
		opts.Standby, opts.LeaseDuration = true, standbyLease
		return kube.Open(ctx, opts)
	}
	ctx, cancel := context.WithTimeout(ctx, kubeOpenWait)
	defer cancel()
	return kube.Open(ctx, opts)
}

// storeNamespace is the namespace of kc's objects.
func storeNamespace(kc *config.KubernetesStore) string {
	if kc.Namespace != "" {
		return kc.Namespace
	}
	return defaultNamespace(kc.Kubeconfig)
}

// defaultNamespace is the namespace cutover runs in (in a cluster), else
// the kubeconfig context's, else default.
func defaultNamespace(kubeconfig string) string {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	ns, _, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).Namespace()
	if err != nil || ns == "" {
		return "default"
	}
	return ns
}

// openBolt opens the bolt store in dir. With wait, a store that another
// process holds is retried for up to lockWait; without, it fails at once
// with bolt's "in use" error.
func openBolt(ctx context.Context, dir string, wait bool) (*bolt.DB, error) {
	ctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	for {
		db, err := bolt.Open(dir)
		if err == nil || !wait || !errors.Is(err, bolt.ErrLocked) {
			return db, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (waited %s for the previous cutover to release it)", err, lockWait)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// release closes the DB; calls fail with errUpgrading until reopen.
func (s *storeHandle) release() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	close(s.closed)
	if err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// reopen opens the store again after a failed upgrade, waiting for the
// failed process to let go of it.
func (s *storeHandle) reopen(ctx context.Context) error {
	return s.openStore(ctx, true)
}

// open reports whether this process holds the store.
func (s *storeHandle) open() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db != nil
}

// with runs f on the DB while holding it open.
func with[T any](s *storeHandle, f func(db backend) (T, error)) (T, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		var zero T
		return zero, errUpgrading
	}
	return f(s.db)
}

// App implements controller.Store.
func (s *storeHandle) App(name string) (store.AppState, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return store.AppState{}, false, errUpgrading
	}
	return s.db.App(name)
}

// PutApp implements controller.Store.
func (s *storeHandle) PutApp(st store.AppState) error {
	_, err := with(s, func(db backend) (struct{}, error) { return struct{}{}, db.PutApp(st) })
	return err
}

// AddRevision implements controller.Store.
func (s *storeHandle) AddRevision(rev store.Revision) (store.Revision, error) {
	return with(s, func(db backend) (store.Revision, error) { return db.AddRevision(rev) })
}

// Revision implements controller.Store.
func (s *storeHandle) Revision(app string, n int) (store.Revision, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return store.Revision{}, false, errUpgrading
	}
	return s.db.Revision(app, n)
}

// Revisions implements controller.Store.
func (s *storeHandle) Revisions(app string) ([]store.Revision, error) {
	return with(s, func(db backend) ([]store.Revision, error) { return db.Revisions(app) })
}

// AppendEvent implements controller.Store.
func (s *storeHandle) AppendEvent(ev store.Event) (store.Event, error) {
	return with(s, func(db backend) (store.Event, error) { return db.AppendEvent(ev) })
}

// Events implements controller.Store.
func (s *storeHandle) Events(app string, limit int) ([]store.Event, error) {
	return with(s, func(db backend) ([]store.Event, error) { return db.Events(app, limit) })
}

// NextRolloutID implements controller.Store.
func (s *storeHandle) NextRolloutID() (int64, error) {
	return with(s, func(db backend) (int64, error) { return db.NextRolloutID() })
}

// WatchApps watches the CutoverApps of a kube store (gitops.Store); it
// returns at once for a bolt store.
func (s *storeHandle) WatchApps(ctx context.Context, resync time.Duration, seen func(kube.AppObject), gone func(string), bad func(error)) {
	s.mu.RLock()
	ks, _ := s.db.(*kube.Store)
	s.mu.RUnlock()
	if ks != nil {
		ks.WatchApps(ctx, resync, seen, gone, bad)
	}
}

// objects returns the CutoverApps of a kube store; none for a bolt store.
func (s *storeHandle) objects() ([]kube.AppObject, error) {
	return with(s, func(db backend) ([]kube.AppObject, error) {
		if ks, ok := db.(*kube.Store); ok {
			return ks.Objects()
		}
		return nil, nil
	})
}

// deleted tells a kube store that app's CutoverApp was deleted with the
// app, or that the app is back (see kube.Store.Deleted).
func (s *storeHandle) deleted(app string, deleted bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ks, ok := s.db.(*kube.Store); ok {
		ks.Deleted(app, deleted)
	}
}

// PutAppError records a CutoverApp's status.appError (gitops.Store).
func (s *storeHandle) PutAppError(app, msg string) error {
	return s.kubeWrite(func(ks *kube.Store) error { return ks.PutAppError(app, msg) })
}

// PutSpecDeploy records a CutoverApp's status.specDeploy (gitops.Store).
func (s *storeHandle) PutSpecDeploy(app string, d kube.SpecDeploy) error {
	return s.kubeWrite(func(ks *kube.Store) error { return ks.PutSpecDeploy(app, d) })
}

// kubeWrite runs write on a kube store while holding it open.
func (s *storeHandle) kubeWrite(write func(*kube.Store) error) error {
	_, err := with(s, func(db backend) (struct{}, error) {
		ks, ok := db.(*kube.Store)
		if !ok {
			return struct{}{}, errors.New("the store is not in Kubernetes")
		}
		return struct{}{}, write(ks)
	})
	return err
}
