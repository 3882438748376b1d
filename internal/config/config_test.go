package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

func ptr[T any](v T) *T { return &v }

// defaultServer is the server block of a file that leaves it out.
func defaultServer() Server {
	return Server{
		ReadHeaderTimeout: Duration(10 * time.Second),
		IdleTimeout:       Duration(120 * time.Second),
		MaxHeaderBytes:    65536,
		RequestID:         ptr(true),
		AccessLog:         AccessLog{Sample: ptr(1.0)},
	}
}

// defaultUpstream is the upstream block of an app that leaves it out.
func defaultUpstream() Upstream {
	return Upstream{
		Protocol:              "http1",
		LoadBalancing:         "roundRobin",
		HostHeader:            "client",
		ConnectTimeout:        Duration(5 * time.Second),
		ResponseHeaderTimeout: Duration(60 * time.Second),
		IdleConnTimeout:       Duration(90 * time.Second),
		Retries:               ptr(1),
		PassiveHealth:         PassiveHealth{ConsecutiveFailures: ptr(3), EjectFor: Duration(10 * time.Second), MaxEjectionPercent: ptr(50)},
	}
}

// wantFull is testdata/full.yaml with every default applied; dir is the
// absolute testdata directory.
func wantFull(dir string) *Config {
	return &Config{
		File:   filepath.Join("testdata", "full.yaml"),
		Admin:  Admin{Listen: "0.0.0.0:9901", Token: "s3cret-token-for-tests"},
		Server: defaultServer(),
		Apps: []App{
			{
				Name:       "web",
				Listen:     "127.0.0.1:8080",
				Hosts:      []string{"www.example.com", "example.com"},
				PathPrefix: "/",
				Version:    "v1.4.2",
				Target: Target{Process: &ProcessTarget{
					Command:   []string{"./web", "--port", "${PORT}"},
					Replicas:  2,
					Env:       map[string]string{"LOG_LEVEL": "debug"},
					Dir:       filepath.Join(dir, "bin"),
					StopGrace: Duration(5 * time.Second),
				}},
				Health: Health{
					Path:               "/healthz",
					Interval:           Duration(500 * time.Millisecond),
					Timeout:            Duration(2 * time.Second),
					HealthyThreshold:   2,
					UnhealthyThreshold: 3,
				},
				Strategy: Strategy{BlueGreen: &BlueGreen{
					AutoPromotion:  ptr(false),
					PreviewListen:  "127.0.0.1:8081",
					ScaleDownDelay: Duration(time.Minute),
					DrainTimeout:   Duration(10 * time.Second),
					BakeTime:       Duration(10 * time.Second),
					Smoke: []SmokeCheck{
						{Path: "/healthz", ExpectStatus: 204},
						{Path: "/", ExpectStatus: 200},
					},
				}},
				DeployTimeout:         Duration(2 * time.Minute),
				ProgressDeadline:      Duration(10 * time.Minute),
				ProgressDeadlineAbort: ptr(true),
				Upstream:              defaultUpstream(),
			},
			{
				Name:       "api",
				Listen:     "127.0.0.1:8080",
				Hosts:      []string{"api.example.com"},
				PathPrefix: "/",
				Version:    "1.10",
				Target: Target{Static: &StaticTarget{
					Upstreams: []string{"http://127.0.0.1:9001", "https://api-2.internal:9443"},
				}},
				Health: Health{
					Path:               "/",
					Interval:           Duration(time.Second),
					Timeout:            Duration(time.Second),
					HealthyThreshold:   1,
					UnhealthyThreshold: 2,
				},
				Strategy: Strategy{BlueGreen: &BlueGreen{
					AutoPromotion:  ptr(true),
					ScaleDownDelay: Duration(30 * time.Second),
					DrainTimeout:   Duration(30 * time.Second),
					BakeTime:       Duration(10 * time.Second),
				}},
				DeployTimeout:         Duration(time.Minute),
				ProgressDeadline:      Duration(10 * time.Minute),
				ProgressDeadlineAbort: ptr(true),
				Upstream:              defaultUpstream(),
			},
		},
	}
}

