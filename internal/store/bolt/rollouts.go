package bolt

import (
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// NextRolloutID returns a new rollout id. Ids start at 1 and are unique
// across apps and across restarts, because the counter is stored.
func (db *DB) NextRolloutID() (int64, error) {
	var id uint64
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		var err error
		id, err = tx.Bucket(bucketRollouts).NextSequence()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("next rollout id: %w", err)
	}
	return int64(id), nil
}
