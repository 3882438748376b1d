package config

import (
	"errors"
	"strings"
	"testing"
)

// parseProblems parses src as cutover.yaml and returns its problems,
// failing the test if it is valid or fails for another reason.
func parseProblems(t *testing.T, src string) Problems {
	t.Helper()
	c, err := Parse("cutover.yaml", []byte(src))
	if err == nil {
		t.Fatalf("Parse accepted an invalid config: %+v", c)
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Parse error is %T, want Problems: %v", err, err)
	}
	return ps
}

func TestParseReportsEachInvalidConfigAtItsLine(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		prefix string // "FILE:LINE:" of the one problem expected
		phrase string // part of its message or hint
	}{
		{
			name: "unknown top-level field lists the allowed ones",
			src: `admin: {listen: "127.0.0.1:9901"}
appz: []
`,
			prefix: "cutover.yaml:2:1:",
			phrase: `unknown field "appz"; did you mean ` + "`apps`",
		},
		{
			name: "misspelled nested field suggests the closest",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    health:
      healthyTreshold: 2
`,
			prefix: "cutover.yaml:7:7:",
			phrase: "apps[0].health: unknown field \"healthyTreshold\"; did you mean `healthyThreshold`?",
		},
		{
			name: "unknown field far from any name lists every field",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target:
      static: {upstreams: ["http://127.0.0.1:9000"]}
      nomad: {}
`,
			prefix: "cutover.yaml:7:7:",
			phrase: "allowed fields here: process, static, kubernetes",
		},
		{
			name: "malformed duration",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    health:
      interval: 1x
`,
			prefix: "cutover.yaml:7:17:",
			phrase: `apps[0].health.interval: "1x" is not a duration; write a Go duration`,
		},
		{
			name: "plain number as a duration asks for a unit",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    deployTimeout: 30
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:5:20:",
			phrase: `write "30s"`,
		},
		{
			name: "text where a number belongs",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target:
      process:
        command: [./web]
        replicas: two
`,
			prefix: "cutover.yaml:8:19:",
			phrase: `apps[0].target.process.replicas: "two" is not a whole number`,
		},
		{
			name: "single command string where a list belongs",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target:
      process:
        command: ./web --port 8080
`,
			prefix: "cutover.yaml:7:18:",
			phrase: "expected a list",
		},
		{
			name: "duplicate app name points at the first",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
  - name: web
    listen: 127.0.0.1:8081
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:6:11:",
			phrase: `app name "web" is already used by apps[0] (cutover.yaml:2:11)`,
		},
		{
			name: "app name that is not a DNS label",
			src: `apps:
  - name: Web_App
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:2:11:",
			phrase: "is not a valid app name",
		},
		{
			name: "two apps on one port when one names no hosts",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
  - name: api
    listen: 127.0.0.1:8080
    hosts: [api.example.com]
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9001"]}}
`,
			prefix: "cutover.yaml:7:13:",
			phrase: `127.0.0.1:8080 is already used by app "web" (cutover.yaml:3:13), which answers every host there`,
		},
		{
			name: "every-interface address clashes with a host on the same port",
			src: `apps:
  - name: web
    listen: ":8080"
    hosts: [example.com]
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
  - name: api
    listen: 127.0.0.1:8080
    hosts: [Example.com]
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9001"]}}
`,
			prefix: "cutover.yaml:8:13:",
			phrase: `which also answers host "example.com"`,
		},
		{
			name: "app listener on the default admin address",
			src: `apps:
  - name: web
    listen: 127.0.0.1:9901
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:3:13:",
			phrase: "127.0.0.1:9901 is already used by the admin API (by default)",
		},
		{
			name: "app listener on another app's preview listener",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      blueGreen:
        previewListen: 127.0.0.1:8081
  - name: api
    listen: 127.0.0.1:8081
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9001"]}}
`,
			prefix: "cutover.yaml:10:13:",
			phrase: `is already used by the preview of app "web" (cutover.yaml:8:24)`,
		},
		{
			name: "preview listener that is not host:port",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      blueGreen:
        previewListen: "8081"
`,
			prefix: "cutover.yaml:8:24:",
			phrase: `"8081" is not host:port`,
		},
		{
			name: "listen port out of range",
			src: `apps:
  - name: web
    listen: 127.0.0.1:70000
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:3:13:",
			phrase: "port 70000",
		},
		{
			name: "process without a command",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target:
      process:
        replicas: 2
`,
			prefix: "cutover.yaml:6:7:",
			phrase: "apps[0].target.process.command: missing",
		},
		{
			name: "static target without upstreams",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target:
      static:
        upstreams: []
`,
			prefix: "cutover.yaml:7:9:",
			phrase: "no upstreams",
		},
		{
			name: "upstream that is not an absolute URL",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target:
      static:
        upstreams:
          - http://127.0.0.1:9000
          - 127.0.0.1:9001
`,
			prefix: "cutover.yaml:9:13:",
			phrase: `apps[0].target.static.upstreams[1]: "127.0.0.1:9001" is not an absolute http(s) URL`,
		},
		{
			name: "both process and static",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target:
      process: {command: [./web]}
      static: {upstreams: ["http://127.0.0.1:9000"]}
`,
			prefix: "cutover.yaml:5:5:",
			phrase: "both process and static are set; keep exactly one",
		},
		{
			name: "zero replicas written out",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target:
      process:
        command: [./web]
        replicas: 0
`,
			prefix: "cutover.yaml:8:19:",
			phrase: "0 is out of range; use 1 to 64 replicas",
		},
		{
			name: "admin on every interface without a token",
			src: `admin:
  listen: ":9901"
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:2:11:",
			phrase: "admin.token: required",
		},
		{
			name: "health path without a leading slash",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    health: {path: healthz}
`,
			prefix: "cutover.yaml:6:20:",
			phrase: `apps[0].health.path: "healthz" does not start with "/"`,
		},
		{
			name: "smoke status outside HTTP's range",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      blueGreen:
        smoke:
          - expectStatus: 700
`,
			prefix: "cutover.yaml:9:27:",
			phrase: "smoke[0].expectStatus: 700 is not an HTTP status code",
		},
		{
			name: "negative drain timeout",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy: {blueGreen: {drainTimeout: -5s}}
`,
			prefix: "cutover.yaml:6:42:",
			phrase: "-5s is negative",
		},
		{
			name: "negative bake time",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy: {blueGreen: {bakeTime: -1s}}
`,
			prefix: "cutover.yaml:6:38:",
			phrase: "apps[0].strategy.blueGreen.bakeTime: -1s is negative",
		},
		{
			name: "missing version points at the app",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:2:5:",
			phrase: "apps[0].version: missing",
		},
		{
			name: "version that YAML would read as a number",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: 1.10
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:4:14:",
			phrase: `quote it: write "1.10"`,
		},
		{
			name: "deploy timeout written as zero",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    deployTimeout: 0s
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:5:20:",
			phrase: "apps[0].deployTimeout: 0s is not positive",
		},
		{
			name: "health threshold written as zero",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    health:
      unhealthyThreshold: 0
`,
			prefix: "cutover.yaml:7:27:",
			phrase: "unhealthyThreshold: 0 is less than 1",
		},
		{
			name: "missing listen",
			src: `apps:
  - name: web
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:2:5:",
			phrase: "apps[0].listen: missing",
		},
		{
			name: "PORT in env is cutover's to set",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target:
      process:
        command: [./web]
        env: {PORT: "9000"}
`,
			prefix: "cutover.yaml:8:21:",
			phrase: "PORT is set by cutover",
		},
		{
			name: "root that is not a mapping",
			src: `- name: web
`,
			prefix: "cutover.yaml:1:1:",
			phrase: "expected a mapping with fields admin, apps, analysisTemplates, notifications, server, acme, store, found a list",
		},
		{
			name: "more than one YAML document",
			src: `apps: []
---
apps: []
`,
			prefix: "cutover.yaml:2:1:",
			phrase: "more than one YAML document",
		},
		{
			name: "host entry written as a URL",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    hosts: ["https://example.com/"]
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:4:13:",
			phrase: `apps[0].hosts[0]: "https://example.com/" is not a host name`,
		},
		{
			name: "admin listen without a port",
			src: `admin:
  listen: localhost
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:2:11:",
			phrase: `admin.listen: "localhost" is not host:port`,
		},
		{
			name: "alias without an anchor",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: *v
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:4:14:",
			phrase: "alias *v has no anchor",
		},
		{
			name: "mapping that merges itself",
			src: `apps:
  - &web
    name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    <<: *web
`,
			prefix: "cutover.yaml:3:5:",
			phrase: "pulls in the mapping that contains it",
		},
		{
			name: "no apps at all",
			src: `admin:
  listen: 127.0.0.1:9901
`,
			prefix: "cutover.yaml:1:1:",
			phrase: "apps: no apps are defined",
		},
		{
			name: "YAML syntax error",
			src: `apps:
  - name: web
    listen: [127.0.0.1:8080
    version: v1
`,
			prefix: "cutover.yaml:4:5:",
			phrase: "fix the YAML",
		},
		{
			name: "duplicate key",
			src: `apps:
  - name: web
    name: api
`,
			prefix: "cutover.yaml:3:5:",
			phrase: `"name" already defined at [2:5]; keep only one`,
		},
		{
			name: "both blueGreen and canary",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      blueGreen: {}
      canary: {steps: [{setWeight: 50}]}
`,
			prefix: "cutover.yaml:6:5:",
			phrase: "apps[0].strategy: both blueGreen and canary are set; keep exactly one",
		},
		{
			name: "canary without steps shows a step list",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      canary:
        steps: []
`,
			prefix: "cutover.yaml:8:9:",
			phrase: "canary.steps: no steps; list what to do in order, such as steps: [{setWeight: 20}",
		},
		{
			name: "canary step with two actions",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      canary:
        steps:
          - setWeight: 20
            pause: {duration: 1m}
`,
			prefix: "cutover.yaml:9:13:",
			phrase: "steps[0]: the step sets setWeight and pause; a step does exactly one thing",
		},
		{
			name: "canary step with no action",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      canary:
        steps:
          - setWeight: 20
          - {}
`,
			prefix: "cutover.yaml:10:13:",
			phrase: "steps[1]: the step does nothing",
		},
		{
			name: "misspelled canary step field",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      canary:
        steps:
          - setWieght: 20
`,
			prefix: "cutover.yaml:9:13:",
			phrase: "did you mean `setWeight`?",
		},
		{
			name: "weight above 100",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      canary:
        steps:
          - setWeight: 150
`,
			prefix: "cutover.yaml:9:24:",
			phrase: "steps[0].setWeight: 150 is out of range; use a percentage from 0 to 100",
		},
		{
			name: "weight written as a percentage string",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      canary:
        steps:
          - setWeight: 20%
`,
			prefix: "cutover.yaml:9:24:",
			phrase: `steps[0].setWeight: "20%" is not a whole number`,
		},
		{
			name: "negative pause",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      canary:
        steps:
          - pause: {duration: -1m}
`,
			prefix: "cutover.yaml:9:31:",
			phrase: "steps[0].pause.duration: -1m0s is negative",
		},
		{
			name: "header route without a name",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      canary:
        steps:
          - setHeaderRoute: {value: "on"}
`,
			prefix: "cutover.yaml:9:13:",
			phrase: "steps[0].setHeaderRoute.name: missing; write the header's name",
		},
		{
			name: "cookie route with both value and prefix",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      canary:
        steps:
          - setCookieRoute:
              name: beta
              value: "yes"
              prefix: y
`,
			prefix: "cutover.yaml:9:13:",
			phrase: "setCookieRoute: value and prefix are set; keep exactly one of value, prefix and regex",
		},
		{
			name: "route regex that does not compile",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      canary:
        steps:
          - setHeaderRoute: {name: X-Canary, regex: "(beta"}
`,
			prefix: "cutover.yaml:9:53:",
			phrase: `setHeaderRoute.regex: "(beta" does not compile: error parsing regexp: missing closing )`,
		},
		{
			name: "analysis of an undefined template suggests the closest",
			src: `analysisTemplates:
  - name: success-rate
    metrics:
      - name: ok
        provider: {builtin: {metric: successRate}}
        successCondition: result >= 0.99
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      canary:
        analysis: {templates: [sucess-rate]}
        steps: [{setWeight: 50}]
`,
			prefix: "cutover.yaml:14:32:",
			phrase: "canary.analysis.templates[0]: analysis template \"sucess-rate\" is not defined; did you mean `success-rate`? (defined templates: success-rate)",
		},
		{
			name: "analysis without templates",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      blueGreen:
        prePromotionAnalysis:
          templates: []
`,
			prefix: "cutover.yaml:9:11:",
			phrase: "prePromotionAnalysis.templates: no templates",
		},
		{
			name: "analysis that leaves out a required argument",
			src: `analysisTemplates:
  - name: errors
    args: [{name: service}, {name: stable, value: v1}]
    metrics:
      - name: prom
        provider:
          prometheus: {address: "http://127.0.0.1:9090", query: "errors{service='{{args.service}}'}"}
        successCondition: result < 1
        count: 3
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      blueGreen:
        postPromotionAnalysis: {templates: [errors]}
`,
			prefix: "cutover.yaml:17:45:",
			phrase: `template "errors" requires argument "service"; pass it, such as args: {service: ...}`,
		},
		{
			name: "analysis passing an argument no template declares",
			src: `analysisTemplates:
  - name: errors
    args: [{name: service}]
    metrics:
      - name: prom
        provider:
          prometheus: {address: "http://127.0.0.1:9090", query: "errors{service='{{args.service}}'}"}
        successCondition: result < 1
        count: 3
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    strategy:
      canary:
        steps:
          - analysis:
              templates: [errors]
              args: {service: web, sevrice: web}
`,
			prefix: "cutover.yaml:20:45:",
			phrase: "analysis.args.sevrice: no template in errors declares argument \"sevrice\"; did you mean `service`?",
		},
		{
			name: "template name that is not a DNS label",
			src: `analysisTemplates:
  - name: Success_Rate
    metrics:
      - name: ok
        provider: {builtin: {metric: successRate}}
        successCondition: result >= 0.99
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:2:11:",
			phrase: `analysisTemplates[0].name: "Success_Rate" is not a valid template name`,
		},
		{
			name: "duplicate template name points at the first",
			src: `analysisTemplates:
  - name: ok-rate
    metrics: [{name: ok, provider: {builtin: {metric: successRate}}, successCondition: result > 0.9}]
  - name: ok-rate
    metrics: [{name: ok, provider: {builtin: {metric: errorRate}}, successCondition: result < 0.1}]
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:4:11:",
			phrase: `template name "ok-rate" is already used by analysisTemplates[0] (cutover.yaml:2:11)`,
		},
		{
			name: "template without metrics",
			src: `analysisTemplates:
  - name: empty
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:2:5:",
			phrase: "analysisTemplates[0].metrics: no metrics",
		},
		{
			name: "duplicate metric name within a template",
			src: `analysisTemplates:
  - name: rates
    metrics:
      - name: rate
        provider: {builtin: {metric: successRate}}
        successCondition: result > 0.9
      - name: rate
        provider: {builtin: {metric: errorRate}}
        successCondition: result < 0.1
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:7:15:",
			phrase: `metrics[1].name: metric name "rate" is already used by analysisTemplates[0].metrics[0] (cutover.yaml:4:15)`,
		},
		{
			name: "metric with two providers",
			src: `analysisTemplates:
  - name: rates
    metrics:
      - name: rate
        provider:
          builtin: {metric: successRate}
          command: {command: [./check.sh]}
        successCondition: result > 0.9
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:5:9:",
			phrase: "metrics[0].provider: builtin and command are set; keep exactly one",
		},
		{
			name: "unknown builtin metric suggests the closest",
			src: `analysisTemplates:
  - name: rates
    metrics:
      - name: rate
        provider: {builtin: {metric: sucessRate}}
        successCondition: result > 0.9
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:5:38:",
			phrase: "\"sucessRate\" is not a builtin metric; did you mean `successRate`?",
		},
		{
			name: "prometheus address without a scheme",
			src: `analysisTemplates:
  - name: rates
    metrics:
      - name: rate
        provider:
          prometheus: {address: "127.0.0.1:9090", query: up}
        successCondition: result == 1
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:6:33:",
			phrase: `prometheus.address: "127.0.0.1:9090" is not an absolute http(s) URL`,
		},
		{
			name: "web url that is relative once its arguments are filled in",
			src: `analysisTemplates:
  - name: rates
    metrics:
      - name: rate
        provider:
          web: {url: "{{args.app}}/status"}
        successCondition: result == 1
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:6:22:",
			phrase: `web.url: "{{args.app}}/status" is not an absolute http(s) URL`,
		},
		{
			name: "web jsonPath not rooted at $",
			src: `analysisTemplates:
  - name: rates
    metrics:
      - name: rate
        provider:
          web:
            url: "http://{{args.app}}.internal:8080/status"
            jsonPath: .data.ok
        successCondition: result == true
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:8:23:",
			phrase: `web.jsonPath: ".data.ok" does not start with "$"; start it at the answer's root, such as $.data.ok`,
		},
		{
			name: "command provider with an empty command",
			src: `analysisTemplates:
  - name: checks
    metrics:
      - name: script
        provider: {command: {command: []}}
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:5:30:",
			phrase: "provider.command.command: empty",
		},
		{
			name: "metric interval written as zero",
			src: `analysisTemplates:
  - name: rates
    metrics:
      - name: rate
        interval: 0s
        provider: {builtin: {metric: successRate}}
        successCondition: result > 0.9
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:5:19:",
			phrase: "metrics[0].interval: 0s is not positive",
		},
		{
			name: "negative failure limit",
			src: `analysisTemplates:
  - name: rates
    metrics:
      - name: rate
        failureLimit: -1
        provider: {builtin: {metric: successRate}}
        successCondition: result > 0.9
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:5:23:",
			phrase: "metrics[0].failureLimit: -1 is negative",
		},
		{
			name: "metric without a condition",
			src: `analysisTemplates:
  - name: rates
    metrics:
      - name: rate
        provider: {builtin: {metric: successRate}}
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:4:9:",
			phrase: "metrics[0]: neither successCondition nor failureCondition is set",
		},
		{
			name: "condition that does not compile quotes expr",
			src: `analysisTemplates:
  - name: rates
    metrics:
      - name: rate
        provider: {builtin: {metric: successRate}}
        successCondition: "result >="
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:6:27:",
			phrase: `successCondition: "result >=" does not compile: unexpected token EOF`,
		},
		{
			name: "condition that is not true or false",
			src: `analysisTemplates:
  - name: rates
    metrics:
      - name: rate
        provider: {builtin: {metric: successRate}}
        failureCondition: reslt < 0.9
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:6:27:",
			phrase: `"reslt < 0.9" does not compile: unknown name reslt`,
		},
		{
			name: "query naming an undeclared argument",
			src: `analysisTemplates:
  - name: errors
    args: [{name: service}]
    metrics:
      - name: prom
        provider:
          prometheus:
            address: http://127.0.0.1:9090
            query: errors{service="{{args.servce}}"}
        successCondition: result < 1
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:9:20:",
			phrase: "query: {{args.servce}} names no argument of template \"errors\"; did you mean `service`?",
		},
		{
			name: "argument default that is not text",
			src: `analysisTemplates:
  - name: errors
    args: [{name: service, value: [a, b]}]
    metrics:
      - name: prom
        provider: {builtin: {metric: errorRate}}
        successCondition: result < 0.01
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:3:28:",
			phrase: "analysisTemplates[0].args[0].value: expected text, found a list",
		},
		{
			name: "hook with both command and webhook",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    hooks:
      beforeInstall:
        - command: [./migrate.sh]
          webhook: {url: "https://hooks.example.com/x"}
`,
			prefix: "cutover.yaml:8:11:",
			phrase: "hooks.beforeInstall[0]: both command and webhook are set",
		},
		{
			name: "hook webhook url that is not absolute",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    hooks:
      afterAllowTraffic:
        - webhook: {url: /notify}
`,
			prefix: "cutover.yaml:8:26:",
			phrase: `hooks.afterAllowTraffic[0].webhook.url: "/notify" is not an absolute http(s) URL`,
		},
		{
			name: "webhook retries above the limit",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    hooks:
      rollback:
        - webhook: {url: "https://hooks.example.com/x", retries: 11}
`,
			prefix: "cutover.yaml:8:66:",
			phrase: "webhook.retries: 11 is out of range; use 0 to 10 extra attempts",
		},
		{
			name: "hook timeout written as zero",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    hooks:
      confirmPromotion:
        - command: [./gate.sh]
          timeout: 0s
`,
			prefix: "cutover.yaml:9:20:",
			phrase: "hooks.confirmPromotion[0].timeout: 0s is not positive",
		},
		{
			name: "unknown notification event suggests the closest",
			src: `notifications:
  - webhook: https://hooks.example.com/x
    events: [started, promotd]
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:3:23:",
			phrase: "notifications[0].events[1]: \"promotd\" is not a rollout event; did you mean `promoted`?",
		},
		{
			name: "notification without a webhook",
			src: `notifications:
  - events: [aborted]
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:2:5:",
			phrase: "notifications[0].webhook: missing",
		},
		{
			name: "progress deadline written as zero",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    progressDeadline: 0s
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:5:23:",
			phrase: "apps[0].progressDeadline: 0s is not positive",
		},
		{
			name: "server readHeaderTimeout of zero",
			src: `server: {readHeaderTimeout: 0s}
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:1:29:",
			phrase: "server.readHeaderTimeout: 0s is not positive",
		},
		{
			name: "negative server idle timeout",
			src: `server: {idleTimeout: -1s}
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:1:23:",
			phrase: "server.idleTimeout: -1s is negative",
		},
		{
			name: "header limit below 1 KiB",
			src: `server: {maxHeaderBytes: 512}
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:1:26:",
			phrase: "server.maxHeaderBytes: 512 is out of range; use 1024 (1 KiB) to 16777216 (16 MiB)",
		},
		{
			name: "negative body limit",
			src: `server: {maxBodyBytes: -1}
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:1:24:",
			phrase: "server.maxBodyBytes: -1 is negative",
		},
		{
			name: "trusted proxy that is not a CIDR",
			src: `server:
  trustedProxies: [10.0.0.0/8, 10.0.0.0/33]
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:2:32:",
			phrase: "server.trustedProxies[1]: \"10.0.0.0/33\" is not a CIDR or IP address",
		},
		{
			name: "access log sample above 1",
			src: `server: {accessLog: {enabled: true, sample: 1.5}}
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:1:45:",
			phrase: "server.accessLog.sample: 1.5 is out of range",
		},
		{
			name: "access log sample that is not a number",
			src: `server: {accessLog: {sample: half}}
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:1:30:",
			phrase: "server.accessLog.sample: \"half\" is not a number",
		},
		{
			name: "unknown upstream protocol suggests h2c",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    upstream: {protocol: h2}
`,
			prefix: "cutover.yaml:6:26:",
			phrase: "apps[0].upstream.protocol: \"h2\" is not a protocol; did you mean `h2c`",
		},
		{
			name: "unknown load-balancing policy",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    upstream: {loadBalancing: random}
`,
			prefix: "cutover.yaml:6:31:",
			phrase: "\"random\" is not a load-balancing policy; use one of roundRobin, leastRequests",
		},
		{
			name: "Host header that is no host",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    upstream: {hostHeader: "t, evil"}
`,
			prefix: "cutover.yaml:6:28:",
			phrase: "apps[0].upstream.hostHeader: \"t, evil\" is not a Host header; use client (the client's Host), upstream (the replica's host:port) or a host name such as app.internal",
		},
		{
			name: "too many retries",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    upstream: {retries: 6}
`,
			prefix: "cutover.yaml:6:25:",
			phrase: "apps[0].upstream.retries: 6 is out of range; use 0 (no retries) to 5",
		},
		{
			name: "ejection percentage above 100",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    upstream: {passiveHealth: {maxEjectionPercent: 150}}
`,
			prefix: "cutover.yaml:6:52:",
			phrase: "apps[0].upstream.passiveHealth.maxEjectionPercent: 150 is not a percentage; use 0 (never eject) to 100",
		},
		{
			name: "negative consecutive failures",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    upstream: {passiveHealth: {consecutiveFailures: -1}}
`,
			prefix: "cutover.yaml:6:53:",
			phrase: "apps[0].upstream.passiveHealth.consecutiveFailures: -1 is negative",
		},
		{
			name: "negative connect timeout",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    upstream: {connectTimeout: -1s}
`,
			prefix: "cutover.yaml:6:32:",
			phrase: "apps[0].upstream.connectTimeout: -1s is negative",
		},
		{
			name: "tls with neither certificates nor acme",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    tls: {redirectFrom: 127.0.0.1:8079}
`,
			prefix: "cutover.yaml:6:5:",
			phrase: "apps[0].tls: no certificates and acme is off",
		},
		{
			name: "certificate file that does not exist",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    tls:
      certificates: [{certFile: /nonexistent/cert.pem, keyFile: /dev/null}]
`,
			prefix: "cutover.yaml:7:33:",
			phrase: "apps[0].tls.certificates[0].certFile: cannot read /nonexistent/cert.pem: no such file or directory",
		},
		{
			name: "acme without the top-level block",
			src: `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    hosts: [example.com]
    tls: {acme: true}
`,
			prefix: "cutover.yaml:7:17:",
			phrase: "apps[0].tls.acme: acme: true needs a top-level acme block with an email",
		},
		{
			name: "acme for an app without hosts",
			src: `acme: {email: ops@example.com}
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    tls: {acme: true}
`,
			prefix: "cutover.yaml:7:17:",
			phrase: "apps[0].tls.acme: acme: true needs the app to name its hosts",
		},
		{
			name: "acme block without an email",
			src: `acme: {httpListen: 127.0.0.1:8079}
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    hosts: [example.com]
    tls: {acme: true}
`,
			prefix: "cutover.yaml:1:1:",
			phrase: "acme.email: missing",
		},
		{
			name: "plain HTTP app on an HTTPS listener",
			src: `acme: {email: ops@example.com}
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    hosts: [example.com]
    tls: {acme: true}
  - name: api
    listen: 127.0.0.1:8080
    hosts: [api.example.com]
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9001"]}}
`,
			prefix: "cutover.yaml:10:13:",
			phrase: "127.0.0.1:8080 is already used by app \"web\" (cutover.yaml:4:13), which serves HTTPS there while this app has no tls",
		},
		{
			name: "redirect on the app's own listener",
			src: `acme: {email: ops@example.com}
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    hosts: [example.com]
    tls: {acme: true, redirectFrom: "127.0.0.1:8080"}
`,
			prefix: "cutover.yaml:8:37:",
			phrase: "apps[0].tls.redirectFrom: 127.0.0.1:8080 is already used by app \"web\"",
		},
		{
			name: "redirect on the ACME HTTP listener",
			src: `acme: {email: ops@example.com, httpListen: "127.0.0.1:80"}
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    hosts: [example.com]
    tls: {acme: true, redirectFrom: ":80"}
`,
			prefix: "cutover.yaml:8:37:",
			phrase: "apps[0].tls.redirectFrom: :80 is already used by the ACME HTTP-01 listener (cutover.yaml:1:44)",
		},
		{
			name: "malformed redirect address",
			src: `acme: {email: ops@example.com}
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    hosts: [example.com]
    tls: {acme: true, redirectFrom: web}
`,
			prefix: "cutover.yaml:8:37:",
			phrase: "apps[0].tls.redirectFrom: \"web\" is not host:port",
		},
		{
			name: "acme directory over plain http off this machine",
			src: `acme: {directory: "http://ca.example.com/dir"}
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:1:19:",
			phrase: "acme.directory: \"http://ca.example.com/dir\" uses plain http off this machine",
		},
		{
			name: "acme directory that is not a URL",
			src: `acme: {directory: ca.example.com}
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:1:19:",
			phrase: "acme.directory: \"ca.example.com\" is not an absolute https URL",
		},
		{
			name: "acme root CAs file that does not exist",
			src: `acme: {rootCAs: /nonexistent/ca.pem}
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`,
			prefix: "cutover.yaml:1:17:",
			phrase: "acme.rootCAs: cannot read /nonexistent/ca.pem: no such file or directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := parseProblems(t, tt.src)
			if len(ps) != 1 {
				t.Fatalf("got %d problems, want 1:\n%v", len(ps), ps)
			}
			got := ps[0].String()
			if !strings.HasPrefix(got, tt.prefix) || !strings.Contains(got, tt.phrase) {
				t.Errorf("problem:\n  %s\nwant prefix %q and phrase %q", got, tt.prefix, tt.phrase)
			}
		})
	}
}

