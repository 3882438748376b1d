package config

import "time"

// Config is one cutover.yaml file.
type Config struct {
	// Admin is the admin API listener.
	Admin Admin `yaml:"admin"`
	// Apps are the services behind cutover.
	Apps []App `yaml:"apps"`

	// File is the path the config was read from (for messages).
	File string `yaml:"-"`
}

// Admin configures the admin API.
type Admin struct {
	// Listen is the admin address; default 127.0.0.1:9901.
	Listen string `yaml:"listen"`
	// Token is the bearer token; required when Listen is not a loopback address.
	Token string `yaml:"token"`
}

// App is one service behind cutover.
type App struct {
	Name string `yaml:"name"`
	// Listen is the app's own listener address. Apps may share one listener
	// when each names Hosts.
	Listen string `yaml:"listen"`
	// Hosts restrict the app to these Host headers (port ignored). Empty
	// means every host on Listen.
	Hosts []string `yaml:"hosts"`
	// PathPrefix restricts the app to paths under it; default "/".
	PathPrefix string `yaml:"pathPrefix"`
	Target     Target `yaml:"target"`
	// Version is the version label deployed on first start.
	Version  string   `yaml:"version"`
	Health   Health   `yaml:"health"`
	Strategy Strategy `yaml:"strategy"`
	// DeployTimeout bounds the wait for every replica to be ready; default 60s.
	DeployTimeout Duration `yaml:"deployTimeout"`
}

// Target says where revisions run: exactly one of Process or Static.
type Target struct {
	Process *ProcessTarget `yaml:"process"`
	Static  *StaticTarget  `yaml:"static"`
}

// ProcessTarget runs each replica as a local child process.
type ProcessTarget struct {
	// Command is the replica's argv; "${PORT}" is replaced by the replica's port.
	Command []string `yaml:"command"`
	// Replicas defaults to 1.
	Replicas int `yaml:"replicas"`
	// Env adds environment variables (PORT is always set).
	Env map[string]string `yaml:"env"`
	// Dir is the working directory; default the config file's directory.
	Dir string `yaml:"dir"`
	// StopGrace is the time between SIGTERM and SIGKILL; default 10s.
	StopGrace Duration `yaml:"stopGrace"`
}

// StaticTarget routes to upstreams that run elsewhere.
type StaticTarget struct {
	// Upstreams are the initial endpoint URLs (http://host:port).
	Upstreams []string `yaml:"upstreams"`
}

// Health configures active health checks, which also decide readiness.
type Health struct {
	Path               string   `yaml:"path"`               // default "/"
	Interval           Duration `yaml:"interval"`           // default 1s
	Timeout            Duration `yaml:"timeout"`            // default 1s
	HealthyThreshold   int      `yaml:"healthyThreshold"`   // default 1
	UnhealthyThreshold int      `yaml:"unhealthyThreshold"` // default 2
}

// Strategy is how a new revision replaces the stable one. Only BlueGreen so
// far; it is the default when none is given.
type Strategy struct {
	BlueGreen *BlueGreen `yaml:"blueGreen"`
}

// BlueGreen configures the blue-green strategy.
type BlueGreen struct {
	// AutoPromotion flips as soon as the new slot is ready and smoke checks
	// pass; default true. False waits for `cutover promote`.
	AutoPromotion *bool `yaml:"autoPromotion"`
	// PreviewListen serves the idle slot, for smoke tests by hand.
	PreviewListen string `yaml:"previewListen"`
	// ScaleDownDelay keeps the old slot running for instant rollback; default 30s.
	ScaleDownDelay Duration `yaml:"scaleDownDelay"`
	// DrainTimeout bounds how long in-flight requests on the old slot may
	// take after a flip; default 30s.
	DrainTimeout Duration `yaml:"drainTimeout"`
	// Smoke checks run against the new slot before promotion.
	Smoke []SmokeCheck `yaml:"smoke"`
}

// SmokeCheck is one HTTP check against the preview slot.
type SmokeCheck struct {
	Path         string `yaml:"path"`         // default "/"
	ExpectStatus int    `yaml:"expectStatus"` // default 200
}

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
