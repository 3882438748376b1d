package config

import "time"

// Config is one cutover.yaml file.
type Config struct {
	// Admin is the admin API listener.
	Admin Admin `yaml:"admin"`
	// Apps are the services behind cutover.
	Apps []App `yaml:"apps"`
	// AnalysisTemplates are named metric checks that strategies refer to.
	AnalysisTemplates []AnalysisTemplate `yaml:"analysisTemplates"`
	// Notifications send rollout events to webhooks.
	Notifications []Notification `yaml:"notifications"`
	// Server holds the settings of every app listener.
	Server Server `yaml:"server"`
	// ACME gets certificates automatically for apps with tls.acme.
	ACME *ACME `yaml:"acme"`
	// Store is where cutover keeps its state; default bbolt in the data
	// dir.
	Store Store `yaml:"store"`

	// File is the path the config was read from (for messages).
	File string `yaml:"-"`
}

// Admin configures the admin API.
type Admin struct {
	// Listen is the admin address; default 127.0.0.1:9901.
	Listen string `yaml:"listen"`
	// Token is the bearer token; required when Listen is not a loopback
	// address. At least 16 printable characters.
	Token string `yaml:"token"`
	// Hosts are further names the admin API answers to in the Host header,
	// besides localhost, loopback addresses, the listen host and the
	// address a request arrived on (such as deploy.internal when the CLI
	// uses --admin http://deploy.internal:9901). Any other Host is refused.
	Hosts []string `yaml:"hosts"`
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
	// Traffic says who moves the traffic between slots; default
	// cutover's own router.
	Traffic Traffic `yaml:"traffic"`
	// Version is the version label deployed on first start.
	Version  string   `yaml:"version"`
	Health   Health   `yaml:"health"`
	Strategy Strategy `yaml:"strategy"`
	// DeployTimeout bounds the wait for every replica to be ready; default 60s.
	DeployTimeout Duration `yaml:"deployTimeout"`
	// ProgressDeadline bounds a rollout's time without progress (a step or
	// gate that does not move on); default 10m. It always fires.
	ProgressDeadline Duration `yaml:"progressDeadline"`
	// ProgressDeadlineAbort: true (default) aborts when the deadline
	// passes; false pauses the rollout for a human instead.
	ProgressDeadlineAbort *bool `yaml:"progressDeadlineAbort"`
	// Hooks run at lifecycle points of every rollout.
	Hooks Hooks `yaml:"hooks"`
	// TLS makes the app's listener serve HTTPS.
	TLS *TLS `yaml:"tls"`
	// Upstream tunes how the router talks to the app's replicas.
	Upstream Upstream `yaml:"upstream"`
	// Warmup, when set, sends synthetic requests to every new replica
	// before it gets traffic.
	Warmup *Warmup `yaml:"warmup"`

	// Declared is where the app was declared when not in the config file
	// (see Config.WithApp); nil for the file's apps.
	Declared *Declaration `yaml:"-"`
}

