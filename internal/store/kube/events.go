package kube

import (
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/store"
)

// AppendEvent stores ev at the end of ev.App's history. It assigns Seq,
// which increases per app and is never reused, and sets a zero Time to
// now. Past MaxEvents the oldest event is dropped. It returns the event as
// stored.
func (s *Store) AppendEvent(ev store.Event) (store.Event, error) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	err := s.write(ev.App, func(rec *record) error {
		ev.Seq = 1
		if n := len(rec.Events); n > 0 {
			ev.Seq = rec.Events[n-1].Seq + 1
		}
		rec.Events = append(rec.Events, ev)
		return nil
	})
	if err != nil {
		return store.Event{}, fmt.Errorf("append event %s of app %q: %w", ev.Reason, ev.App, err)
	}
	return ev, nil
}

// Events returns the last limit events of app in ascending Seq order; with
// limit <= 0 it returns all it keeps.
func (s *Store) Events(app string, limit int) ([]store.Event, error) {
	rec, err := s.load(app)
	if err != nil {
		return nil, fmt.Errorf("list events of app %q: %w", app, err)
	}
	evs := rec.Events
	if limit > 0 && len(evs) > limit {
		evs = evs[len(evs)-limit:]
	}
	return evs, nil
}
