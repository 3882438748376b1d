package bolt

import (
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/cutover/cutover/internal/store"
)

// AppendEvent stores ev at the end of ev.App's history. It assigns Seq, which
// increases per app and is never reused, and sets a zero Time to now. It
// returns the event as stored.
func (db *DB) AppendEvent(ev store.Event) (store.Event, error) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		b, err := appBucket(tx, bucketEvents, ev.App, true)
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("next sequence: %w", err)
		}
		ev.Seq = seq
		return putJSON(b, key(seq), ev)
	})
	if err != nil {
		return store.Event{}, fmt.Errorf("append event %s of app %q: %w", ev.Reason, ev.App, err)
	}
	return ev, nil
}

// Events returns the last limit events of app in ascending Seq order; with
// limit <= 0 it returns all of them.
func (db *DB) Events(app string, limit int) ([]store.Event, error) {
	var evs []store.Event
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		b, err := appBucket(tx, bucketEvents, app, false)
		if err != nil || b == nil {
			return err
		}
		// Walk backwards from the newest so a small limit reads only what it returns.
		c := b.Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(evs) < limit); k, v = c.Prev() {
			var ev store.Event
			if err := decode(v, &ev, "event", k); err != nil {
				return err
			}
			evs = append(evs, ev)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list events of app %q: %w", app, err)
	}
	slices.Reverse(evs)
	return evs, nil
}
