// Package static is the target for revisions that run elsewhere: cutover
// starts nothing and routes to the upstream URLs it is given. Health checks,
// not this package, decide whether those upstreams answer.
package static

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/cutover/cutover/internal/target"
)

// Target hands out instances made of fixed upstream URLs. The zero value is
// ready to use.
type Target struct{}

// New returns a static target.
func New() *Target { return &Target{} }

// Start returns an Instance whose endpoints are spec.Upstreams. It fails,
// naming the offending entry, if any upstream is not an absolute http or https
// URL, and fails if there are none.
func (t *Target) Start(ctx context.Context, spec target.Spec) (target.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start static upstreams of %s: %w", spec.App, err)
	}
	if len(spec.Upstreams) == 0 {
		return nil, errors.New("no upstreams: give at least one --upstream URL")
	}
	endpoints := make([]*url.URL, 0, len(spec.Upstreams))
	for _, raw := range spec.Upstreams {
		u, err := parseUpstream(raw)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: %w", raw, err)
		}
		endpoints = append(endpoints, u)
	}
	return &instance{endpoints: endpoints}, nil
}

// parseUpstream accepts only what the router can proxy to: an absolute
// http(s) URL with a host.
func parseUpstream(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a URL (%v); write it like http://10.0.0.5:8080", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("not an absolute http(s) URL; write it like http://10.0.0.5:8080")
	}
	return u, nil
}

// instance is a set of upstreams that cutover does not run.
type instance struct {
	endpoints []*url.URL
}

// Endpoints returns copies, so callers cannot change the instance's URLs.
func (in *instance) Endpoints() []*url.URL {
	out := make([]*url.URL, len(in.endpoints))
	for i, u := range in.endpoints {
		c := *u
		out[i] = &c
	}
	return out
}

// Replicas reports every upstream as running: cutover does not run them, so it
// cannot know otherwise; health checks say whether they answer.
func (in *instance) Replicas() []target.Replica {
	out := make([]target.Replica, len(in.endpoints))
	for i, u := range in.endpoints {
		out[i] = target.Replica{Index: i, URL: u.String(), State: target.ReplicaRunning, Running: true}
	}
	return out
}

// Err is always nil: nothing here can fail after Start.
func (in *instance) Err() error { return nil }

// Stop does nothing: the upstreams are not cutover's to stop.
func (in *instance) Stop(context.Context) error { return nil }
