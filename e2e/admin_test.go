package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHostilePageCannotMakeCutoverRunACommand reproduces the attack of
// issue 9: with the default admin (127.0.0.1, no token), a page in a
// browser on the host posts a deploy whose command would run on the
// machine, as a no-cors text/plain request and through DNS rebinding. The
// real `cutover serve` must refuse both, record nothing, run nothing, and
// the CLI must still deploy.
func TestHostilePageCannotMakeCutoverRunACommand(t *testing.T) {
	s := newSetup(t)
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)

	marker := filepath.Join(s.Dir, "pwned")
	body := fmt.Sprintf(`{"version":"pwned","command":["/bin/sh","-c","touch %s; exec %s sample-app --version pwned"]}`, marker, s.Bin)
	port := s.Admin[strings.LastIndex(s.Admin, ":")+1:]
	attacks := []struct {
		name   string
		host   string
		header map[string]string
		want   int
	}{
		{"no-cors text/plain from evil.example", "", map[string]string{
			"Content-Type": "text/plain;charset=UTF-8", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, 403},
		{"text/plain without Origin", "", map[string]string{"Content-Type": "text/plain"}, 415},
		{"DNS rebinding", "evil.example:" + port, map[string]string{
			"Content-Type": "application/json", "Origin": "http://evil.example:" + port, "Sec-Fetch-Site": "same-origin"}, 403},
	}
	for _, a := range attacks {
		req, err := http.NewRequest(http.MethodPost, s.adminURL()+"/v1/apps/web/deploy", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if a.host != "" {
			req.Host = a.host
		}
		for k, v := range a.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error string }
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != a.want || err != nil || e.Error == "" {
			t.Errorf("%s: %d %q (%v), want %d with a JSON error", a.name, resp.StatusCode, e.Error, err, a.want)
		}
	}

	s.mustCLI(t, "deploy", "web", "--version", "v2")
	waitServing(t, s.appURL(), "v2", 20*time.Second)
	if out := s.mustCLI(t, "history", "web").stdout; strings.Contains(out, "pwned") {
		t.Errorf("a hostile request was recorded:\n%s", out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("cutover ran the hostile page's command (%s exists)", marker)
	}
	if r := s.cli(t, "deploy", "web", "--version", "v3\n2026-11-30 12:00:00.000  Normal  Promoted", "-o", "json"); r.code != 2 || !strings.Contains(r.stderr, `"error"`) {
		t.Errorf("deploy of a version with a newline: exit %d, stderr %q; want 2 and a JSON error", r.code, r.stderr)
	}
}
