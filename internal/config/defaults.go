package config

import (
	"fmt"
	"path/filepath"
	"reflect"
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
	defaultBakeTime           = Duration(10 * time.Second)
	defaultSmokePath          = "/"
	defaultSmokeStatus        = 200
	defaultProgressDeadline   = Duration(10 * time.Minute)

	defaultAbortScaleDownDelay = Duration(30 * time.Second)
	defaultStickyCookie        = "cutover-slot"

	defaultMetricInterval         = Duration(time.Second)
	defaultConsecutiveErrorLimit  = 4
	defaultBuiltinWindow          = Duration(10 * time.Second)
	defaultMinSamplesTimeout      = Duration(time.Minute)
	defaultPrometheusTimeout      = Duration(5 * time.Second)
	defaultWebMethod              = "GET"
	defaultWebTimeout             = Duration(5 * time.Second)
	defaultCommandProviderTimeout = Duration(30 * time.Second)
	defaultHookTimeout            = Duration(60 * time.Second)
	defaultWebhookTimeout         = Duration(10 * time.Second)

	defaultReadHeaderTimeout = Duration(10 * time.Second)
	defaultIdleTimeout       = Duration(120 * time.Second)
	defaultMaxHeaderBytes    = 64 << 10
	defaultAccessLogSample   = 1.0

	defaultUpstreamProtocol      = "http1"
	defaultLoadBalancing         = "roundRobin"
	defaultHostHeader            = "client"
	defaultConnectTimeout        = Duration(5 * time.Second)
	defaultResponseHeaderTimeout = Duration(60 * time.Second)
	defaultIdleConnTimeout       = Duration(90 * time.Second)
	defaultRetries               = 1
	defaultConsecutiveFailures   = 3
	defaultEjectFor              = Duration(10 * time.Second)
	defaultMaxEjectionPercent    = 50

	// DefaultACMEDirectory is Let's Encrypt's production directory.
	DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"
)

// setDefaults fills in every field that d shows was not written.
func (c *Config) setDefaults(d *document) {
	d.fillEmptyBlocks(reflect.ValueOf(c).Elem(), "")
	if !d.written("admin.listen") {
		c.Admin.Listen = defaultAdminListen
	}
	base := c.baseDir()
	c.Server.setDefaults(d, "server")
	if c.ACME != nil {
		c.ACME.setDefaults(d, base)
	}
	for i := range c.Apps {
		c.Apps[i].setDefaults(d, fmt.Sprintf("apps[%d]", i), base)
	}
	for i := range c.AnalysisTemplates {
		c.AnalysisTemplates[i].setDefaults(d, fmt.Sprintf("analysisTemplates[%d]", i))
	}
}

// baseDir is the directory relative paths of the config are read from:
// the config file's.
func (c *Config) baseDir() string {
	base := filepath.Dir(c.File)
	// An absolute base keeps process directories meaningful if the daemon
	// later changes its working directory; Abs fails only when the current
	// directory is gone, and then the relative base is the best there is.
	if abs, err := filepath.Abs(base); err == nil {
		base = abs
	}
	return base
}