func TestParseReportsEveryUnknownFieldAndBadValueAtOnce(t *testing.T) {
	src := `apps:
  - name: web
    lisen: 127.0.0.1:8080
    version: v1
    target:
      process:
        command: [./web]
        replicas: "3"
    health:
      interval: 5
    strategy:
      blueGreen:
        autoPromote: false
`
	ps := parseProblems(t, src)
	want := "" +
		"cutover.yaml:3:5: apps[0]: unknown field \"lisen\"; did you mean `listen`? (allowed fields here: name, listen, hosts, pathPrefix, target, traffic, version, health, strategy, deployTimeout, progressDeadline, progressDeadlineAbort, hooks, tls, upstream, warmup)\n" +
		"cutover.yaml:8:19: apps[0].target.process.replicas: \"3\" is not a whole number; write a number without quotes, such as 2\n" +
		"cutover.yaml:10:17: apps[0].health.interval: 5 is a plain number, not a duration; add a unit: write \"5s\" for seconds or \"5ms\" for milliseconds\n" +
		"cutover.yaml:13:9: apps[0].strategy.blueGreen: unknown field \"autoPromote\"; did you mean `autoPromotion`? (allowed fields here: autoPromotion, previewListen, scaleDownDelay, drainTimeout, smoke, prePromotionAnalysis, prePromotionMirror, postPromotionAnalysis, bakeTime)"
	if got := ps.Error(); got != want {
		t.Errorf("Error():\n%s\nwant:\n%s", got, want)
	}
}