// Server holds listener settings shared by every app listener.
type Server struct {
	// ReadHeaderTimeout bounds reading a request's headers (slow-client
	// protection); default 10s.
	ReadHeaderTimeout Duration `yaml:"readHeaderTimeout"`
	// ReadTimeout bounds reading a whole request; default 0 (none, so
	// uploads and streams are not cut).
	ReadTimeout Duration `yaml:"readTimeout"`
	// WriteTimeout bounds writing a response; default 0 (none).
	WriteTimeout Duration `yaml:"writeTimeout"`
	// IdleTimeout closes idle client keep-alive connections; default 120s.
	IdleTimeout Duration `yaml:"idleTimeout"`
	// MaxHeaderBytes limits request headers (431 beyond); default 64 KiB.
	MaxHeaderBytes int `yaml:"maxHeaderBytes"`
	// MaxBodyBytes limits request bodies (413 beyond); default 0 (none).
	MaxBodyBytes int64 `yaml:"maxBodyBytes"`
	// TrustedProxies are CIDRs whose X-Forwarded-For and Forwarded headers
	// are kept and extended; from others they are replaced.
	TrustedProxies []string `yaml:"trustedProxies"`
	// Via adds a Via header to requests and responses; default false.
	Via bool `yaml:"via"`
	// RequestID generates X-Request-Id when a request has none; default true.
	RequestID *bool `yaml:"requestId"`
	// AccessLog logs requests (structured); off by default.
	AccessLog AccessLog `yaml:"accessLog"`
	// FastPath serves plain HTTP/1.1 requests with cutover's own lean
	// proxy path; default true. false serves every request with Go's
	// net/http, as TLS listeners always are: slower, for comparison or
	// to rule the fast path out.
	FastPath *bool `yaml:"fastPath"`
	// EventLoop serves fast-path connections with a few event loops
	// (one per CPU) rather than a goroutine each; default true on
	// Linux. false keeps a goroutine per connection.
	EventLoop *bool `yaml:"eventLoop"`
}

// AccessLog configures the request log.
type AccessLog struct {
	Enabled bool `yaml:"enabled"`
	// Sample is the fraction of requests logged (0..1); default 1.
	Sample *float64 `yaml:"sample"`
}

// ACME configures automatic certificates (RFC 8555).
type ACME struct {
	// Directory is the ACME directory URL; default Let's Encrypt's.
	Directory string `yaml:"directory"`
	Email     string `yaml:"email"`
	// CacheDir keeps certificates and the account key; default DATA/acme.
	CacheDir string `yaml:"cacheDir"`
	// RootCAs is a PEM file of CAs trusted for the directory (a test CA).
	RootCAs string `yaml:"rootCAs"`
	// HTTPListen serves HTTP-01 challenges (and redirects the rest to
	// HTTPS); default none (TLS-ALPN-01 on the TLS listener).
	HTTPListen string `yaml:"httpListen"`
}

// TLS makes an app listener serve HTTPS. Apps sharing a listener must all
// have TLS or none.
type TLS struct {
	// Certificates are chosen by SNI among the app's hosts; reloaded from
	// disk on `cutover reload` / SIGHUP.
	Certificates []Certificate `yaml:"certificates"`
	// ACME gets certificates for the app's hosts automatically.
	ACME bool `yaml:"acme"`
	// RedirectFrom is a plain-HTTP address whose requests are redirected to
	// the HTTPS listener (308).
	RedirectFrom string `yaml:"redirectFrom"`
}

// Certificate is a PEM certificate chain and its key.
type Certificate struct {
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
}

// Upstream tunes the router's connections to an app's replicas.
type Upstream struct {
	// Protocol is http1 (default) or h2c (HTTP/2 without TLS, for gRPC).
	Protocol string `yaml:"protocol"`
	// LoadBalancing is roundRobin (default) or leastRequests (power of two
	// choices on requests in flight).
	LoadBalancing string `yaml:"loadBalancing"`
	// ConnectTimeout bounds dialing a replica; default 5s.
	ConnectTimeout Duration `yaml:"connectTimeout"`
	// ResponseHeaderTimeout bounds waiting for a replica's response
	// headers; default 60s.
	ResponseHeaderTimeout Duration `yaml:"responseHeaderTimeout"`
	// IdleConnTimeout closes idle connections to replicas; default 90s.
	IdleConnTimeout Duration `yaml:"idleConnTimeout"`
	// Retries: a request that failed to connect, or an idempotent one whose
	// connection was reset before any response byte, is retried this many
	// times on another ready replica; default 1, 0 disables.
	Retries *int `yaml:"retries"`
	// PassiveHealth ejects replicas that fail live requests.
	PassiveHealth PassiveHealth `yaml:"passiveHealth"`
	// HostHeader is the Host the replicas get: client (default) passes
	// on the client's, upstream sends the replica's host:port, and any
	// other host (such as app.internal) is sent as it is. The client's
	// Host is in X-Forwarded-Host either way.
	HostHeader string `yaml:"hostHeader"`
}

