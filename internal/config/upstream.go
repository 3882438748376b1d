package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cutover/cutover/internal/httpwire"
)

// UpstreamProtocols and LoadBalancingPolicies are the values
// upstream.protocol and upstream.loadBalancing accept.
var (
	UpstreamProtocols     = []string{"http1", "h2c"}
	LoadBalancingPolicies = []string{"roundRobin", "leastRequests"}
)

// maxRetries bounds upstream.retries, so that a broken revision cannot
// multiply the load on the others.
const maxRetries = 5

func (u *Upstream) validate(d *document, path string) {
	checkOneOf(d, path+".protocol", u.Protocol, UpstreamProtocols, "protocol")
	checkOneOf(d, path+".loadBalancing", u.LoadBalancing, LoadBalancingPolicies, "load-balancing policy")
	if h := u.HostHeader; h != "client" && h != "upstream" && (h == "" || !httpwire.ValidHost(h)) {
		d.add(path+".hostHeader", "use client (the client's Host), upstream (the replica's host:port) or a host name such as app.internal",
			"%q is not a Host header", h)
	}
	checkNotNegative(d, path+".connectTimeout", u.ConnectTimeout)
	checkNotNegative(d, path+".responseHeaderTimeout", u.ResponseHeaderTimeout)
	checkNotNegative(d, path+".idleConnTimeout", u.IdleConnTimeout)
	if r := u.Retries; r != nil && (*r < 0 || *r > maxRetries) {
		d.add(path+".retries", fmt.Sprintf("use 0 (no retries) to %d", maxRetries), "%d is out of range", *r)
	}
	if n := u.PassiveHealth.ConsecutiveFailures; n != nil {
		checkCount(d, path+".passiveHealth.consecutiveFailures", *n)
	}
	checkNotNegative(d, path+".passiveHealth.ejectFor", u.PassiveHealth.EjectFor)
	if p := u.PassiveHealth.MaxEjectionPercent; p != nil && (*p < 0 || *p > 100) {
		d.add(path+".passiveHealth.maxEjectionPercent", "use 0 (never eject) to 100 (eject every failing replica)", "%d is not a percentage", *p)
	}
}

// checkOneOf reports a value at path that is not one of allowed; what
// names the kind of value for the message.
func checkOneOf(d *document, path, v string, allowed []string, what string) {
	if slices.Contains(allowed, v) {
		return
	}
	all := strings.Join(allowed, ", ")
	hint := "use one of " + all
	if best := closest(v, allowed); best != "" {
		hint = fmt.Sprintf("did you mean `%s`? (%s)", best, hint)
	}
	d.add(path, hint, "%q is not a %s", v, what)
}
