package kube

import (
	"errors"
	"fmt"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cutover/cutover/internal/store"
)

// App returns the state of app; found is false if it was never stored.
func (s *Store) App(name string) (st store.AppState, found bool, err error) {
	rec, err := s.load(name)
	if err != nil {
		return store.AppState{}, false, fmt.Errorf("read app %q: %w", name, err)
	}
	if rec.State == nil {
		return store.AppState{}, false, nil
	}
	return *rec.State, true, nil
}

// PutApp stores st under st.App, replacing what was there.
func (s *Store) PutApp(st store.AppState) error {
	if st.App == "" {
		return errors.New("put app: app name is empty")
	}
	err := s.write(st.App, func(rec *record) error {
		rec.State = &st
		return nil
	})
	if err != nil {
		return fmt.Errorf("put app %q: %w", st.App, err)
	}
	return nil
}

// Apps returns the state of every stored app, sorted by name.
func (s *Store) Apps() ([]store.AppState, error) {
	objs, err := s.list()
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	var apps []store.AppState
	for i := range objs {
		rec, err := decode(&objs[i])
		if err != nil {
			return nil, fmt.Errorf("list apps: %w", err)
		}
		if rec.State != nil {
			apps = append(apps, *rec.State)
		}
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i].App < apps[j].App })
	return apps, nil
}

// list returns the CutoverApps of the store's namespace, bounded as one
// call.
func (s *Store) list() ([]unstructured.Unstructured, error) {
	ctx, cancel, err := s.call()
	if err != nil {
		return nil, err
	}
	defer cancel()
	list, err := s.dyn.Resource(Resource).Namespace(s.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}
