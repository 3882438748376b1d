package config

import (
	"fmt"
	"path/filepath"
	"time"
)

// Defaults for fields left out of the file. A field written with a zero
// value keeps it, so that validation can reject, say, "replicas: 0".
const (
	defaultAdminListen        = "127.0.0.1:9901"
	defaultPathPrefix         = "/"
	defaultHealthPath         = "/"
	defaultHealthInterval     = Duration(time.Second)
	defaultHealthTimeout      = Duration(time.Second)
	defaultHealthyThreshold   = 1
	defaultUnhealthyThreshold = 2
	defaultReplicas           = 1
	defaultStopGrace          = Duration(10 * time.Second)
	defaultDeployTimeout      = Duration(60 * time.Second)
	defaultScaleDownDelay     = Duration(30 * time.Second)
	defaultDrainTimeout       = Duration(30 * time.Second)
	defaultSmokePath          = "/"
	defaultSmokeStatus        = 200
)

// setDefaults fills in every field that d shows was not written.
func (c *Config) setDefaults(d *document) {
	if !d.written("admin.listen") {
		c.Admin.Listen = defaultAdminListen
	}
	base := filepath.Dir(c.File)
	// An absolute base keeps process directories meaningful if the daemon
	// later changes its working directory; Abs fails only when the current
	// directory is gone, and then the relative base is the best there is.
	if abs, err := filepath.Abs(base); err == nil {
		base = abs
	}
	for i := range c.Apps {
		c.Apps[i].setDefaults(d, fmt.Sprintf("apps[%d]", i), base)
	}
}

func (a *App) setDefaults(d *document, path, base string) {
	if !d.written(path + ".pathPrefix") {
		a.PathPrefix = defaultPathPrefix
	}
	if !d.written(path + ".deployTimeout") {
		a.DeployTimeout = defaultDeployTimeout
	}
	if p := a.Target.Process; p != nil {
		p.setDefaults(d, path+".target.process", base)
	}
	a.Health.setDefaults(d, path+".health")
	if a.Strategy.BlueGreen == nil {
		a.Strategy.BlueGreen = &BlueGreen{}
	}
	a.Strategy.BlueGreen.setDefaults(d, path+".strategy.blueGreen")
}

func (p *ProcessTarget) setDefaults(d *document, path, base string) {
	if !d.written(path + ".replicas") {
		p.Replicas = defaultReplicas
	}
	if !d.written(path + ".stopGrace") {
		p.StopGrace = defaultStopGrace
	}
	switch {
	case p.Dir == "":
		p.Dir = base
	case !filepath.IsAbs(p.Dir):
		p.Dir = filepath.Join(base, p.Dir)
	}
}

func (h *Health) setDefaults(d *document, path string) {
	if !d.written(path + ".path") {
		h.Path = defaultHealthPath
	}
	if !d.written(path + ".interval") {
		h.Interval = defaultHealthInterval
	}
	if !d.written(path + ".timeout") {
		h.Timeout = defaultHealthTimeout
	}
	if !d.written(path + ".healthyThreshold") {
		h.HealthyThreshold = defaultHealthyThreshold
	}
	if !d.written(path + ".unhealthyThreshold") {
		h.UnhealthyThreshold = defaultUnhealthyThreshold
	}
}

func (b *BlueGreen) setDefaults(d *document, path string) {
	if b.AutoPromotion == nil {
		auto := true
		b.AutoPromotion = &auto
	}
	if !d.written(path + ".scaleDownDelay") {
		b.ScaleDownDelay = defaultScaleDownDelay
	}
	if !d.written(path + ".drainTimeout") {
		b.DrainTimeout = defaultDrainTimeout
	}
	for i := range b.Smoke {
		s := &b.Smoke[i]
		at := fmt.Sprintf("%s.smoke[%d]", path, i)
		if !d.written(at + ".path") {
			s.Path = defaultSmokePath
		}
		if !d.written(at + ".expectStatus") {
			s.ExpectStatus = defaultSmokeStatus
		}
	}
}
