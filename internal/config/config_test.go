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

// wantFull is testdata/full.yaml with every default applied; dir is the
// absolute testdata directory.
func wantFull(dir string) *Config {
	return &Config{
		File:  filepath.Join("testdata", "full.yaml"),
		Admin: Admin{Listen: "0.0.0.0:9901", Token: "s3cret-token"},
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
					Smoke: []SmokeCheck{
						{Path: "/healthz", ExpectStatus: 204},
						{Path: "/", ExpectStatus: 200},
					},
				}},
				DeployTimeout: Duration(2 * time.Minute),
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
				}},
				DeployTimeout: Duration(time.Minute),
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
		}},
		DeployTimeout: Duration(60 * time.Second),
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
    strategy: {blueGreen: {scaleDownDelay: 0s, drainTimeout: 0s}}
`
	c, err := Parse("/srv/cutover.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	a := c.Apps[0]
	if a.Target.Process.StopGrace != 0 || a.Strategy.BlueGreen.ScaleDownDelay != 0 || a.Strategy.BlueGreen.DrainTimeout != 0 {
		t.Errorf("written zeros were replaced by defaults: stopGrace %s, scaleDownDelay %s, drainTimeout %s",
			a.Target.Process.StopGrace, a.Strategy.BlueGreen.ScaleDownDelay, a.Strategy.BlueGreen.DrainTimeout)
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
