package kube

import (
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/store"
)

// AddRevision stores rev as the next revision of rev.App: its Number is the
// app's last number plus one (1 for the first), assigned in the same write
// as the record. A zero CreatedAt is set to now. Past MaxRevisions the
// oldest revision is dropped. It returns the revision as stored.
func (s *Store) AddRevision(rev store.Revision) (store.Revision, error) {
	if rev.CreatedAt.IsZero() {
		rev.CreatedAt = time.Now().UTC()
	}
	err := s.write(rev.App, func(rec *record) error {
		rev.Number = 1
		if n := len(rec.Revisions); n > 0 {
			rev.Number = rec.Revisions[n-1].Number + 1
		}
		rec.Revisions = append(rec.Revisions, rev)
		return nil
	})
	if err != nil {
		return store.Revision{}, fmt.Errorf("add revision of app %q: %w", rev.App, err)
	}
	return rev, nil
}

// Revision returns revision n of app; found is false if there is none (or
// it was dropped past MaxRevisions).
func (s *Store) Revision(app string, n int) (store.Revision, bool, error) {
	revs, err := s.Revisions(app)
	if err != nil {
		return store.Revision{}, false, fmt.Errorf("read revision %d of app %q: %w", n, app, err)
	}
	for _, r := range revs {
		if r.Number == n {
			return r, true, nil
		}
	}
	return store.Revision{}, false, nil
}

// Revisions returns the kept revisions of app, ascending by number.
func (s *Store) Revisions(app string) ([]store.Revision, error) {
	rec, err := s.load(app)
	if err != nil {
		return nil, fmt.Errorf("list revisions of app %q: %w", app, err)
	}
	return rec.Revisions, nil
}