func TestParseReportsEverySemanticProblemSortedByLine(t *testing.T) {
	src := `admin:
  listen: 10.0.0.1:9901
apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target:
      static: {upstreams: [ftp://files]}
    health: {path: up, timeout: 0s}
  - name: web
    listen: 127.0.0.1:8080
    target:
      process: {command: [./web], replicas: 65}
`
	ps := parseProblems(t, src)
	want := []string{
		"cutover.yaml:2:11: admin.token: required",
		"cutover.yaml:8:28: apps[0].target.static.upstreams[0]: \"ftp://files\" is not an absolute http(s) URL",
		"cutover.yaml:9:20: apps[0].health.path: \"up\" does not start with \"/\"",
		"cutover.yaml:9:33: apps[0].health.timeout: 0s is not positive",
		"cutover.yaml:10:5: apps[1].version: missing",
		"cutover.yaml:10:11: apps[1].name: app name \"web\" is already used by apps[0] (cutover.yaml:4:11)",
		"cutover.yaml:11:13: apps[1].listen: 127.0.0.1:8080 is already used by app \"web\" (cutover.yaml:5:13)",
		"cutover.yaml:13:45: apps[1].target.process.replicas: 65 is out of range",
	}
	wantProblems(t, ps, want)
}

// wantProblems checks that ps are exactly the problems that start with
// want, in order.
func wantProblems(t *testing.T, ps Problems, want []string) {
	t.Helper()
	lines := strings.Split(ps.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(lines), len(want), ps.Error())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("problem %d:\n  %s\nwant prefix\n  %s", i, lines[i], w)
		}
	}
}

