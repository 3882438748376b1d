package config

import (
	"slices"
	"strings"
	"testing"
)

func TestParseMirrorRoutes(t *testing.T) {
	c, err := Parse("cutover.yaml", []byte(minimalApp("canary", `        steps:
          - setWeight: 0
          - setMirrorRoute: {percent: 50, header: {name: X-Tenant, value: beta}, methods: [GET, POST]}
          - pause: {duration: 1m}
          - setMirrorRoute: {percent: 0}
`)))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	steps := c.Apps[0].Strategy.Canary.Steps
	m := steps[1].SetMirrorRoute
	if m == nil || m.Percent != 50 || m.Header == nil || m.Header.Name != "X-Tenant" || m.Header.Value != "beta" ||
		!slices.Equal(m.Methods, []string{"GET", "POST"}) {
		t.Errorf("steps[1].setMirrorRoute = %+v", m)
	}
	if m := steps[3].SetMirrorRoute; m == nil || m.Percent != 0 {
		t.Errorf("steps[3].setMirrorRoute = %+v, want percent 0", m)
	}

	c, err = Parse("cutover.yaml", []byte(minimalApp("blueGreen", "        prePromotionMirror: {percent: 100}\n")))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if m := c.Apps[0].Strategy.BlueGreen.PrePromotionMirror; m == nil || m.Percent != 100 {
		t.Errorf("prePromotionMirror = %+v, want percent 100", m)
	}
}

func TestParseMirrorRouteProblems(t *testing.T) {
	for _, tt := range []struct {
		name, strategy, body string
		prefix, phrase       string
	}{
		{"percent missing", "canary", "        steps: [{setMirrorRoute: {methods: [GET]}}]\n",
			"cutover.yaml:8:", "steps[0].setMirrorRoute.percent: missing; write the share of requests to copy"},
		{"percent out of range", "canary", "        steps: [{setMirrorRoute: {percent: 101}}]\n",
			"cutover.yaml:8:", "setMirrorRoute.percent: 101 is out of range; use a percentage from 0 to 100"},
		{"blue-green mirror copying nothing", "blueGreen", "        prePromotionMirror: {percent: 0}\n",
			"cutover.yaml:8:", "prePromotionMirror.percent: 0 is out of range; use a percentage from 1 to 100"},
		{"header and cookie", "canary", "        steps: [{setMirrorRoute: {percent: 5, header: {name: a, value: b}, cookie: {name: c, value: d}}}]\n",
			"cutover.yaml:8:", "both header and cookie are set"},
		{"header without value", "canary", "        steps: [{setMirrorRoute: {percent: 5, header: {name: X-Tenant}}}]\n",
			"cutover.yaml:8:", "setMirrorRoute.header: no value, prefix or regex to match"},
		{"bad method", "canary", "        steps: [{setMirrorRoute: {percent: 5, methods: [\"GE T\"]}}]\n",
			"cutover.yaml:8:", `setMirrorRoute.methods[0]: "GE T" is not an HTTP method`},
		{"two actions", "canary", "        steps: [{setWeight: 5, setMirrorRoute: {percent: 5}}]\n",
			"cutover.yaml:8:", "the step sets setWeight and setMirrorRoute"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantOneProblem(t, minimalApp(tt.strategy, tt.body), tt.prefix, tt.phrase)
		})
	}
}

func TestParseMirrorRouteNeedsTheRouter(t *testing.T) {
	for _, tt := range []struct {
		name, strategy, prefix, field string
	}{
		{"canary", "      canary: {steps: [{setWeight: 0}, {setMirrorRoute: {percent: 20}}]}\n", "cutover.yaml:20:", "strategy.canary.steps[1].setMirrorRoute"},
		{"blue-green", "      blueGreen: {prePromotionMirror: {percent: 20}}\n", "cutover.yaml:20:", "strategy.blueGreen.prePromotionMirror"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := kubeApp + "    strategy:\n" + tt.strategy
			got := wantOneProblem(t, src, tt.prefix, "traffic.service cannot mirror requests: they do not pass through cutover")
			if !strings.Contains(got, tt.field) || !strings.Contains(got, "traffic: {router: {}}") {
				t.Errorf("problem %q does not name %s and traffic: {router: {}}", got, tt.field)
			}
		})
	}
}

// The README's mirroring example is what users copy: it must validate as
// it stands.
func TestReadmeMirrorExampleIsValid(t *testing.T) {
	c := readmeExample(t, "setMirrorRoute:")
	if m := c.Apps[0].Strategy.Canary.Steps[1].SetMirrorRoute; m == nil || m.Percent != 50 {
		t.Errorf("the example's canary mirror is %+v, want 50%%", m)
	}
	if m := c.Apps[1].Strategy.BlueGreen.PrePromotionMirror; m == nil || m.Header == nil {
		t.Errorf("the example's prePromotionMirror is %+v, want one with a header match", m)
	}
}
