package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// A handler served before the admin API's own (a standby's) gets the same
// Host check: a page on a rebound name cannot read it.
func TestGuardRefusesAForeignHostBeforeTheHandler(t *testing.T) {
	reached := false
	h := Guard(nil, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
	req := httptest.NewRequest("GET", "/v1/apps", nil)
	req.Host = "attacker.example:9901"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || reached {
		t.Fatalf("foreign Host: %d, handler reached %v; want 403 before the handler", rec.Code, reached)
	}
	req.Host = "127.0.0.1:9901"
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if !reached {
		t.Fatalf("loopback Host: %d, handler not reached", rec.Code)
	}
}
