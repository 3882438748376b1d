package kubernetes

import "github.com/cutover/cutover/internal/target"

// Workload describes the slot's Deployment for status output, as the
// informers last saw it: its pods of the current revision ready of
// desired, and why each of the others is not ready.
func (t *Target) Workload(app, slot string) target.Workload {
	st := t.Status(app, slot)
	w := target.Workload{Name: st.Deployment, Exists: st.Exists, Ready: st.ReadyPods, Desired: st.Desired}
	for _, p := range st.Pods {
		if !p.Ready {
			w.Unready = append(w.Unready, target.UnreadyPod{Name: p.Name, Reason: p.Reason, Message: p.Message})
		}
	}
	return w
}
