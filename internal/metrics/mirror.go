package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Mirror drop reasons, the reason label of cutover_mirror_dropped_total.
const (
	// MirrorSaturated: as many copies as the router allows were on their
	// way to the backend already.
	MirrorSaturated = "saturated"
	// MirrorBody: the request's body was too large to copy, or of
	// unknown length.
	MirrorBody = "body"
	// MirrorUnready: the backend had no ready endpoint.
	MirrorUnready = "unready"
)

var mirrorReasons = [...]string{MirrorSaturated, MirrorBody, MirrorUnready}

// mirrorVecs are the collectors of mirrored requests: copies of live
// requests that the router sends to a revision under test and whose
// answers it throws away. They are kept apart from
// cutover_http_requests_total, which counts what clients were answered.
type mirrorVecs struct {
	requests *prometheus.CounterVec
	dropped  *prometheus.CounterVec
}

func newMirrorVecs() mirrorVecs {
	return mirrorVecs{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_mirror_requests_total",
			Help: "Copies of live requests mirrored to a revision under test (answers thrown away), by app, slot, version and status class (1xx..5xx).",
		}, []string{"app", "slot", "version", "code"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_mirror_dropped_total",
			Help: "Requests chosen for mirroring whose copy was not sent, by app, slot, version and reason (saturated, body, unready).",
		}, []string{"app", "slot", "version", "reason"}),
	}
}

func (v *mirrorVecs) forget(app, slot, version string) {
	labels := prometheus.Labels{"app": app, "slot": slot, "version": version}
	v.requests.DeletePartialMatch(labels)
	v.dropped.DeletePartialMatch(labels)
}

// backendMirror are one backend's mirror series, made on first use so
// that the many backends never mirrored to add none to /metrics.
type backendMirror struct {
	vecs   *mirrorVecs
	labels [3]string // app, slot, version
	once   sync.Once
	codes  [len(codeClasses)]prometheus.Counter
	drops  [len(mirrorReasons)]prometheus.Counter
}

func (m *backendMirror) series() *backendMirror {
	m.once.Do(func() {
		app, slot, version := m.labels[0], m.labels[1], m.labels[2]
		for i, class := range codeClasses {
			m.codes[i] = m.vecs.requests.WithLabelValues(app, slot, version, class)
		}
		for i, reason := range mirrorReasons {
			m.drops[i] = m.vecs.dropped.WithLabelValues(app, slot, version, reason)
		}
	})
	return m
}

// ObserveMirror counts one mirrored request's answer, with the given
// status code and duration, in the Window (so builtin analysis measures
// it like any request) and in cutover_mirror_requests_total, but not in
// cutover_http_requests_total or its histogram: no client got it.
func (b *BackendMetrics) ObserveMirror(status int, d time.Duration) {
	if b == nil {
		return
	}
	b.window.Record(status, d)
	b.mirror.series().codes[codeClass(status)].Inc()
}

// MirrorDropped counts one request chosen for mirroring to the backend
// whose copy was not sent, for reason (MirrorSaturated, MirrorBody or
// MirrorUnready; any other counts as MirrorUnready).
func (b *BackendMetrics) MirrorDropped(reason string) {
	if b == nil {
		return
	}
	i := len(mirrorReasons) - 1
	for j, r := range mirrorReasons {
		if r == reason {
			i = j
		}
	}
	b.mirror.series().drops[i].Inc()
}
