// Package bolt is cutover's default store: one bbolt file, cutover.db, in the
// data dir. Records are stored as JSON; numeric keys are big-endian uint64 so
// that bbolt's byte order is numeric order.
//
// Layout:
//
//	apps/<app>                 store.AppState
//	revisions/<app>/<number>   store.Revision
//	events/<app>/<seq>         store.Event
//	rollouts                   bucket whose sequence hands out rollout ids
//
// Every write runs in its own bbolt transaction, which is fsynced before the
// call returns. bbolt holds an exclusive flock on the file while it is open,
// so a second cutover process on the same data dir fails with ErrLocked.
package bolt

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"
	bbolterrors "go.etcd.io/bbolt/errors"
)

// FileName is the name of the database file inside the data dir.
const FileName = "cutover.db"

// lockTimeout is how long Open waits for another process to release the file.
const lockTimeout = time.Second

// ErrLocked is returned (wrapped) by Open when another process holds the data dir.
var ErrLocked = errors.New("data dir is in use by another cutover process")

var (
	bucketApps      = []byte("apps")
	bucketRevisions = []byte("revisions")
	bucketEvents    = []byte("events")
	bucketRollouts  = []byte("rollouts")
)

// DB is an open store. It is safe for concurrent use; writes are serialized
// by bbolt.
type DB struct {
	bolt *bbolt.DB
}

// Open opens dir/cutover.db, creating the dir and the file if needed. If
// another process holds the file, Open gives up after about a second with an
// error that wraps ErrLocked and names the dir.
func Open(dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bbolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store in %s: %w; stop that process or use another data dir", dir, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := createBuckets(b); err != nil {
		// The file is unusable; releasing the lock is all Close can add.
		_ = b.Close()
		return nil, fmt.Errorf("initialize store %s: %w", path, err)
	}
	return &DB{bolt: b}, nil
}

// buckets are the top-level buckets every store has.
var buckets = [][]byte{bucketApps, bucketRevisions, bucketEvents, bucketRollouts}

// createBuckets creates the top-level buckets that are missing. A store
// that has them all is not written to, so that cutover opens it, and
// serves, on a full disk.
func createBuckets(b *bbolt.DB) error {
	complete := true
	_ = b.View(func(tx *bbolt.Tx) error {
		for _, name := range buckets {
			complete = complete && tx.Bucket(name) != nil
		}
		return nil
	})
	if complete {
		return nil
	}
	return b.Update(func(tx *bbolt.Tx) error {
		for _, name := range buckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
}

// Close releases the file and its lock. Calling it again is a no-op.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", db.bolt.Path(), err)
	}
	return nil
}

// key encodes n so that bbolt's byte order is numeric order.
func key(n uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, n)
}

// putJSON stores v as JSON under k.
func putJSON(b *bbolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %T: %w", v, err)
	}
	return b.Put(k, data)
}

// decode unmarshals a stored value; kind names it in the error.
func decode(data []byte, v any, kind string, k []byte) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s %x: %w (the store file may be damaged)", kind, k, err)
	}
	return nil
}

// appBucket returns the per-app bucket of parent, creating it when create is
// true. Without create it returns nil if the app has no records yet.
func appBucket(tx *bbolt.Tx, parent []byte, app string, create bool) (*bbolt.Bucket, error) {
	if app == "" {
		return nil, errors.New("app name is empty")
	}
	p := tx.Bucket(parent)
	if !create {
		return p.Bucket([]byte(app)), nil
	}
	b, err := p.CreateBucketIfNotExists([]byte(app))
	if err != nil {
		return nil, fmt.Errorf("create %s bucket for app %q: %w", parent, app, err)
	}
	return b, nil
}
