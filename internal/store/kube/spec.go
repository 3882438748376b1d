package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/cutover/cutover/internal/store"
)

// Spec is what a CutoverApp's spec asks for, written by its user (kubectl,
// Argo CD, Flux): the version to deploy and, optionally, the image, as
// `cutover deploy --version --image` take them.
type Spec struct {
	Version string `json:"version,omitempty"`
	// Image is "[container=]image".
	Image string `json:"image,omitempty"`
}

// SpecDeploy is status.specDeploy: the last spec cutover acted on and how
// its deploy went.
type SpecDeploy struct {
	Spec
	// Phase is Waiting (refused for now: tried again), Failed (refused:
	// waits for another spec), or the rollout's phase.
	Phase string `json:"phase"`
	// Rollout is the rollout the spec started.
	Rollout int64     `json:"rollout,omitempty"`
	Message string    `json:"message,omitempty"`
	Time    time.Time `json:"time"`
}

// AppObject is what a watch of the CutoverApps sees of one of them.
type AppObject struct {
	Namespace, Name string
	Spec            Spec
	// App is spec.app as JSON, the app the object declares (an entry as
	// under apps: in cutover.yaml, without name); nil when it declares
	// none.
	App []byte
	// AppError is status.appError: why spec.app is not applied; empty
	// when it is, or there is none.
	AppError string
	// SpecDeploy is nil until a spec was acted on.
	SpecDeploy *SpecDeploy
	// ActiveVersion is the active revision's version.
	ActiveVersion string
	// State is the app's state as the leading cutover last recorded it;
	// nil until it first did.
	State *store.AppState
	// Revisions are the revisions kept, oldest first.
	Revisions []store.Revision
}

// Watcher watches the CutoverApps of one namespace. It needs no Lease: a
// standby cutover follows what the leader records through one.
type Watcher struct {
	ns  string
	dyn dynamic.Interface
}

// NewWatcher returns a Watcher of the CutoverApps in namespace.
func NewWatcher(cfg *rest.Config, namespace string) (*Watcher, error) {
	if namespace == "" {
		return nil, errors.New("kubernetes store: namespace is empty")
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes store: %w", err)
	}
	return &Watcher{ns: namespace, dyn: dyn}, nil
}

// PutSpecDeploy records d as app's status.specDeploy.
func (s *Store) PutSpecDeploy(app string, d SpecDeploy) error {
	err := s.write(app, func(rec *record) error {
		rec.SpecDeploy = &d
		return nil
	})
	if err != nil {
		return fmt.Errorf("record the deploy of app %q's spec: %w", app, err)
	}
	return nil
}

// PutAppError records msg as app's status.appError; "" clears it.
func (s *Store) PutAppError(app, msg string) error {
	err := s.write(app, func(rec *record) error {
		rec.AppError = msg
		return nil
	})
	if err != nil {
		return fmt.Errorf("record the problem with app %q's spec.app: %w", app, err)
	}
	return nil
}

// WatchApps calls seen with each CutoverApp of the store's namespace when
// it is added or changed, and every resync, and gone (unless nil) with
// the name of each one deleted, until ctx is done. Calls come one at a
// time. An object that cannot be decoded is passed to bad.
func (w *Watcher) WatchApps(ctx context.Context, resync time.Duration, seen func(AppObject), gone func(name string), bad func(error)) {
	f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(w.dyn, resync, w.ns, nil)
	inf := f.ForResource(Resource).Informer()
	handle := func(o any) {
		obj, ok := o.(*unstructured.Unstructured)
		if !ok {
			return
		}
		a, err := appObject(obj)
		if err != nil {
			bad(err)
			return
		}
		seen(a)
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, o any) { handle(o) },
		DeleteFunc: func(o any) {
			if tomb, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = tomb.Obj
			}
			if obj, ok := o.(*unstructured.Unstructured); ok && gone != nil {
				gone(obj.GetName())
			}
		},
	})
	inf.Run(ctx.Done())
}

// Objects returns every CutoverApp of the store's namespace as a watch
// sees it.
func (s *Store) Objects() ([]AppObject, error) {
	items, err := s.list()
	if err != nil {
		return nil, fmt.Errorf("list cutoverapps: %w", err)
	}
	objs := make([]AppObject, 0, len(items))
	for i := range items {
		o, err := appObject(&items[i])
		if err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// appObject decodes a CutoverApp's spec and the status a watch needs.
func appObject(obj *unstructured.Unstructured) (AppObject, error) {
	rec, err := decode(obj)
	if err != nil {
		return AppObject{}, err
	}
	a := AppObject{Namespace: obj.GetNamespace(), Name: obj.GetName(), SpecDeploy: rec.SpecDeploy, ActiveVersion: rec.ActiveVersion,
		AppError: rec.AppError, State: rec.State, Revisions: rec.Revisions}
	if app, ok, _ := unstructured.NestedFieldNoCopy(obj.Object, "spec", "app"); ok && app != nil {
		if a.App, err = json.Marshal(app); err != nil {
			return AppObject{}, err
		}
	}
	if spec, ok := obj.Object["spec"]; ok {
		data, err := json.Marshal(spec)
		if err != nil {
			return AppObject{}, err
		}
		if err := json.Unmarshal(data, &a.Spec); err != nil {
			return AppObject{}, fmt.Errorf("decode the spec of CutoverApp %s/%s: %w (write spec.version and spec.image as strings)", obj.GetNamespace(), obj.GetName(), err)
		}
	}
	return a, nil
}
