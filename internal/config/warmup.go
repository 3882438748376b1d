package config

import "strings"

// Warmup sends synthetic requests to every replica of a new revision
// before it gets any traffic: before the flip of a blue-green deploy and
// before a canary's first weight, so that caches, JITs and connection
// pools are warm when users arrive. A replica that does not answer one of
// them, or answers 5xx, fails the deploy before traffic moves.
type Warmup struct {
	// Requests is the number of requests sent to each replica; required.
	Requests int `yaml:"requests"`
	// Path is the path they GET; default "/".
	Path string `yaml:"path"`
	// Concurrency is how many are in flight at once to each replica;
	// default 1.
	Concurrency int `yaml:"concurrency"`
}

// Bounds of a warmup.
const (
	maxWarmupRequests    = 100000
	maxWarmupConcurrency = 256
)

func (w *Warmup) setDefaults(d *document, path string) {
	if !d.written(path + ".path") {
		w.Path = "/"
	}
	if !d.written(path + ".concurrency") {
		w.Concurrency = 1
	}
}

// validate checks w; o, when set, moves the traffic outside cutover's
// router, which then does not reach the replicas to warm them.
func (w *Warmup) validate(d *document, path string, o *outside) {
	if o != nil && !o.reachesReplicas {
		d.add(path, "remove it, "+useRouter, "%s: cutover does not reach the pods, so it cannot warm them up", o.name)
	}
	if !d.written(path + ".requests") {
		d.add(path+".requests", "write how many requests each replica gets, such as requests: 200", "missing")
	} else if w.Requests < 1 || w.Requests > maxWarmupRequests {
		d.add(path+".requests", "write how many requests each replica gets, such as requests: 200", "%d is not from 1 to %d", w.Requests, maxWarmupRequests)
	}
	if w.Concurrency < 1 || w.Concurrency > maxWarmupConcurrency {
		d.add(path+".concurrency", "write how many requests go at once to each replica, such as concurrency: 4", "%d is not from 1 to %d", w.Concurrency, maxWarmupConcurrency)
	}
	if !strings.HasPrefix(w.Path, "/") {
		d.add(path+".path", "start it with a slash, such as /", "%q does not start with \"/\"", w.Path)
	}
}
