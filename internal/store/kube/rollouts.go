package kube

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// rolloutIDs is the ConfigMap whose data["last"] is the last rollout id
// handed out.
const rolloutIDs = "cutover-rollout-ids"

// NextRolloutID returns a new rollout id. Ids start at 1 and are unique
// across apps, restarts and stores on the same namespace: the counter is
// written with the resourceVersion it was read at.
func (s *Store) NextRolloutID() (int64, error) {
	ctx, cancel, err := s.call()
	if err != nil {
		return 0, err
	}
	defer cancel()
	cms := s.core.CoreV1().ConfigMaps(s.ns)
	var id int64
	err = retryRace(func() error {
		cm, err := cms.Get(ctx, rolloutIDs, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			id = 1
			_, err = cms.Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: rolloutIDs, Labels: map[string]string{"app.kubernetes.io/managed-by": "cutover"}},
				Data:       map[string]string{"last": "1"},
			}, metav1.CreateOptions{FieldManager: "cutover"})
			return err
		}
		if err != nil {
			return err
		}
		last, err := strconv.ParseInt(cm.Data["last"], 10, 64)
		if err != nil {
			return fmt.Errorf("ConfigMap %s/%s: data.last %q is not a number (was it edited by hand?)", s.ns, rolloutIDs, cm.Data["last"])
		}
		id = last + 1
		cm.Data["last"] = strconv.FormatInt(id, 10)
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: "cutover"})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("next rollout id: %w", err)
	}
	return id, nil
}
