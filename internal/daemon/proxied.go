package daemon

import (
	"context"
	"net/url"
	"reflect"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/target"
	"github.com/cutover/cutover/internal/traffic"
	"github.com/cutover/cutover/internal/traffic/haproxy"
	"github.com/cutover/cutover/internal/traffic/nginx"
)

// proxyOf returns the options of the provider that moves app's traffic
// by pointing a proxy of the team's at the replicas' addresses, and how
// to build it from the slots' endpoints; nil when no such proxy moves it.
func proxyOf(app config.App) (opts any, build func(traffic.SlotEndpoints) (traffic.Provider, error)) {
	switch {
	case app.Traffic.Nginx != nil:
		n := app.Traffic.Nginx
		o := nginx.Options{File: n.UpstreamFile, Upstream: n.Upstream, PreviewUpstream: n.PreviewUpstream,
			Test: n.Test, Reload: n.Reload, PIDFile: n.PIDFile, VerifyURL: n.Verify.URL, VerifyTimeout: n.Verify.Timeout.D()}
		return o, func(eps traffic.SlotEndpoints) (traffic.Provider, error) { return nginx.New(o, eps) }
	case app.Traffic.HAProxy != nil:
		h := app.Traffic.HAProxy
		o := haproxy.Options{Socket: h.Socket, Backend: h.Backend, PreviewBackend: h.PreviewBackend}
		return o, func(eps traffic.SlotEndpoints) (traffic.Provider, error) {
			// New checks that HAProxy answers and has the servers.
			ctx, cancel := context.WithTimeout(context.Background(), haproxyCheckTimeout)
			defer cancel()
			return haproxy.New(ctx, o, eps)
		}
	}
	return nil, nil
}

// haproxyCheckTimeout bounds the first talk with HAProxy's runtime API,
// which checks that it answers and has the app's servers.
const haproxyCheckTimeout = 10 * time.Second

// proxiedApps are the apps whose process or static target's traffic a
// proxy moves, by name. They outlive a config reload, which builds the
// targets anew while the replicas started before still run.
type proxiedApps struct {
	mu   sync.Mutex
	apps map[string]*proxiedApp
}

// proxiedApp is one app's running instances and its provider, built
// from opts.
type proxiedApp struct {
	slots    *slotInstances
	opts     any
	provider traffic.Provider
}

func newProxiedApps() *proxiedApps {
	return &proxiedApps{apps: map[string]*proxiedApp{}}
}

// wrap returns t as is when cutover's router (or nothing at all) moves
// app's traffic, else t with the proxy's provider, which it tells where
// each slot's replicas are.
func (p *proxiedApps) wrap(app config.App, t controller.Target) (controller.Target, error) {
	opts, build := proxyOf(app)
	if build == nil {
		return t, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pa := p.apps[app.Name]
	if pa == nil {
		pa = &proxiedApp{slots: &slotInstances{bySlot: map[string]*slotInstance{}}}
		p.apps[app.Name] = pa
	}
	// The same provider while its options stay, so that one of them at
	// a time writes the proxy's config.
	if pa.provider == nil || !reflect.DeepEqual(pa.opts, opts) {
		provider, err := build(pa.slots.endpoints)
		if err != nil {
			return nil, err
		}
		pa.opts, pa.provider = opts, provider
	}
	return &proxiedTarget{Target: t, slots: pa.slots, provider: pa.provider}, nil
}

// proxiedTarget is a target whose traffic a proxy moves: it records the
// instance it starts on each slot, whose endpoints the proxy is pointed
// at.
type proxiedTarget struct {
	controller.Target
	slots    *slotInstances
	provider traffic.Provider
}

// Start starts spec on its slot and records it there until it stops.
func (t *proxiedTarget) Start(ctx context.Context, spec target.Spec) (target.Instance, error) {
	inst, err := t.Target.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	return t.slots.record(spec.Slot, inst), nil
}

// Traffic returns the proxy's provider.
func (t *proxiedTarget) Traffic() traffic.Provider { return t.provider }

// slotInstances are the instances running on an app's slots.
type slotInstances struct {
	mu     sync.Mutex
	bySlot map[string]*slotInstance
}

// endpoints returns the replicas of slot's instance now, or none.
func (s *slotInstances) endpoints(slot string) []*url.URL {
	s.mu.Lock()
	in := s.bySlot[slot]
	s.mu.Unlock()
	if in == nil {
		return nil
	}
	return in.Endpoints()
}

func (s *slotInstances) record(slot string, inst target.Instance) target.Instance {
	in := &slotInstance{Instance: inst, slots: s, slot: slot}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bySlot[slot] = in
	return in
}

// slotInstance is an instance recorded on its slot.
type slotInstance struct {
	target.Instance
	slots *slotInstances
	slot  string
}

// Stop forgets the instance, so that no proxy is pointed at it again,
// and stops it.
func (in *slotInstance) Stop(ctx context.Context) error {
	in.slots.mu.Lock()
	if in.slots.bySlot[in.slot] == in {
		delete(in.slots.bySlot, in.slot)
	}
	in.slots.mu.Unlock()
	return in.Instance.Stop(ctx)
}
