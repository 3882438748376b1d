package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// fileWithKubeStore is a cutover.yaml with no apps of its own but one,
// allowed because apps may come from CutoverApps.
const fileWithKubeStore = `admin: {listen: "127.0.0.1:9901"}
store: {kubernetes: {namespace: cutover}}
apps:
  - name: api
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`

func TestParseAllowsNoAppsWithTheKubernetesStore(t *testing.T) {
	c, err := Parse("cutover.yaml", []byte("store: {kubernetes: {}}\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(c.Apps) != 0 {
		t.Errorf("apps = %v, want none", c.Apps)
	}
	ps := parseProblems(t, "admin: {listen: 127.0.0.1:9901}\n")
	if got := ps.Error(); !strings.Contains(got, "apps: no apps are defined") || !strings.Contains(got, "CutoverApp") {
		t.Errorf("without the kubernetes store: %s; want no apps defined, and a hint at CutoverApps", got)
	}
}

func TestWithAppAddsADeclaredAppWithTheFilesDefaults(t *testing.T) {
	base, err := Parse("cutover.yaml", []byte(fileWithKubeStore))
	if err != nil {
		t.Fatal(err)
	}
	// JSON, as the API server gives an object's field.
	entry := `{"listen":"127.0.0.1:8081","version":"v7","target":{"static":{"upstreams":["http://127.0.0.1:9001"]}},"strategy":{"blueGreen":{"autoPromotion":false}}}`
	decl := Declaration{Source: "CutoverApp cutover/web", Path: "spec.app", Name: "web", Entry: []byte(entry)}
	c, err := base.WithApp(decl)
	if err != nil {
		t.Fatalf("WithApp: %v", err)
	}
	if len(base.Apps) != 1 {
		t.Errorf("WithApp changed the config it was called on: %d apps", len(base.Apps))
	}
	web, ok := c.App("web")
	if !ok || len(c.Apps) != 2 {
		t.Fatalf("apps = %+v, want api and web", c.Apps)
	}
	if web.Declared == nil || web.Declared.Source != decl.Source {
		t.Errorf("Declared = %+v, want %s", web.Declared, decl.Source)
	}
	if web.Version != "v7" || web.PathPrefix != "/" || web.DeployTimeout.D() != time.Minute || web.Health.Interval.D() != time.Second {
		t.Errorf("web = version %s, pathPrefix %s, deployTimeout %s, health interval %s; want v7 and the defaults /, 60s, 1s",
			web.Version, web.PathPrefix, web.DeployTimeout, web.Health.Interval)
	}
	if web.AutoPromotion() || web.Strategy.BlueGreen.ScaleDownDelay != defaultScaleDownDelay {
		t.Errorf("blueGreen = %+v, want autoPromotion false and the default scaleDownDelay", web.Strategy.BlueGreen)
	}
}

func TestWithAppReportsProblemsAtTheirPathInTheObject(t *testing.T) {
	base, err := Parse("cutover.yaml", []byte(fileWithKubeStore))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, entry string
		want        []string
	}{
		{
			name:  "unknown field, with the one meant",
			entry: "listen: 127.0.0.1:8081\nversion: v1\ntarget: {static: {upstreams: [\"http://127.0.0.1:9001\"]}}\nhealth: {intervall: 1s}\n",
			want:  []string{`CutoverApp cutover/web: spec.app.health: unknown field "intervall"; did you mean ` + "`interval`"},
		},
		{
			name:  "wrong type, in JSON",
			entry: `{"listen":"127.0.0.1:8081","version":"v1","target":{"kubernetes":{"replicas":"two","template":{"spec":{"containers":[{"name":"w","image":"w:${VERSION}","ports":[{"containerPort":8080}]}]}}}}}`,
			want:  []string{`CutoverApp cutover/web: spec.app.target.kubernetes.replicas: "two" is not a whole number; write a number without quotes`},
		},
		{
			name:  "missing fields",
			entry: "{}",
			want: []string{
				"CutoverApp cutover/web: spec.app.version: missing; write the version label to deploy first",
				"CutoverApp cutover/web: spec.app.listen: missing",
				"CutoverApp cutover/web: spec.app.target: missing; set process, static or kubernetes",
			},
		},
		{
			name:  "a name of its own",
			entry: "name: other\nlisten: 127.0.0.1:8081\nversion: v1\ntarget: {static: {upstreams: [\"http://127.0.0.1:9001\"]}}\n",
			want:  []string{`CutoverApp cutover/web: spec.app.name: an app declared here takes its name from where it is declared; remove it: the app's name is "web"`},
		},
		{
			name:  "the listener of the file's app",
			entry: "listen: 127.0.0.1:8080\nversion: v1\ntarget: {static: {upstreams: [\"http://127.0.0.1:9001\"]}}\n",
			want: []string{`CutoverApp cutover/web: spec.app.listen: 127.0.0.1:8080 is already used by app "api" (cutover.yaml apps[0].listen), ` +
				`which answers every host there; give this app its own listen address`},
		},
		{
			name:  "the admin listener",
			entry: "listen: 127.0.0.1:9901\nversion: v1\ntarget: {static: {upstreams: [\"http://127.0.0.1:9001\"]}}\n",
			want:  []string{`spec.app.listen: 127.0.0.1:9901 is already used by the admin API (cutover.yaml admin.listen); choose another port`},
		},
		{
			name:  "YAML that does not parse",
			entry: "listen: [127.0.0.1:8081\n",
			want:  []string{"CutoverApp cutover/web: "},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := base.WithApp(Declaration{Source: "CutoverApp cutover/web", Path: "spec.app", Name: "web", Entry: []byte(tc.entry)})
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("WithApp: %v, want Problems", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(ps.Error(), w) {
					t.Errorf("problems:\n%s\nwant one with %q", ps.Error(), w)
				}
			}
			for _, p := range ps {
				if p.Line != 0 || p.File != "CutoverApp cutover/web" {
					t.Errorf("problem %+v: want it of CutoverApp cutover/web, without a line", p)
				}
			}
		})
	}
}

func TestWithAppRefusesANameTakenByTheFileOrAnotherDeclaredApp(t *testing.T) {
	base, err := Parse("cutover.yaml", []byte(fileWithKubeStore))
	if err != nil {
		t.Fatal(err)
	}
	entry := func(listen string) []byte {
		return []byte("listen: " + listen + "\nversion: v1\ntarget: {static: {upstreams: [\"http://127.0.0.1:9001\"]}}\n")
	}
	_, err = base.WithApp(Declaration{Source: "CutoverApp cutover/api", Path: "spec.app", Name: "api", Entry: entry("127.0.0.1:8081")})
	if want := `CutoverApp cutover/api: spec.app: app "api" is already defined in cutover.yaml; rename one of them, or remove the app from cutover.yaml`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("WithApp of api: %v, want %q", err, want)
	}
	c, err := base.WithApp(Declaration{Source: "CutoverApp cutover/web", Path: "spec.app", Name: "web", Entry: entry("127.0.0.1:8081")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.WithApp(Declaration{Source: "CutoverApp cutover/web2", Path: "spec.app", Name: "web2", Entry: entry("127.0.0.1:8081")})
	if want := `spec.app.listen: 127.0.0.1:8081 is already used by app "web" (CutoverApp cutover/web spec.app.listen)`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("WithApp of web2 on web's listener: %v, want %q", err, want)
	}
}
