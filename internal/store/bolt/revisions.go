package bolt

import (
	"encoding/binary"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/cutover/cutover/internal/store"
)

// AddRevision stores rev as the next revision of rev.App: its Number is the
// app's last number plus one (1 for the first), assigned in the same
// transaction as the write. A zero CreatedAt is set to now. It returns the
// revision as stored.
func (db *DB) AddRevision(rev store.Revision) (store.Revision, error) {
	if rev.CreatedAt.IsZero() {
		rev.CreatedAt = time.Now().UTC()
	}
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		b, err := appBucket(tx, bucketRevisions, rev.App, true)
		if err != nil {
			return err
		}
		var last uint64
		if k, _ := b.Cursor().Last(); k != nil {
			last = binary.BigEndian.Uint64(k)
		}
		rev.Number = int(last + 1)
		return putJSON(b, key(last+1), rev)
	})
	if err != nil {
		return store.Revision{}, fmt.Errorf("add revision of app %q: %w", rev.App, err)
	}
	return rev, nil
}

// Revision returns revision n of app; found is false if there is none.
func (db *DB) Revision(app string, n int) (rev store.Revision, found bool, err error) {
	if n < 1 {
		return store.Revision{}, false, nil
	}
	err = db.bolt.View(func(tx *bbolt.Tx) error {
		b, err := appBucket(tx, bucketRevisions, app, false)
		if err != nil || b == nil {
			return err
		}
		data := b.Get(key(uint64(n)))
		if data == nil {
			return nil
		}
		found = true
		return decode(data, &rev, "revision", key(uint64(n)))
	})
	if err != nil {
		return store.Revision{}, false, fmt.Errorf("read revision %d of app %q: %w", n, app, err)
	}
	return rev, found, nil
}

// Revisions returns every revision of app, ascending by number.
func (db *DB) Revisions(app string) ([]store.Revision, error) {
	var revs []store.Revision
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		b, err := appBucket(tx, bucketRevisions, app, false)
		if err != nil || b == nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			var rev store.Revision
			if err := decode(v, &rev, "revision", k); err != nil {
				return err
			}
			revs = append(revs, rev)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list revisions of app %q: %w", app, err)
	}
	return revs, nil
}
