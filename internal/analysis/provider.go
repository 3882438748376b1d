package analysis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// provider takes one measurement of a metric. An error is an Error
// measurement, unless it is a *verdict, which judges the measurement itself.
type provider interface {
	measure(ctx context.Context) (any, error)
}

// verdict is a provider's own judgement of a measurement, for what
// conditions cannot see: too little traffic to tell (Inconclusive), or a
// command that failed when no condition was given (Failed).
type verdict struct {
	phase  Phase
	value  any // the result, when there is one
	reason string
}

func (v *verdict) Error() string { return v.reason }

// Defaults for zero config values (config normally applies them first).
const (
	defaultInterval              = time.Second
	defaultWindow                = 10 * time.Second
	defaultMinSamplesTimeout     = time.Minute
	defaultPrometheusTimeout     = 5 * time.Second
	defaultWebTimeout            = 5 * time.Second
	defaultCommandTimeout        = 30 * time.Second
	defaultConsecutiveErrorLimit = 4
)

// orDefault is d when it is positive, else def.
func orDefault(d config.Duration, def time.Duration) time.Duration {
	if d.D() > 0 {
		return d.D()
	}
	return def
}

// newProvider builds the one provider m names, with args expanded.
// judgeExit tells a command provider to fail a measurement on a non-zero
// exit by itself, because no condition will.
func newProvider(m config.AnalysisMetric, args map[string]string, env Env, judgeExit bool) (provider, error) {
	p := m.Provider
	set := 0
	for _, given := range []bool{p.Builtin != nil, p.Prometheus != nil, p.Web != nil, p.Command != nil} {
		if given {
			set++
		}
	}
	if set != 1 {
		return nil, fmt.Errorf("metric has %d providers; set exactly one of builtin, prometheus, web or command", set)
	}
	switch {
	case p.Builtin != nil:
		return newBuiltinProvider(p.Builtin, m, env.Builtin)
	case p.Prometheus != nil:
		return newPrometheusProvider(p.Prometheus, args, env.HTTP)
	case p.Web != nil:
		return newWebProvider(p.Web, args, env.HTTP)
	}
	return newCommandProvider(p.Command, args, env.Dir, judgeExit)
}

// asVerdict unwraps a provider's own verdict from err.
func asVerdict(err error) (*verdict, bool) {
	var v *verdict
	ok := errors.As(err, &v)
	return v, ok
}