// fillEmptyBlocks gives every block that was written without a value, such
// as "pause:" or "stickySessions:", its zero struct: a key the user wrote
// then counts as given, gets its defaults and is validated, rather than
// being read as absent.
func (d *document) fillEmptyBlocks(v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			if v.Type().Elem().Kind() != reflect.Struct || !d.present(path) {
				return
			}
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.fillEmptyBlocks(v.Elem(), path)
	case reflect.Struct:
		for i := range v.NumField() {
			if name := yamlName(v.Type().Field(i)); name != "" {
				d.fillEmptyBlocks(v.Field(i), join(path, name))
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			d.fillEmptyBlocks(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
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
	if k := a.Target.Kubernetes; k != nil {
		k.setDefaults(d, path+".target.kubernetes")
	}
	if n := a.Traffic.Nginx; n != nil {
		n.setDefaults(d, path+".traffic.nginx", base)
	}
	if !d.written(path + ".progressDeadline") {
		a.ProgressDeadline = defaultProgressDeadline
	}
	if a.ProgressDeadlineAbort == nil {
		abort := true
		a.ProgressDeadlineAbort = &abort
	}
	a.Health.setDefaults(d, path+".health")
	a.Upstream.setDefaults(d, path+".upstream")
	if a.TLS != nil {
		for i := range a.TLS.Certificates {
			c := &a.TLS.Certificates[i]
			c.CertFile, c.KeyFile = besideConfig(base, c.CertFile), besideConfig(base, c.KeyFile)
		}
	}
	a.Strategy.setDefaults(d, path+".strategy")
	a.Hooks.setDefaults(d, path+".hooks")
	if a.Warmup != nil {
		a.Warmup.setDefaults(d, path+".warmup")
	}
}

// setDefaults makes blue-green the strategy when the file names none.
func (s *Strategy) setDefaults(d *document, path string) {
	if s.BlueGreen == nil && s.Canary == nil && s.Recreate == nil && s.Rolling == nil {
		s.BlueGreen = &BlueGreen{}
	}
	if s.BlueGreen != nil {
		s.BlueGreen.setDefaults(d, path+".blueGreen")
	}
	if s.Canary != nil {
		s.Canary.setDefaults(d, path+".canary")
	}
	if s.Recreate != nil && !d.written(path+".recreate.drainTimeout") {
		s.Recreate.DrainTimeout = defaultDrainTimeout
	}
	if s.Rolling != nil {
		s.Rolling.setDefaults(d, path+".rolling")
	}
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

func (s *Server) setDefaults(d *document, path string) {
	if !d.written(path + ".readHeaderTimeout") {
		s.ReadHeaderTimeout = defaultReadHeaderTimeout
	}
	if !d.written(path + ".idleTimeout") {
		s.IdleTimeout = defaultIdleTimeout
	}
	if !d.written(path + ".maxHeaderBytes") {
		s.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if s.RequestID == nil {
		on := true
		s.RequestID = &on
	}
	if s.AccessLog.Sample == nil {
		all := defaultAccessLogSample
		s.AccessLog.Sample = &all
	}
}

func (u *Upstream) setDefaults(d *document, path string) {
	if !d.written(path + ".protocol") {
		u.Protocol = defaultUpstreamProtocol
	}
	if !d.written(path + ".loadBalancing") {
		u.LoadBalancing = defaultLoadBalancing
	}
	if !d.written(path + ".hostHeader") {
		u.HostHeader = defaultHostHeader
	}
	if !d.written(path + ".connectTimeout") {
		u.ConnectTimeout = defaultConnectTimeout
	}
	if !d.written(path + ".responseHeaderTimeout") {
		u.ResponseHeaderTimeout = defaultResponseHeaderTimeout
	}
	if !d.written(path + ".idleConnTimeout") {
		u.IdleConnTimeout = defaultIdleConnTimeout
	}
	if u.Retries == nil {
		n := defaultRetries
		u.Retries = &n
	}
	if u.PassiveHealth.ConsecutiveFailures == nil {
		n := defaultConsecutiveFailures
		u.PassiveHealth.ConsecutiveFailures = &n
	}
	if !d.written(path + ".passiveHealth.ejectFor") {
		u.PassiveHealth.EjectFor = defaultEjectFor
	}
	if u.PassiveHealth.MaxEjectionPercent == nil {
		n := defaultMaxEjectionPercent
		u.PassiveHealth.MaxEjectionPercent = &n
	}
}

// setDefaults fills in the directory and makes the file paths absolute;
// an empty CacheDir stays empty, for the daemon to put it in its data dir.
func (a *ACME) setDefaults(d *document, base string) {
	if !d.written("acme.directory") {
		a.Directory = DefaultACMEDirectory
	}
	a.CacheDir = besideConfig(base, a.CacheDir)
	a.RootCAs = besideConfig(base, a.RootCAs)
}

// besideConfig resolves a path written in the config against base, the
// config file's directory; "" stays "".
func besideConfig(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
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
	if !d.written(path + ".bakeTime") {
		b.BakeTime = defaultBakeTime
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

func (c *Canary) setDefaults(d *document, path string) {
	if !d.written(path + ".scaleDownDelay") {
		c.ScaleDownDelay = defaultScaleDownDelay
	}
	if !d.written(path + ".abortScaleDownDelay") {
		c.AbortScaleDownDelay = defaultAbortScaleDownDelay
	}
	if !d.written(path + ".drainTimeout") {
		c.DrainTimeout = defaultDrainTimeout
	}
	if c.StickySessions != nil && !d.written(path+".stickySessions.cookie") {
		c.StickySessions.Cookie = defaultStickyCookie
	}
}

func (t *AnalysisTemplate) setDefaults(d *document, path string) {
	for i := range t.Metrics {
		t.Metrics[i].setDefaults(d, fmt.Sprintf("%s.metrics[%d]", path, i))
	}
}

func (m *AnalysisMetric) setDefaults(d *document, path string) {
	if !d.written(path + ".interval") {
		m.Interval = defaultMetricInterval
	}
	if m.ConsecutiveErrorLimit == nil {
		limit := defaultConsecutiveErrorLimit
		m.ConsecutiveErrorLimit = &limit
	}
	metric := path
	path += ".provider"
	p := &m.Provider
	if p.Builtin != nil && !d.written(path+".builtin.window") {
		p.Builtin.Window = defaultBuiltinWindow
	}
	// Only the builtin provider counts samples, so only it waits for them.
	if p.Builtin != nil && !d.written(metric+".minSamplesTimeout") {
		m.MinSamplesTimeout = defaultMinSamplesTimeout
	}
	if p.Prometheus != nil && !d.written(path+".prometheus.timeout") {
		p.Prometheus.Timeout = defaultPrometheusTimeout
	}
	if w := p.Web; w != nil {
		if !d.written(path + ".web.method") {
			w.Method = defaultWebMethod
		}
		if !d.written(path + ".web.timeout") {
			w.Timeout = defaultWebTimeout
		}
	}
	if p.Command != nil && !d.written(path+".command.timeout") {
		p.Command.Timeout = defaultCommandProviderTimeout
	}
}

func (h *Hooks) setDefaults(d *document, path string) {
	for _, point := range h.points() {
		for i := range point.hooks {
			point.hooks[i].setDefaults(d, fmt.Sprintf("%s.%s[%d]", path, point.name, i))
		}
	}
}

func (h *Hook) setDefaults(d *document, path string) {
	if !d.written(path + ".timeout") {
		h.Timeout = defaultHookTimeout
	}
	if h.Webhook != nil && !d.written(path+".webhook.timeout") {
		h.Webhook.Timeout = defaultWebhookTimeout
	}
}
