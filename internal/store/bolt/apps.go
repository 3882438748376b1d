package bolt

import (
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/cutover/cutover/internal/store"
)

// App returns the state of app; found is false if it was never stored.
func (db *DB) App(name string) (st store.AppState, found bool, err error) {
	err = db.bolt.View(func(tx *bbolt.Tx) error {
		data := tx.Bucket(bucketApps).Get([]byte(name))
		if data == nil {
			return nil
		}
		found = true
		return decode(data, &st, "app", []byte(name))
	})
	if err != nil {
		return store.AppState{}, false, fmt.Errorf("read app %q: %w", name, err)
	}
	return st, found, nil
}

// PutApp stores st under st.App, replacing what was there.
func (db *DB) PutApp(st store.AppState) error {
	if st.App == "" {
		return errors.New("put app: app name is empty")
	}
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		return putJSON(tx.Bucket(bucketApps), []byte(st.App), st)
	})
	if err != nil {
		return fmt.Errorf("put app %q: %w", st.App, err)
	}
	return nil
}

// Apps returns the state of every stored app, sorted by name.
func (db *DB) Apps() ([]store.AppState, error) {
	var apps []store.AppState
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketApps).ForEach(func(k, v []byte) error {
			var st store.AppState
			if err := decode(v, &st, "app", k); err != nil {
				return err
			}
			apps = append(apps, st)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	return apps, nil
}