func TestLoadFullConfigAppliesDefaultsAndRoundTrips(t *testing.T) {
	path := filepath.Join("testdata", "full.yaml")
	got, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if want := wantFull(dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("Load(%s):\n got %+v\nwant %+v", path, got, want)
	}

	out, err := yaml.MarshalWithOptions(got, yaml.OmitEmpty())
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	again, err := Parse(path, out)
	if err != nil {
		t.Fatalf("Parse of the marshalled config: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(again, got) {
		t.Errorf("marshal and parse changed the config:\n got %+v\nwant %+v\nYAML:\n%s", again, got, out)
	}
}

func TestParseFillsEveryDefaultOfAMinimalApp(t *testing.T) {
	src := `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target:
      process:
        command: [./web]
`
	c, err := Parse("/srv/cutover/cutover.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := App{
		Name:       "web",
		Listen:     "127.0.0.1:8080",
		PathPrefix: "/",
		Version:    "v1",
		Target: Target{Process: &ProcessTarget{
			Command:   []string{"./web"},
			Replicas:  1,
			Dir:       "/srv/cutover",
			StopGrace: Duration(10 * time.Second),
		}},
		Health: Health{
			Path:               "/",
			Interval:           Duration(time.Second),
			Timeout:            Duration(time.Second),
			HealthyThreshold:   1,
			UnhealthyThreshold: 2,
		},
		Strategy: Strategy{BlueGreen: &BlueGreen{
			AutoPromotion:  ptr(true),
			ScaleDownDelay: Duration(30 * time.Second),
			DrainTimeout:   Duration(30 * time.Second),
			BakeTime:       Duration(10 * time.Second),
		}},
		DeployTimeout:         Duration(60 * time.Second),
		ProgressDeadline:      Duration(10 * time.Minute),
		ProgressDeadlineAbort: ptr(true),
		Upstream:              defaultUpstream(),
	}
	if c.Admin.Listen != "127.0.0.1:9901" {
		t.Errorf("admin.listen = %q, want the default 127.0.0.1:9901", c.Admin.Listen)
	}
	if len(c.Apps) != 1 || !reflect.DeepEqual(c.Apps[0], want) {
		t.Errorf("apps:\n got %+v\nwant [%+v]", c.Apps, want)
	}
}

func TestParseKeepsZeroDurationsThatAreWrittenOut(t *testing.T) {
	src := `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {process: {command: [./web], stopGrace: 0s}}
    strategy: {blueGreen: {scaleDownDelay: 0s, drainTimeout: 0s, bakeTime: 0s}}
`
	c, err := Parse("/srv/cutover.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	a := c.Apps[0]
	bg := a.Strategy.BlueGreen
	if a.Target.Process.StopGrace != 0 || bg.ScaleDownDelay != 0 || bg.DrainTimeout != 0 || bg.BakeTime != 0 {
		t.Errorf("written zeros were replaced by defaults: stopGrace %s, scaleDownDelay %s, drainTimeout %s, bakeTime %s",
			a.Target.Process.StopGrace, bg.ScaleDownDelay, bg.DrainTimeout, bg.BakeTime)
	}
}

func TestParseResolvesProcessDirAgainstTheConfigFile(t *testing.T) {
	tests := []struct{ dir, want string }{
		{"", "/etc/cutover"},
		{"apps/web", "/etc/cutover/apps/web"},
		{"../web", "/etc/web"},
		{"/opt/web", "/opt/web"},
	}
	for _, tt := range tests {
		src := `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {process: {command: [./web], dir: "` + tt.dir + `"}}
`
		c, err := Parse("/etc/cutover/cutover.yaml", []byte(src))
		if err != nil {
			t.Fatalf("dir %q: Parse: %v", tt.dir, err)
		}
		if got := c.Apps[0].Target.Process.Dir; got != tt.want {
			t.Errorf("dir %q became %q, want %q", tt.dir, got, tt.want)
		}
	}
}

func TestParseFollowsAnchorsAndMergeKeys(t *testing.T) {
	src := `apps:
  - &base
    name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    health: &health
      path: /healthz
      interval: 2s
  - <<: *base
    name: api
    listen: 127.0.0.1:8081
    health: *health
`
	c, err := Parse("cutover.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	api, ok := c.App("api")
	if !ok {
		t.Fatal(`App("api") not found`)
	}
	if api.Version != "v1" || api.Health.Path != "/healthz" || api.Health.Interval != Duration(2*time.Second) {
		t.Errorf("api did not take web's fields: %+v", api)
	}
}

// An anchor under an unknown field still serves later aliases, so the
// unknown field is the only problem reported.
func TestParseResolvesAliasesToAnchorsUnderUnknownFields(t *testing.T) {
	src := `base: &base
  version: v1
apps:
  - <<: *base
    name: web
    listen: 127.0.0.1:8080
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`
	ps := parseProblems(t, src)
	if got := ps.Error(); !strings.HasPrefix(got, `cutover.yaml:1:1: unknown field "base"`) || len(ps) != 1 {
		t.Errorf("problems:\n%s\nwant only the unknown field \"base\" at 1:1", got)
	}
}

func TestParseOfAnEmptyFileAsksForApps(t *testing.T) {
	ps := parseProblems(t, "# nothing yet\n")
	if got := ps.Error(); !strings.HasPrefix(got, "cutover.yaml:1:1: apps: no apps are defined") {
		t.Errorf("Error() = %s", got)
	}
}

func TestLoadOfAMissingFileIsNotAProblemList(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "cutover.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load error = %v, want one wrapping fs.ErrNotExist", err)
	}
	var ps Problems
	if errors.As(err, &ps) {
		t.Errorf("a missing file was reported as config problems: %v", err)
	}
}

func TestAppFindsAppsByName(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	a, ok := c.App("api")
	if !ok || a != &c.Apps[1] {
		t.Errorf(`App("api") = %p, %v; want %p, true`, a, ok, &c.Apps[1])
	}
	if a, ok := c.App("nope"); ok || a != nil {
		t.Errorf(`App("nope") = %v, %v; want nil, false`, a, ok)
	}
}

func TestAutoPromotionIsOnUnlessTurnedOff(t *testing.T) {
	tests := []struct {
		name string
		bg   *BlueGreen
		want bool
	}{
		{"no strategy", nil, true},
		{"unset", &BlueGreen{}, true},
		{"true", &BlueGreen{AutoPromotion: ptr(true)}, true},
		{"false", &BlueGreen{AutoPromotion: ptr(false)}, false},
	}
	for _, tt := range tests {
		a := App{Strategy: Strategy{BlueGreen: tt.bg}}
		if got := a.AutoPromotion(); got != tt.want {
			t.Errorf("%s: AutoPromotion() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestProblemStringLeavesOutAnEmptyHint(t *testing.T) {
	p := Problem{File: "cutover.yaml", Line: 12, Column: 5, Message: "apps[1].health.interval: bad"}
	if got, want := p.String(), "cutover.yaml:12:5: apps[1].health.interval: bad"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	p.Hint = "write 1s"
	if got, want := p.String(), "cutover.yaml:12:5: apps[1].health.interval: bad; write 1s"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// wantCanary is testdata/canary.yaml with every default applied.
func wantCanary() *Config {
	defaultHealth := Health{Path: "/", Interval: Duration(time.Second), Timeout: Duration(time.Second), HealthyThreshold: 1, UnhealthyThreshold: 2}
	return &Config{
		File:   filepath.Join("testdata", "canary.yaml"),
		Admin:  Admin{Listen: "127.0.0.1:9901"},
		Server: defaultServer(),
		AnalysisTemplates: []AnalysisTemplate{
			{
				Name: "success-rate",
				Metrics: []AnalysisMetric{
					{
						Name:                  "router-success",
						Provider:              MetricProvider{Builtin: &BuiltinProvider{Metric: "successRate", Window: Duration(10 * time.Second)}},
						Interval:              Duration(time.Second),
						SuccessCondition:      "result >= 0.99",
						ConsecutiveErrorLimit: ptr(4),
						MinSamples:            20,
						MinSamplesTimeout:     Duration(time.Minute),
					},
					{
						Name:                  "p99",
						Provider:              MetricProvider{Builtin: &BuiltinProvider{Metric: "latencyP99", Window: Duration(30 * time.Second)}},
						Interval:              Duration(5 * time.Second),
						Count:                 6,
						FailureCondition:      "isNaN(result) || result > 0.5",
						FailureLimit:          1,
						ConsecutiveErrorLimit: ptr(4),
						MinSamplesTimeout:     Duration(time.Minute),
						DryRun:                true,
					},
				},
			},
			{
				Name: "error-budget",
				Args: []AnalysisArg{{Name: "service"}, {Name: "threshold", Value: ptr("0.05")}},
				Metrics: []AnalysisMetric{
					{
						Name: "prom-errors",
						Provider: MetricProvider{Prometheus: &PrometheusProvider{
							Address: "http://127.0.0.1:9090",
							Query:   `sum(rate(errors_total{service="{{args.service}}",version="{{ args.canaryVersion }}"}[1m])) > {{args.threshold}}`,
							Timeout: Duration(5 * time.Second),
						}},
						Interval:              Duration(time.Second),
						InitialDelay:          Duration(10 * time.Second),
						SuccessCondition:      "default(result, 0) == 0",
						InconclusiveLimit:     2,
						ConsecutiveErrorLimit: ptr(0),
					},
					{
						Name: "checker",
						Provider: MetricProvider{Web: &WebProvider{
							URL:      "http://127.0.0.1:9000/check/{{args.app}}?v={{args.version}}",
							Method:   "POST",
							Headers:  map[string]string{"Authorization": "Bearer {{args.service}}"},
							Body:     `{"service": "{{args.service}}"}`,
							JSONPath: "$.data.ok",
							Timeout:  Duration(2 * time.Second),
						}},
						Interval:              Duration(time.Second),
						SuccessCondition:      "result == true",
						ConsecutiveErrorLimit: ptr(4),
					},
					{
						Name: "smoke",
						Provider: MetricProvider{Command: &CommandProvider{
							Command: []string{"./smoke.sh", "{{args.revision}}"},
							Timeout: Duration(30 * time.Second),
						}},
						Interval:              Duration(time.Second),
						Count:                 1,
						ConsecutiveErrorLimit: ptr(4),
					},
				},
			},
		},
		Notifications: []Notification{
			{Webhook: "https://hooks.slack.com/services/T000/B000/XXXX", Events: []string{"promoted", "aborted", "analysisFailed"}},
			{Webhook: "http://127.0.0.1:9999/events"},
		},
		Apps: []App{
			{
				Name:                  "shop",
				Listen:                "127.0.0.1:8080",
				PathPrefix:            "/",
				Version:               "v1",
				Target:                Target{Static: &StaticTarget{Upstreams: []string{"http://127.0.0.1:9001"}}},
				Health:                defaultHealth,
				DeployTimeout:         Duration(time.Minute),
				ProgressDeadline:      Duration(5 * time.Minute),
				ProgressDeadlineAbort: ptr(false),
				Upstream:              defaultUpstream(),
				Hooks: Hooks{
					BeforeInstall: []Hook{{Name: "migrate", Command: []string{"./migrate.sh", "up"}, Timeout: Duration(2 * time.Minute)}},
					AfterAllowTestTraffic: []Hook{{
						Name: "announce",
						Webhook: &Webhook{
							URL:     "https://hooks.example.com/cutover",
							Headers: map[string]string{"X-Token": "abc"},
							Timeout: Duration(10 * time.Second),
							Retries: 3,
						},
						Timeout: Duration(time.Minute),
					}},
					ConfirmTrafficIncrease: []Hook{{Command: []string{"./gate.sh"}, Timeout: Duration(time.Minute)}},
				},
				Strategy: Strategy{Canary: &Canary{
					Steps: []CanaryStep{
						{SetHeaderRoute: &RouteMatch{Name: "X-Canary", Value: "always"}},
						{SetCookieRoute: &RouteMatch{Name: "beta", Regex: "^(yes|1)$"}},
						{SetWeight: ptr(10)},
						{Pause: &Pause{Duration: Duration(30 * time.Second)}},
						{Analysis: &AnalysisRef{Templates: []string{"error-budget"}, Args: map[string]string{"service": "shop"}}},
						{SetWeight: ptr(50)},
						{Pause: &Pause{}},
					},
					Analysis:            &AnalysisRef{Templates: []string{"success-rate"}},
					StickySessions:      &StickySessions{Cookie: "cutover-slot"},
					RetryOnStable:       true,
					ScaleDownDelay:      Duration(time.Minute),
					AbortScaleDownDelay: Duration(30 * time.Second),
					DrainTimeout:        Duration(30 * time.Second),
				}},
			},
			{
				Name:                  "blog",
				Listen:                "127.0.0.1:8081",
				PathPrefix:            "/",
				Version:               "v1",
				Target:                Target{Static: &StaticTarget{Upstreams: []string{"http://127.0.0.1:9002"}}},
				Health:                defaultHealth,
				DeployTimeout:         Duration(time.Minute),
				ProgressDeadline:      Duration(10 * time.Minute),
				ProgressDeadlineAbort: ptr(true),
				Upstream:              defaultUpstream(),
				Strategy: Strategy{BlueGreen: &BlueGreen{
					AutoPromotion:  ptr(true),
					ScaleDownDelay: Duration(30 * time.Second),
					DrainTimeout:   Duration(30 * time.Second),
					BakeTime:       Duration(10 * time.Second),
					PrePromotionAnalysis: &AnalysisRef{
						Templates: []string{"success-rate", "error-budget"},
						Args:      map[string]string{"service": "blog", "threshold": "0.01"},
					},
					PostPromotionAnalysis: &AnalysisRef{Templates: []string{"success-rate"}},
				}},
			},
		},
	}
}

// asYAML shows a config in failure messages, where %+v would print
// pointers.
func asYAML(t *testing.T, v any) string {
	t.Helper()
	out, err := yaml.MarshalWithOptions(v, yaml.OmitEmpty())
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	return string(out)
}

func TestLoadCanaryConfigAppliesDefaultsAndRoundTrips(t *testing.T) {
	path := filepath.Join("testdata", "canary.yaml")
	got, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := wantCanary(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Load(%s):\n got:\n%s\nwant:\n%s", path, asYAML(t, got), asYAML(t, want))
	}
	out := asYAML(t, got)
	again, err := Parse(path, []byte(out))
	if err != nil {
		t.Fatalf("Parse of the marshalled config: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(again, got) {
		t.Errorf("marshal and parse changed the config:\n got:\n%s\nwant:\n%s", asYAML(t, again), out)
	}
	shop, blog := &got.Apps[0], &got.Apps[1]
	if shop.AbortOnProgressDeadline() || !blog.AbortOnProgressDeadline() {
		t.Errorf("AbortOnProgressDeadline() = %v for shop (progressDeadlineAbort: false), %v for blog (default); want false, true",
			shop.AbortOnProgressDeadline(), blog.AbortOnProgressDeadline())
	}
}

func TestReadmeBlueGreenConfigParsesUnchanged(t *testing.T) {
	path := filepath.Join("testdata", "readme-bluegreen.yaml")
	got, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		File:   path,
		Admin:  Admin{Listen: "127.0.0.1:9901", Token: "replace-with-openssl-rand-hex-16", Hosts: []string{}},
		Server: defaultServer(),
		Apps: []App{{
			Name:       "web",
			Listen:     "127.0.0.1:8080",
			Hosts:      []string{"web.example.com"},
			PathPrefix: "/",
			Version:    "v1",
			Target: Target{Process: &ProcessTarget{
				Command:   []string{"./app", "-addr", "127.0.0.1:${PORT}", "-version", "${VERSION}"},
				Replicas:  2,
				Env:       map[string]string{"LOG_LEVEL": "info"},
				Dir:       dir,
				StopGrace: Duration(10 * time.Second),
			}},
			Health: Health{
				Path:               "/health",
				Interval:           Duration(time.Second),
				Timeout:            Duration(time.Second),
				HealthyThreshold:   1,
				UnhealthyThreshold: 2,
			},
			Strategy: Strategy{BlueGreen: &BlueGreen{
				AutoPromotion:  ptr(true),
				PreviewListen:  "127.0.0.1:8081",
				ScaleDownDelay: Duration(30 * time.Second),
				DrainTimeout:   Duration(30 * time.Second),
				BakeTime:       Duration(10 * time.Second),
				Smoke:          []SmokeCheck{{Path: "/", ExpectStatus: 200}},
			}},
			DeployTimeout:         Duration(time.Minute),
			ProgressDeadline:      Duration(10 * time.Minute),
			ProgressDeadlineAbort: ptr(true),
			Upstream:              defaultUpstream(),
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Load(%s):\n got:\n%s\nwant:\n%s", path, asYAML(t, got), asYAML(t, want))
	}
	if a := &got.Apps[0]; !a.AutoPromotion() || !a.AbortOnProgressDeadline() {
		t.Errorf("AutoPromotion() = %v, AbortOnProgressDeadline() = %v; want both true", a.AutoPromotion(), a.AbortOnProgressDeadline())
	}
}

// minimalCanary is an app with a canary strategy whose body is indented
// below "canary:".
func minimalCanary(body string) string {
	return `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      canary:
` + body
}

// A key written without a value ("pause:") is the block with its
// defaults, never the same as leaving the key out.
func TestBlocksWrittenWithoutAValueCountAsGiven(t *testing.T) {
	c, err := Parse("cutover.yaml", []byte(minimalCanary(`        stickySessions:
        steps:
          - setWeight: 20
          - pause:
`)))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	cc := c.Apps[0].Strategy.Canary
	if cc == nil || c.Apps[0].Strategy.BlueGreen != nil {
		t.Fatalf("strategy = %+v, want only canary", c.Apps[0].Strategy)
	}
	if cc.StickySessions == nil || cc.StickySessions.Cookie != "cutover-slot" {
		t.Errorf("stickySessions = %+v, want the default cookie cutover-slot", cc.StickySessions)
	}
	if p := cc.Steps[1].Pause; p == nil || p.Duration != 0 {
		t.Errorf("steps[1].pause = %+v, want a pause without a duration", p)
	}

	src := `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      canary:
`
	ps := parseProblems(t, src)
	if got := ps.Error(); !strings.HasPrefix(got, "cutover.yaml:7:7: apps[0].strategy.canary.steps: no steps") {
		t.Errorf("an empty canary: block gave\n%s\nwant it read as a canary without steps", got)
	}
}

func TestCanaryLeavesBlueGreenUnset(t *testing.T) {
	c, err := Parse("cutover.yaml", []byte(minimalCanary("        steps: [{setWeight: 100}]\n")))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &Canary{
		Steps:               []CanaryStep{{SetWeight: ptr(100)}},
		ScaleDownDelay:      Duration(30 * time.Second),
		AbortScaleDownDelay: Duration(30 * time.Second),
		DrainTimeout:        Duration(30 * time.Second),
	}
	if s := c.Apps[0].Strategy; s.BlueGreen != nil || !reflect.DeepEqual(s.Canary, want) {
		t.Errorf("strategy:\n%s\nwant only the canary with its defaults:\n%s", asYAML(t, s), asYAML(t, want))
	}
}

func TestConditionsMayTreatResultAsAnyType(t *testing.T) {
	for _, cond := range []string{
		"result >= 0.99",
		"result == true",
		`result == "ok"`,
		"result[0] >= 0.95 && len(result) > 2",
		"result.data.ready",
		"all(result, # < 0.5)",
		"isNaN(result) || result < 0.1",
		"default(result, 0) > 10",
		"result == nil",
	} {
		t.Run(cond, func(t *testing.T) {
			src := `analysisTemplates:
  - name: check
    metrics:
      - name: m
        provider: {builtin: {metric: successRate}}
        successCondition: '` + cond + `'
        count: 1
` + minimalCanary("        steps: [{analysis: {templates: [check]}}]\n")
			if _, err := Parse("cutover.yaml", []byte(src)); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

func TestAbortOnProgressDeadlineIsOnUnlessTurnedOff(t *testing.T) {
	tests := []struct {
		name  string
		abort *bool
		want  bool
	}{
		{"unset", nil, true},
		{"true", ptr(true), true},
		{"false", ptr(false), false},
	}
	for _, tt := range tests {
		a := App{ProgressDeadlineAbort: tt.abort}
		if got := a.AbortOnProgressDeadline(); got != tt.want {
			t.Errorf("%s: AbortOnProgressDeadline() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseFollowsMergeKeysInsideMaps(t *testing.T) {
	src := `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    hooks: &hooks
      afterInstall:
        - webhook:
            url: https://hooks.example.com/cutover
            headers: &auth {Authorization: Bearer abc}
      rollback:
        - webhook:
            url: https://hooks.example.com/rollback
            headers: {<<: *auth, X-Reason: rollback}
  - name: api
    listen: 127.0.0.1:8081
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9001"]}}
    hooks: *hooks
`
	c, err := Parse("cutover.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	api, _ := c.App("api")
	want := map[string]string{"Authorization": "Bearer abc", "X-Reason": "rollback"}
	if len(api.Hooks.Rollback) != 1 || !reflect.DeepEqual(api.Hooks.Rollback[0].Webhook.Headers, want) {
		t.Errorf("api's rollback hooks:\n%s\nwant one webhook with headers %v", asYAML(t, api.Hooks.Rollback), want)
	}
}
