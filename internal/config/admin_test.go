package config

import (
	"strings"
	"testing"
)

const adminApp = `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`

func TestAdminTokenMustBeLongPrintableText(t *testing.T) {
	tests := []struct {
		token  string
		phrase string // "" when valid
	}{
		{`"0123456789abcdef"`, ""},
		{`"s3cret-token-for-tests"`, ""},
		{`"..."`, "admin.token: 3 characters are too short to keep a guesser out"},
		{`secret`, "admin.token: 6 characters are too short"},
		{`"0123456789abcde"`, "admin.token: 15 characters are too short"},
		{`"0123456789 abcdef"`, "admin.token: has a space or a control character"},
		{`"0123456789abcdef\t"`, "admin.token: has a space or a control character"},
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			src := "admin:\n  listen: 127.0.0.1:9901\n  token: " + tt.token + "\n" + adminApp
			_, err := Parse("cutover.yaml", []byte(src))
			if tt.phrase == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			ps := parseProblems(t, src)
			if len(ps) != 1 || !strings.HasPrefix(ps[0].String(), "cutover.yaml:3:10: ") || !strings.Contains(ps[0].String(), tt.phrase) ||
				!strings.Contains(ps[0].Hint, "openssl rand -hex 16") {
				t.Fatalf("got %v\nwant one problem at cutover.yaml:3:10 with %q and the openssl hint", ps, tt.phrase)
			}
			if strings.Contains(ps[0].String(), strings.Trim(tt.token, `"`)) && len(tt.token) > 5 {
				t.Errorf("the problem repeats the secret: %s", ps[0])
			}
		})
	}
}

func TestAdminHostsAreHostNames(t *testing.T) {
	src := "admin:\n  listen: 0.0.0.0:9901\n  token: 0123456789abcdef\n  hosts: [deploy.internal, 10.0.0.5, \"evil example\"]\n" + adminApp
	ps := parseProblems(t, src)
	if len(ps) != 1 || !strings.HasPrefix(ps[0].String(), "cutover.yaml:4:38: admin.hosts[2]: \"evil example\" is not a host name") {
		t.Fatalf("got %v", ps)
	}
	c, err := Parse("cutover.yaml", []byte(strings.Replace(src, `, "evil example"`, "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Admin.Hosts, ","); got != "deploy.internal,10.0.0.5" {
		t.Errorf("admin.hosts = %s", got)
	}
}

func TestVersionLabels(t *testing.T) {
	for _, v := range []string{"v1", "1", "1.4.0-rc.1+build.7", "2026.11.30_1", "V2", "a" + strings.Repeat("b", 127)} {
		if err := CheckVersion(v); err != nil {
			t.Errorf("CheckVersion(%q): %v", v, err)
		}
	}
	for _, v := range []string{"", "v2\n2026-11-30 12:00:00  Promoted  forged", "v2\x1b[31m", "-v2", ".v2", "v 2", "v2/x", "v2;rm", "é", "a" + strings.Repeat("b", 128), strings.Repeat("x", 500<<10)} {
		err := CheckVersion(v)
		if err == nil {
			t.Errorf("CheckVersion(%.40q) accepted it", v)
			continue
		}
		if msg := err.Error(); len(msg) > 400 || strings.ContainsAny(msg, "\n\x1b") || !strings.Contains(msg, "such as v2") {
			t.Errorf("CheckVersion(%.40q): message should be short, on one line and say what to write: %q", v, msg)
		}
	}
}

func TestConfigVersionIsALabel(t *testing.T) {
	src := strings.Replace(adminApp, "version: v1", `version: "v1\e[2J"`, 1)
	ps := parseProblems(t, src)
	if len(ps) != 1 || !strings.HasPrefix(ps[0].String(), `cutover.yaml:4:14: apps[0].version: "v1\x1b[2J" is not a version label`) {
		t.Fatalf("got %v", ps)
	}
}
