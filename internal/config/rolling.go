package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
)

// Rolling configures the rolling strategy, as a Kubernetes Deployment's
// rolling update: the new revision's replicas replace the stable ones a
// few at a time, each new one ready before an old one stops.
type Rolling struct {
	// MaxSurge is how many replicas may run above the app's replicas
	// during the update: a number (1) or a percentage of the replicas
	// ("25%", rounded up); default 25%.
	MaxSurge IntOrPercent `yaml:"maxSurge"`
	// MaxUnavailable is how many of the app's replicas may be not ready
	// during the update: a number or a percentage ("25%", rounded down);
	// default 25%. With 0, an old replica stops only once a new one is
	// ready to take its place.
	MaxUnavailable IntOrPercent `yaml:"maxUnavailable"`
}

// IntOrPercent is a count written as a number (2) or as a percentage of
// a total ("25%"), like Kubernetes' IntOrString.
type IntOrPercent struct {
	// Value is the number, or the percentage when Percent is true.
	Value   int
	Percent bool
}

// defaultRollingPercent is Kubernetes' default for both maxSurge and
// maxUnavailable.
var defaultRollingPercent = IntOrPercent{Value: 25, Percent: true}

// Of resolves v against total replicas, rounding a percentage up or down.
func (v IntOrPercent) Of(total int, roundUp bool) int {
	if !v.Percent {
		return v.Value
	}
	f := float64(v.Value) * float64(total) / 100
	if roundUp {
		return int(math.Ceil(f))
	}
	return int(math.Floor(f))
}

// String writes v as it is written in the config.
func (v IntOrPercent) String() string {
	if v.Percent {
		return strconv.Itoa(v.Value) + "%"
	}
	return strconv.Itoa(v.Value)
}

// MarshalYAML writes v as a number or a "25%" string, so a marshalled
// Config parses back to the same value.
func (v IntOrPercent) MarshalYAML() (any, error) {
	if v.Percent {
		return v.String(), nil
	}
	return v.Value, nil
}

// UnmarshalYAML reads a number or a percentage string.
func (v *IntOrPercent) UnmarshalYAML(data []byte) error {
	var raw any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("read number or percentage: %w", err)
	}
	parsed, err := intOrPercentFromValue(raw)
	if err != nil {
		return err
	}
	*v = parsed
	return nil
}

const intOrPercentHint = "write a whole number such as 1 or a percentage such as \"25%\""

// intOrPercentFromValue converts a decoded YAML scalar; its errors are
// fieldErrors, like durationFromValue's.
func intOrPercentFromValue(raw any) (IntOrPercent, error) {
	switch raw := raw.(type) {
	case uint64:
		return IntOrPercent{Value: int(min(raw, math.MaxInt32))}, nil
	case int64:
		if raw < 0 {
			return IntOrPercent{}, fieldError{msg: fmt.Sprintf("%d is negative", raw), hint: intOrPercentHint}
		}
		return IntOrPercent{Value: int(min(raw, math.MaxInt32))}, nil
	case string:
		s := strings.TrimSpace(raw)
		if num, ok := strings.CutSuffix(s, "%"); ok {
			n, err := strconv.Atoi(num)
			if err == nil && n >= 0 && n <= 100 {
				return IntOrPercent{Value: n, Percent: true}, nil
			}
			return IntOrPercent{}, fieldError{msg: fmt.Sprintf("%q is not a percentage from 0%% to 100%%", raw), hint: intOrPercentHint}
		}
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			return IntOrPercent{Value: n}, nil
		}
		return IntOrPercent{}, fieldError{msg: fmt.Sprintf("%q is neither a whole number nor a percentage", raw), hint: intOrPercentHint}
	}
	return IntOrPercent{}, fieldError{msg: fmt.Sprintf("%v is neither a whole number nor a percentage", raw), hint: intOrPercentHint}
}

func (r *Rolling) setDefaults(d *document, path string) {
	if !d.written(path + ".maxSurge") {
		r.MaxSurge = defaultRollingPercent
	}
	if !d.written(path + ".maxUnavailable") {
		r.MaxUnavailable = defaultRollingPercent
	}
}

// validate refuses a rolling update that could never move (both limits
// 0 for the app's replicas) and targets it cannot scale.
func (r *Rolling) validate(d *document, path string, a *App) {
	replicas := 1
	switch {
	case a.Target.Process != nil:
		replicas = max(a.Target.Process.Replicas, 1)
	case a.Target.Kubernetes != nil:
		replicas = max(a.Target.Kubernetes.Replicas, 1)
	}
	surge, unavailable := r.Bounds(replicas)
	if surge == 0 && unavailable == 0 {
		d.add(path, "set maxSurge or maxUnavailable above 0, such as maxSurge: 1",
			"maxSurge %s and maxUnavailable %s of %d replica(s) both come to 0: no replica could ever be replaced", r.MaxSurge, r.MaxUnavailable, replicas)
	}
	switch {
	case a.Target.Static != nil && a.Target.Process == nil && a.Target.Kubernetes == nil:
		d.add(path, "use blueGreen, canary or recreate for this app, or run it on the process or kubernetes target",
			"the rolling strategy scales the app's replicas, which static upstreams do not have")
	case a.Target.Process != nil && a.Traffic.outsideRouter() != nil:
		d.add(path, "use blueGreen, canary or recreate for this app, "+useRouter,
			"the rolling strategy splits the traffic by ready replicas in cutover's router, and %s moves it here", a.Traffic.outsideRouter().name)
	case a.Target.Kubernetes != nil && a.Traffic.Router == nil:
		d.add(path, "add traffic: {router: {port: http}} to the app (router mode), or use blueGreen, canary or recreate",
			"on Kubernetes the rolling strategy needs router mode: cutover's router splits the traffic between the two slots' ready pods")
	}
}

// Bounds resolves maxSurge (rounded up) and maxUnavailable (rounded
// down) against replicas, as Kubernetes does.
func (r *Rolling) Bounds(replicas int) (surge, unavailable int) {
	return r.MaxSurge.Of(replicas, true), min(r.MaxUnavailable.Of(replicas, false), replicas)
}
