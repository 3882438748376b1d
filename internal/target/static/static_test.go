package static

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/target"
)

func TestStartReturnsUpstreamsAsEndpointsThatAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("upstream ok"))
	}))
	t.Cleanup(srv.Close)

	inst, err := New().Start(context.Background(), target.Spec{
		App:       "web",
		Upstreams: []string{srv.URL, "https://10.0.0.5:8443/base"},
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	eps := inst.Endpoints()
	if len(eps) != 2 || eps[0].String() != srv.URL || eps[1].String() != "https://10.0.0.5:8443/base" {
		t.Fatalf("Endpoints = %v, want [%s https://10.0.0.5:8443/base]", eps, srv.URL)
	}
	resp, err := http.Get(eps[0].String())
	if err != nil {
		t.Fatalf("GET first endpoint: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first endpoint answered %d, want 200", resp.StatusCode)
	}

	reps := inst.Replicas()
	if len(reps) != 2 || reps[1].Index != 1 || reps[1].URL != "https://10.0.0.5:8443/base" || !reps[1].Running {
		t.Fatalf("Replicas = %+v, want two running replicas with the upstream URLs", reps)
	}
	if err := inst.Err(); err != nil {
		t.Fatalf("Err = %v, want nil", err)
	}
	if err := inst.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := inst.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestEndpointsCannotBeChangedByCallers(t *testing.T) {
	inst, err := New().Start(context.Background(), target.Spec{Upstreams: []string{"http://127.0.0.1:8080"}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	inst.Endpoints()[0].Host = "evil.example:80"
	if got := inst.Endpoints()[0].Host; got != "127.0.0.1:8080" {
		t.Fatalf("endpoint host after caller changed its copy = %q, want 127.0.0.1:8080", got)
	}
}

func TestStartRejectsBadUpstreams(t *testing.T) {
	tests := []struct {
		name      string
		upstreams []string
		wantInErr string
	}{
		{"none", nil, "give at least one --upstream URL"},
		{"no scheme", []string{"http://ok:1", "10.0.0.5:8080"}, `"10.0.0.5:8080"`},
		{"host without scheme", []string{"localhost:8080"}, `"localhost:8080"`},
		{"relative", []string{"/api"}, `"/api"`},
		{"other scheme", []string{"ftp://files.example"}, `"ftp://files.example"`},
		{"no host", []string{"http:///path"}, `"http:///path"`},
		{"unparsable", []string{"http://[::1"}, `"http://[::1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst, err := New().Start(context.Background(), target.Spec{App: "web", Upstreams: tt.upstreams})
			if err == nil {
				t.Fatalf("Start(%q) = %v, want an error", tt.upstreams, inst.Endpoints())
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("Start(%q) error %q does not contain %s", tt.upstreams, err, tt.wantInErr)
			}
		})
	}
}
