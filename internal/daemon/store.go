package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/store/bolt"
)

// errUpgrading is what store calls return while an upgrade has handed the
// store to the new process.
var errUpgrading = errors.New("cutover is upgrading: the store belongs to the new process; try again in a few seconds")

// lockWait bounds how long a new process waits for the old one to let go
// of the store during an upgrade.
const lockWait = 30 * time.Second

// storeHandle is the controller's store: the bolt DB while this process
// holds it. An upgrade closes it and, if the new process fails, opens it
// again; in between every call fails with errUpgrading, and the router
// keeps serving from memory.
type storeHandle struct {
	dir string
	mu  sync.RWMutex // held for reading by every call, for writing to swap db
	db  *bolt.DB     // nil while closed
}

// openStore opens the bolt store in dir. With wait, a store that another
// process holds is retried for up to lockWait (the old process of an
// upgrade closes it just before starting this one); without, it fails at
// once with bolt's "in use" error.
func openStore(ctx context.Context, dir string, wait bool) (*bolt.DB, error) {
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
	if err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// reopen opens the store again after a failed upgrade, waiting for the
// failed process to let go of it.
func (s *storeHandle) reopen(ctx context.Context) error {
	db, err := openStore(ctx, s.dir, true)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.db = db
	s.mu.Unlock()
	return nil
}

// open reports whether this process holds the store.
func (s *storeHandle) open() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db != nil
}

// with runs f on the DB while holding it open.
func with[T any](s *storeHandle, f func(db *bolt.DB) (T, error)) (T, error) {
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
	_, err := with(s, func(db *bolt.DB) (struct{}, error) { return struct{}{}, db.PutApp(st) })
	return err
}

// AddRevision implements controller.Store.
func (s *storeHandle) AddRevision(rev store.Revision) (store.Revision, error) {
	return with(s, func(db *bolt.DB) (store.Revision, error) { return db.AddRevision(rev) })
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
	return with(s, func(db *bolt.DB) ([]store.Revision, error) { return db.Revisions(app) })
}

// AppendEvent implements controller.Store.
func (s *storeHandle) AppendEvent(ev store.Event) (store.Event, error) {
	return with(s, func(db *bolt.DB) (store.Event, error) { return db.AppendEvent(ev) })
}

// Events implements controller.Store.
func (s *storeHandle) Events(app string, limit int) ([]store.Event, error) {
	return with(s, func(db *bolt.DB) ([]store.Event, error) { return db.Events(app, limit) })
}

// NextRolloutID implements controller.Store.
func (s *storeHandle) NextRolloutID() (int64, error) {
	return with(s, func(db *bolt.DB) (int64, error) { return db.NextRolloutID() })
}