// PassiveHealth ejects a replica after consecutive failed requests; the
// active health check brings it back after EjectFor.
type PassiveHealth struct {
	// ConsecutiveFailures before ejection; default 3, 0 disables.
	ConsecutiveFailures *int `yaml:"consecutiveFailures"`
	// EjectFor is the back-off before the replica may return; default 10s.
	EjectFor Duration `yaml:"ejectFor"`
	// MaxEjectionPercent caps the share of a revision's replicas ejected
	// at once; default 50. Beyond it failing replicas stay in rotation
	// (retries still hide their failures) rather than leave too few to
	// carry the traffic.
	MaxEjectionPercent *int `yaml:"maxEjectionPercent"`
}

// Target says where revisions run: exactly one of Process, Static or
// Kubernetes.
type Target struct {
	Process    *ProcessTarget    `yaml:"process"`
	Static     *StaticTarget     `yaml:"static"`
	Kubernetes *KubernetesTarget `yaml:"kubernetes"`
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

// Strategy is how a new revision replaces the stable one: exactly one of
// BlueGreen, Canary, Recreate or Rolling; BlueGreen with defaults when none is given.
type Strategy struct {
	BlueGreen *BlueGreen `yaml:"blueGreen"`
	Canary    *Canary    `yaml:"canary"`
	Recreate  *Recreate  `yaml:"recreate"`
	Rolling   *Rolling   `yaml:"rolling"`
}

// Recreate configures the recreate strategy, for apps that cannot run two
// versions side by side (a single-writer database, an exclusive lock): the
// stable revision stops before the new one starts, and the app serves
// nothing (503) in between. The gap is measured and recorded.
type Recreate struct {
	// DrainTimeout bounds how long requests in flight on the stable
	// revision may take once it stops getting traffic, before its
	// replicas are stopped; default 30s. It adds to the downtime only as
	// long as such requests run.
	DrainTimeout Duration `yaml:"drainTimeout"`
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
	// PrePromotionAnalysis runs against the new slot before the flip; a
	// failure ends the rollout with traffic unmoved.
	PrePromotionAnalysis *AnalysisRef `yaml:"prePromotionAnalysis"`
	// PrePromotionMirror copies a share of the production requests to
	// the new slot, from its preview until the flip, and throws its
	// answers away.
	PrePromotionMirror *MirrorRoute `yaml:"prePromotionMirror"`
	// PostPromotionAnalysis runs after the flip; a failure flips back.
	PostPromotionAnalysis *AnalysisRef `yaml:"postPromotionAnalysis"`
	// BakeTime is how long the rollout watches the new slot after the
	// flip: a replica exit or lost readiness meanwhile flips back to the
	// previous slot, kept warm at least that long; default 10s, 0 turns
	// the watch off.
	BakeTime Duration `yaml:"bakeTime"`
}

// Canary configures the canary strategy: the new revision runs beside the
// stable one and gets a growing share of the traffic, step by step.
type Canary struct {
	// Steps run in order; after the last, the canary takes all traffic.
	Steps []CanaryStep `yaml:"steps"`
	// Analysis runs in the background from the first step to the end.
	Analysis *AnalysisRef `yaml:"analysis"`
	// StickySessions keep a client on the version it was first given.
	StickySessions *StickySessions `yaml:"stickySessions"`
	// RetryOnStable retries idempotent requests that fail on the canary
	// (connection error or 5xx) once on the stable revision.
	RetryOnStable bool `yaml:"retryOnStable"`
	// ScaleDownDelay keeps the old stable revision running after a
	// successful rollout, for instant rollback; default 30s.
	ScaleDownDelay Duration `yaml:"scaleDownDelay"`
	// AbortScaleDownDelay keeps an aborted canary running (for a look at
	// it) before it is stopped; default 30s.
	AbortScaleDownDelay Duration `yaml:"abortScaleDownDelay"`
	// DrainTimeout bounds in-flight requests on the revision that loses
	// its traffic; default 30s.
	DrainTimeout Duration `yaml:"drainTimeout"`
}

// CanaryStep is exactly one action.
type CanaryStep struct {
	// SetWeight sends this percentage (0..100) of requests to the canary.
	SetWeight *int `yaml:"setWeight"`
	// Pause waits Duration, or for `cutover promote` when it is zero.
	Pause *Pause `yaml:"pause"`
	// Analysis runs these templates and moves on when they pass.
	Analysis *AnalysisRef `yaml:"analysis"`
	// SetHeaderRoute sends requests with a matching header to the canary,
	// whatever the weight.
	SetHeaderRoute *RouteMatch `yaml:"setHeaderRoute"`
	// SetCookieRoute does the same for a matching cookie.
	SetCookieRoute *RouteMatch `yaml:"setCookieRoute"`
	// SetMirrorRoute copies a share of stable's requests to the canary
	// and throws its answers away; percent 0 stops it.
	SetMirrorRoute *MirrorRoute `yaml:"setMirrorRoute"`
}

// Pause is a canary step that waits.
type Pause struct {
	// Duration to wait; zero waits for `cutover promote`.
	Duration Duration `yaml:"duration"`
}

// RouteMatch matches a header or cookie by name and exactly one of Value
// (exact), Prefix or Regex.
type RouteMatch struct {
	Name   string `yaml:"name"`
	Value  string `yaml:"value"`
	Prefix string `yaml:"prefix"`
	Regex  string `yaml:"regex"`
}

// StickySessions pins clients to a version with a cookie.
type StickySessions struct {
	// Cookie is the cookie's name; default "cutover-slot".
	Cookie string `yaml:"cookie"`
}

// AnalysisRef names analysis templates and the arguments they get.
type AnalysisRef struct {
	Templates []string          `yaml:"templates"`
	Args      map[string]string `yaml:"args"`
}

// AnalysisTemplate is a named set of metric checks.
type AnalysisTemplate struct {
	Name string `yaml:"name"`
	// Args declares the template's arguments, with optional defaults;
	// queries refer to them as {{args.NAME}}.
	Args    []AnalysisArg    `yaml:"args"`
	Metrics []AnalysisMetric `yaml:"metrics"`
}

// AnalysisArg is one template argument.
type AnalysisArg struct {
	Name  string  `yaml:"name"`
	Value *string `yaml:"value"` // default; nil means required
}

// AnalysisMetric is one metric check with Argo Rollouts' semantics.
type AnalysisMetric struct {
	Name     string         `yaml:"name"`
	Provider MetricProvider `yaml:"provider"`
	// Interval between measurements; default 1s.
	Interval Duration `yaml:"interval"`
	// InitialDelay before the first measurement.
	InitialDelay Duration `yaml:"initialDelay"`
	// Count of measurements; 0 measures until stopped, which suits the
	// background analysis. An analysis step needs a counted metric to end.
	Count int `yaml:"count"`
	// SuccessCondition and FailureCondition are expr-lang expressions over
	// result (isNaN and default are available).
	SuccessCondition string `yaml:"successCondition"`
	FailureCondition string `yaml:"failureCondition"`
	// FailureLimit: more failed measurements than this fail the metric; default 0.
	FailureLimit int `yaml:"failureLimit"`
	// InconclusiveLimit: more inconclusive measurements than this make the
	// metric Inconclusive; default 0.
	InconclusiveLimit int `yaml:"inconclusiveLimit"`
	// ConsecutiveErrorLimit: more provider errors in a row than this make
	// the metric Error; default 4.
	ConsecutiveErrorLimit *int `yaml:"consecutiveErrorLimit"`
	// MinSamples (builtin provider): a measurement waits until the window
	// holds this many requests, since too few samples are not a verdict.
	MinSamples int `yaml:"minSamples"`
	// MinSamplesTimeout bounds that wait: when it passes first, the
	// measurement is Inconclusive; default 1m.
	MinSamplesTimeout Duration `yaml:"minSamplesTimeout"`
	// DryRun records the metric's verdict without acting on it.
	DryRun bool `yaml:"dryRun"`
}

// MetricProvider is exactly one source of measurements.
type MetricProvider struct {
	Builtin    *BuiltinProvider    `yaml:"builtin"`
	Prometheus *PrometheusProvider `yaml:"prometheus"`
	Web        *WebProvider        `yaml:"web"`
	Command    *CommandProvider    `yaml:"command"`
}

// BuiltinProvider reads the router's own sliding windows of the canary (or
// new) revision.
type BuiltinProvider struct {
	// Metric: successRate, errorRate, requestCount, requestRate,
	// latencyP50, latencyP90 or latencyP99 (seconds).
	Metric string `yaml:"metric"`
	// Window to aggregate over; default 10s.
	Window Duration `yaml:"window"`
}

// PrometheusProvider runs an instant PromQL query.
type PrometheusProvider struct {
	Address string   `yaml:"address"`
	Query   string   `yaml:"query"`
	Timeout Duration `yaml:"timeout"` // default 5s
}

// WebProvider calls a URL and reads a value out of its JSON answer.
type WebProvider struct {
	URL      string            `yaml:"url"`
	Method   string            `yaml:"method"` // default GET
	Headers  map[string]string `yaml:"headers"`
	Body     string            `yaml:"body"`
	JSONPath string            `yaml:"jsonPath"` // such as $.data.ok; default the whole answer
	Timeout  Duration          `yaml:"timeout"`  // default 5s
}

// CommandProvider runs an executable: its exit code, and its stdout when
// that is JSON, give the result.
type CommandProvider struct {
	Command []string `yaml:"command"`
	Timeout Duration `yaml:"timeout"` // default 30s
}

// Hooks are commands or webhooks run at a rollout's lifecycle points (the
// CodeDeploy ones). A failing hook fails the rollout. Gates hold the
// rollout until they pass or the progress deadline passes.
type Hooks struct {
	BeforeInstall         []Hook `yaml:"beforeInstall"`
	AfterInstall          []Hook `yaml:"afterInstall"`
	AfterAllowTestTraffic []Hook `yaml:"afterAllowTestTraffic"`
	BeforeAllowTraffic    []Hook `yaml:"beforeAllowTraffic"`
	AfterAllowTraffic     []Hook `yaml:"afterAllowTraffic"`
	Rollback              []Hook `yaml:"rollback"`
	// ConfirmPromotion gates the flip (blue-green) or the last step (canary).
	ConfirmPromotion []Hook `yaml:"confirmPromotion"`
	// ConfirmTrafficIncrease gates every canary weight increase.
	ConfirmTrafficIncrease []Hook `yaml:"confirmTrafficIncrease"`
}

// Hook is exactly one of Command or Webhook; it gets the rollout as JSON
// (on stdin, or as the POST body).
type Hook struct {
	Name    string   `yaml:"name"`
	Command []string `yaml:"command"`
	Webhook *Webhook `yaml:"webhook"`
	// Timeout for a command; default 60s.
	Timeout Duration `yaml:"timeout"`
}

// Webhook is an HTTP POST endpoint.
type Webhook struct {
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"`
	Timeout Duration          `yaml:"timeout"` // default 10s
	Retries int               `yaml:"retries"` // extra attempts after a failure; default 0
}

// Notification sends rollout events to a webhook (Slack-compatible body).
type Notification struct {
	Webhook string `yaml:"webhook"`
	// Events to send; empty means all: started, step, paused, promoted,
	// aborted, analysisFailed.
	Events []string `yaml:"events"`
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