// localhost is not resolved, so docs does not clash with 127.0.0.1:8080.
func TestAppsMayShareAListenerWithDistinctHosts(t *testing.T) {
	src := `apps:
  - name: web
    listen: 127.0.0.1:8080
    hosts: [example.com, www.example.com]
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
  - name: api
    listen: 127.0.0.1:8080
    hosts: [api.example.com:8080, "[::1]:8080", 10.0.0.7]
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9001"]}}
  - name: docs
    listen: localhost:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9002"]}}
`
	if _, err := Parse("cutover.yaml", []byte(src)); err != nil {
		t.Fatalf("Parse: %v", err)
	}
}

func TestAdminTokenIsRequiredOffLoopback(t *testing.T) {
	tests := []struct {
		listen    string
		needToken bool
	}{
		{"127.0.0.1:9901", false},
		{"127.1.2.3:9901", false},
		{"[::1]:9901", false},
		{"localhost:9901", false},
		{":9901", true},
		{"0.0.0.0:9901", true},
		{"192.168.1.10:9901", true},
		{"admin.example.com:9901", true},
	}
	for _, tt := range tests {
		t.Run(tt.listen, func(t *testing.T) {
			src := "admin: {listen: \"" + tt.listen + "\"}\n" + `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`
			_, err := Parse("cutover.yaml", []byte(src))
			if gotNeed := err != nil && strings.Contains(err.Error(), "admin.token: required"); gotNeed != tt.needToken {
				t.Errorf("token required = %v, want %v (err: %v)", gotNeed, tt.needToken, err)
			}
			if !tt.needToken && err != nil {
				t.Errorf("Parse: %v", err)
			}
			src = strings.Replace(src, "}\n", ", token: s3cret-token-for-tests}\n", 1)
			if _, err := Parse("cutover.yaml", []byte(src)); err != nil {
				t.Errorf("with a token, Parse: %v", err)
			}
		})
	}
}
