package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	"github.com/cutover/cutover/internal/store"
)

// record is a CutoverApp's status: everything stored of one app.
type record struct {
	// State is nil until the app's state is first put.
	State     *store.AppState  `json:"state,omitempty"`
	Revisions []store.Revision `json:"revisions,omitempty"`
	Events    []store.Event    `json:"events,omitempty"`
	// ActiveRevision and ActiveVersion repeat the active slot's revision
	// for kubectl's columns.
	ActiveRevision int    `json:"activeRevision,omitempty"`
	ActiveVersion  string `json:"activeVersion,omitempty"`
	// SpecDeploy reports the last spec acted on; nil until one was.
	SpecDeploy *SpecDeploy `json:"specDeploy,omitempty"`
	// AppError says why spec.app is not applied.
	AppError string `json:"appError,omitempty"`
}

// conflictBackoff paces the retries of a write that lost a race: enough of
// them for a handful of writers at once.
var conflictBackoff = wait.Backoff{Steps: 30, Duration: 5 * time.Millisecond, Factor: 1.5, Jitter: 1, Cap: time.Second}

// retryRace runs write until it does not lose a race with another
// writer: a conflict on update, or an object created meanwhile.
func retryRace(write func() error) error {
	return retry.OnError(conflictBackoff, func(err error) bool {
		return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
	}, write)
}

// decode reads a CutoverApp's status.
func decode(obj *unstructured.Unstructured) (record, error) {
	var rec record
	status, ok := obj.Object["status"]
	if !ok {
		return rec, nil
	}
	data, err := json.Marshal(status)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("decode CutoverApp %s/%s: %w (was its status edited by hand?)", obj.GetNamespace(), obj.GetName(), err)
	}
	return rec, nil
}

// written is what this store last wrote of an app: the object as the API
// server returned it, and its status. The next write starts from it
// instead of reading the object again; a write that conflicts (another
// writer came in between) drops it.
type written struct {
	obj *unstructured.Unstructured
	rec record
}

// load reads app's record, bounded as one call; an app without an
// object has an empty record.
func (s *Store) load(app string) (record, error) {
	ctx, cancel, err := s.call()
	if err != nil {
		return record{}, err
	}
	defer cancel()
	obj, err := s.dyn.Resource(Resource).Namespace(s.ns).Get(ctx, app, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return record{}, nil
	}
	if err != nil {
		return record{}, err
	}
	return decode(obj)
}

// write updates app's record, bounded as one call.
func (s *Store) write(app string, change func(*record) error) error {
	ctx, cancel, err := s.call()
	if err != nil {
		return err
	}
	defer cancel()
	return s.update(ctx, app, change)
}

// update applies change to app's record and writes it with the
// resourceVersion it was read at, creating the object if needed; on a
// conflict it reads again and retries.
func (s *Store) update(ctx context.Context, app string, change func(*record) error) error {
	if app == "" {
		return errors.New("app name is empty")
	}
	apps := s.dyn.Resource(Resource).Namespace(s.ns)
	return retryRace(func() error {
		obj, rec, create, err := s.current(ctx, app)
		if err != nil {
			return err
		}
		if create && s.isDeleted(app) {
			return nil // deleted with its app: not to be created again
		}
		// change appends: the remembered record must not see it.
		rec.Revisions, rec.Events = slices.Clone(rec.Revisions), slices.Clone(rec.Events)
		if err := change(&rec); err != nil {
			return err
		}
		s.trim(&rec)
		status, err := toJSONObject(rec)
		if err != nil {
			return err
		}
		obj = &unstructured.Unstructured{Object: maps.Clone(obj.Object)}
		obj.Object["status"] = status
		if create {
			obj, err = apps.Create(ctx, obj, metav1.CreateOptions{FieldManager: "cutover"})
		} else {
			obj, err = apps.Update(ctx, obj, metav1.UpdateOptions{FieldManager: "cutover"})
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			delete(s.last, app)
			return err
		}
		s.last[app] = written{obj: obj, rec: rec}
		return nil
	})
}

// Deleted records that app's CutoverApp was deleted together with the
// app (deleted false: the app is back): until it is back, writes of
// app's state that would create the object again are dropped, such as
// the last events of its removal. The object of an app that goes on
// (one of the config file) is created again by its next write.
func (s *Store) Deleted(app string, deleted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if deleted {
		s.deleted[app] = true
		delete(s.last, app)
	} else {
		delete(s.deleted, app)
	}
}

func (s *Store) isDeleted(app string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleted[app]
}

// current returns what app's next write starts from: what this store
// last wrote, else the object read from the API server, else a new one.
func (s *Store) current(ctx context.Context, app string) (obj *unstructured.Unstructured, rec record, create bool, err error) {
	s.mu.Lock()
	w, ok := s.last[app]
	s.mu.Unlock()
	if ok {
		return w.obj, w.rec, false, nil
	}
	obj, err = s.dyn.Resource(Resource).Namespace(s.ns).Get(ctx, app, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		obj = &unstructured.Unstructured{}
		obj.SetAPIVersion(Resource.GroupVersion().String())
		obj.SetKind("CutoverApp")
		obj.SetName(app)
		obj.SetLabels(map[string]string{"app.kubernetes.io/name": app, "app.kubernetes.io/managed-by": "cutover"})
		return obj, record{}, true, nil
	}
	if err != nil {
		return nil, record{}, false, err
	}
	rec, err = decode(obj)
	return obj, rec, false, err
}

// trim drops the oldest revisions and events past the bounds, and sets
// the columns kubectl shows.
func (s *Store) trim(rec *record) {
	if n := len(rec.Revisions) - s.maxRevs; n > 0 {
		rec.Revisions = rec.Revisions[n:]
	}
	if n := len(rec.Events) - s.maxEvs; n > 0 {
		rec.Events = rec.Events[n:]
	}
	rec.ActiveRevision, rec.ActiveVersion = 0, ""
	if rec.State == nil || rec.State.ActiveSlot == "" {
		return
	}
	rec.ActiveRevision = rec.State.Slots[rec.State.ActiveSlot].Revision
	for _, r := range rec.Revisions {
		if r.Number == rec.ActiveRevision {
			rec.ActiveVersion = r.Version
		}
	}
}

// toJSONObject turns v into the map an unstructured object holds.
func toJSONObject(v any) (map[string]any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return m, nil
}
