package config

import (
	"slices"
	"strings"
	"testing"
)

// A value of the wrong type must not hide the problems that only the
// checks after decoding find: one run of validate lists them all.
func TestParseReportsTypeErrorsAndSemanticProblemsInOneRun(t *testing.T) {
	src := `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    deployTimeout: 0s
    target:
      static: {upstreams: ["ftp://files"]}
    health:
      interval: 1x
      path: up
`
	want := []string{
		"cutover.yaml:5:20: apps[0].deployTimeout: 0s is not positive",
		`cutover.yaml:7:28: apps[0].target.static.upstreams[0]: "ftp://files" is not an absolute http(s) URL`,
		`cutover.yaml:9:17: apps[0].health.interval: "1x" is not a duration`,
		`cutover.yaml:10:13: apps[0].health.path: "up" does not start with "/"`,
	}
	wantProblems(t, parseProblems(t, src), want)
}

// A field whose value was of the wrong type is reported once: the checks
// after decoding do not add "missing" for the value they never saw.
func TestParseReportsAWronglyTypedRequiredFieldOnce(t *testing.T) {
	src := `apps:
  - name: [web]
    listen: 127.0.0.1:8080
    version: {v: 1}
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`
	ps := parseProblems(t, src)
	if len(ps) != 2 {
		t.Fatalf("got %d problems, want 2 (name and version, once each):\n%v", len(ps), ps)
	}
	for i, field := range []string{"apps[0].name: expected text", "apps[0].version: expected text"} {
		if !strings.Contains(ps[i].Message, field) {
			t.Errorf("problem %d: %s; want %q", i, ps[i], field)
		}
	}
}

// YAML allows ':' inside a plain scalar when no space follows it, in flow
// collections too: an unquoted URL or host:port in a flow list nested in a
// flow mapping is one string, as every YAML 1.2 parser reads it.
func TestParseAcceptsUnquotedColonsInNestedFlowCollections(t *testing.T) {
	src := `admin: {listen: 127.0.0.1:9901}
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: [http://127.0.0.1:8080, http://localhost:8081/base]}}
  - name: api
    listen: 127.0.0.1:8081
    version: v1
    target: {process: {command: [./server, -addr, 127.0.0.1:9000, -x, "a: b"]}}
`
	c, err := Parse("cutover.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	web, _ := c.App("web")
	if got, want := web.Target.Static.Upstreams, []string{"http://127.0.0.1:8080", "http://localhost:8081/base"}; !slices.Equal(got, want) {
		t.Errorf("upstreams = %q, want %q", got, want)
	}
	api, _ := c.App("api")
	if got, want := api.Target.Process.Command, []string{"./server", "-addr", "127.0.0.1:9000", "-x", "a: b"}; !slices.Equal(got, want) {
		t.Errorf("command = %q, want %q", got, want)
	}
}

// What validate suggests must itself be valid.
func TestMissingTargetHintIsAValidTarget(t *testing.T) {
	src := `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
`
	ps := parseProblems(t, src)
	if len(ps) != 1 || !strings.Contains(ps[0].Hint, "target: ") {
		t.Fatalf("want one problem with a target hint, got:\n%v", ps)
	}
	for _, example := range strings.Split(strings.TrimPrefix(ps[0].Hint, "write "), " or ") {
		fixed := src + "    " + example + "\n"
		if _, err := Parse("cutover.yaml", []byte(fixed)); err != nil {
			t.Errorf("the hint's %q is rejected:\n%v", example, err)
		}
	}
}

// Inside a flow list a bracket ends a plain value, as YAML says, so
// ${PORT} there needs quotes; the problem says so.
func TestUnquotedPortVariableInAFlowListAsksForQuotes(t *testing.T) {
	src := `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target:
      process:
        command: [./server, -addr, 127.0.0.1:${PORT}]
`
	ps := parseProblems(t, src)
	if len(ps) != 1 || ps[0].Line != 7 || !strings.Contains(ps[0].Hint, `"127.0.0.1:${PORT}"`) {
		t.Fatalf("want one problem on line 7 whose hint shows the value quoted, got:\n%v", ps)
	}
}
