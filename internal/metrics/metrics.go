// Package metrics holds cutover's Prometheus collectors.
//
// A Metrics owns its own registry (with the Go and process collectors), so
// several instances can live in one process, as they do in tests. The router
// records each finished request through a BackendMetrics, which is resolved
// once per app/slot/version when a backend is published; recording a request
// is then a couple of atomic adds with no map lookups or allocation. The
// controller reports deploys, flips, the active slot and ready endpoints
// through the methods on Metrics.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// slots are the two slot names cutover_active_slot reports for every app.
var slots = [...]string{"blue", "green"}

// codeClasses are the code label values, indexed by status/100 - 1.
var codeClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// durationBuckets start at 1 ms because a proxied request to a local replica
// often finishes well under the default histogram's 5 ms first bucket.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Metrics is cutover's set of collectors and the registry that exposes them.
// Create it with New; all methods are safe for concurrent use.
type Metrics struct {
	registry       *prometheus.Registry
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	activeSlot     *prometheus.GaugeVec
	deploys        *prometheus.CounterVec
	readyEndpoints *prometheus.GaugeVec
	flips          *prometheus.CounterVec
	drained        *prometheus.CounterVec
	mirror         mirrorVecs

	mu       sync.Mutex
	backends map[backendKey]*BackendMetrics
}

type backendKey struct{ app, slot, version string }

// New returns a Metrics with every cutover collector, the Go runtime
// collector and the process collector registered on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_http_requests_total",
			Help: "Requests proxied by the router, by app, slot, version and status class (1xx..5xx).",
		}, []string{"app", "slot", "version", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cutover_http_request_duration_seconds",
			Help:    "Time from the router receiving a request to the upstream response being fully written.",
			Buckets: durationBuckets,
		}, []string{"app", "slot", "version"}),
		activeSlot: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cutover_active_slot",
			Help: "1 for the slot that receives an app's production traffic, 0 for the other.",
		}, []string{"app", "slot"}),
		deploys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_deploys_total",
			Help: "Finished deploys by app and outcome (succeeded, failed, rolled_back, aborted).",
		}, []string{"app", "outcome"}),
		readyEndpoints: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cutover_ready_endpoints",
			Help: "Endpoints passing their health check, by app and slot.",
		}, []string{"app", "slot"}),
		flips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_flips_total",
			Help: "Times production traffic of an app moved to the other slot.",
		}, []string{"app"}),
		drained: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_drained_connections_total",
			Help: "Long-lived connections (WebSocket, streams) of a slot that lost its traffic: finished within drainTimeout, or closed at it.",
		}, []string{"app", "outcome"}),
		mirror:   newMirrorVecs(),
		backends: make(map[backendKey]*BackendMetrics),
	}
	m.registry.MustRegister(m.mirror.requests, m.mirror.dropped)
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.activeSlot, m.deploys, m.readyEndpoints, m.flips, m.drained,
	)
	return m
}

// Handler serves the registry in the Prometheus exposition format, for /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Backend returns the collectors for one app/slot/version, creating them on
// first use and returning the same value to later calls until each has
// been matched by a Forget. Call it when a backend is started, not per
// request.
func (m *Metrics) Backend(app, slot, version string) *BackendMetrics {
	key := backendKey{app, slot, version}
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.backends[key]; ok {
		b.users++
		return b
	}
	b := &BackendMetrics{
		duration: m.duration.WithLabelValues(app, slot, version),
		window:   NewWindow(),
		users:    1,
		mirror:   &backendMirror{vecs: &m.mirror, labels: [3]string{app, slot, version}},
	}
	for i, class := range codeClasses {
		b.codes[i] = m.requests.WithLabelValues(app, slot, version, class)
	}
	m.backends[key] = b
	return b
}

// Forget gives back one Backend call for app/slot/version. When no caller
// holds it any more, its request series leave /metrics and its Window is
// freed: a long-running cutover deploys many versions, and each would
// otherwise keep its series and its Window (about 100 KiB) for good.
// Requests still finishing on it afterwards are counted nowhere.
func (m *Metrics) Forget(app, slot, version string) {
	key := backendKey{app, slot, version}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.backends[key]
	if !ok {
		return
	}
	if b.users--; b.users > 0 {
		return
	}
	delete(m.backends, key)
	m.duration.DeleteLabelValues(app, slot, version)
	for _, class := range codeClasses {
		m.requests.DeleteLabelValues(app, slot, version, class)
	}
	m.mirror.forget(app, slot, version)
}

// SetActiveSlot marks slot ("blue" or "green") as the one receiving app's
// production traffic: 1 for it, 0 for the other. An empty slot sets both to 0.
func (m *Metrics) SetActiveSlot(app, slot string) {
	for _, s := range slots {
		v := 0.0
		if s == slot {
			v = 1
		}
		m.activeSlot.WithLabelValues(app, s).Set(v)
	}
}

// DeployFinished counts one finished deploy of app. outcome is one of
// succeeded, failed, rolled_back or aborted.
func (m *Metrics) DeployFinished(app, outcome string) {
	m.deploys.WithLabelValues(app, outcome).Inc()
}

// SetReadyEndpoints records how many endpoints of app's slot pass their
// health check.
func (m *Metrics) SetReadyEndpoints(app, slot string, n int) {
	m.readyEndpoints.WithLabelValues(app, slot).Set(float64(n))
}

// Flip counts one move of app's production traffic to the other slot.
func (m *Metrics) Flip(app string) {
	m.flips.WithLabelValues(app).Inc()
}

// Drained counts long-lived connections of a draining slot: n that
// finished by themselves (outcome "finished") or were closed at
// drainTimeout ("closed").
func (m *Metrics) Drained(app, outcome string, n int) {
	m.drained.WithLabelValues(app, outcome).Add(float64(n))
}

// BackendMetrics are the pre-resolved collectors of one app/slot/version
// and its sliding Window (about 100 KiB, kept until Forget).
// A nil *BackendMetrics records nothing.
type BackendMetrics struct {
	codes    [len(codeClasses)]prometheus.Counter
	duration prometheus.Observer
	window   *Window
	users    int // Backend calls not yet matched by Forget; guarded by Metrics.mu
	mirror   *backendMirror
}

// Window returns the backend's requests of the last 60 s, or nil for a nil
// BackendMetrics (a nil *Window reports no traffic).
func (b *BackendMetrics) Window() *Window {
	if b == nil {
		return nil
	}
	return b.window
}

// Observe counts one finished request with the given status code and
// duration, in the Prometheus collectors and the Window. Status codes
// outside 100..599 count as 5xx: they mean the response was broken. It does
// not allocate.
func (b *BackendMetrics) Observe(status int, d time.Duration) {
	if b == nil {
		return
	}
	b.window.Record(status, d)
	b.codes[codeClass(status)].Inc()
	b.duration.Observe(d.Seconds())
}

// codeClass is the index in codeClasses of status; a status outside
// 100..599 counts as 5xx.
func codeClass(status int) int {
	class := status/100 - 1
	if class < 0 || class >= len(codeClasses) {
		class = len(codeClasses) - 1
	}
	return class
}
