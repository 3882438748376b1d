package hooks

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
)

func TestWebhookHookPostsPayloadWithHeaders(t *testing.T) {
	type request struct {
		method, contentType, hook, token string
		body                             []byte
	}
	got := make(chan request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- request{r.Method, r.Header.Get("Content-Type"), r.Header.Get("X-Cutover-Hook"), r.Header.Get("Authorization"), body}
	}))
	t.Cleanup(srv.Close)

	h := config.Hook{Webhook: &config.Webhook{URL: srv.URL + "/hook", Headers: map[string]string{"Authorization": "Bearer s3cret"}}}
	info := Info{Point: PointAfterAllowTestTraffic, App: "web", Version: "v2", Revision: 3}
	if err := Run(t.Context(), h, info, map[string]any{"revision": 3}); err != nil {
		t.Fatalf("Run: %v", err)
	}

	r := <-got
	if r.method != http.MethodPost || r.contentType != "application/json" || r.hook != "afterAllowTestTraffic" || r.token != "Bearer s3cret" {
		t.Errorf("method, Content-Type, X-Cutover-Hook, Authorization = %q %q %q %q; want POST, application/json, afterAllowTestTraffic, the configured header",
			r.method, r.contentType, r.hook, r.token)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil || body["revision"] != float64(3) {
		t.Errorf("body = %s (%v), want the payload as JSON", r.body, err)
	}
}

func TestWebhookHookRetriesFailedAnswers(t *testing.T) {
	for _, tc := range []struct {
		retries      int
		wantErr      bool
		wantRequests int64
	}{
		{retries: 2, wantErr: false, wantRequests: 3},
		{retries: 1, wantErr: true, wantRequests: 2},
	} {
		t.Run("retries="+strconv.Itoa(tc.retries), func(t *testing.T) {
			var requests atomic.Int64
			// Fails twice, then succeeds.
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if requests.Add(1) <= 2 {
					http.Error(w, "database is down", http.StatusInternalServerError)
				}
			}))
			t.Cleanup(srv.Close)

			url := srv.URL + "/gate"
			h := config.Hook{Webhook: &config.Webhook{URL: url, Retries: tc.retries}}
			err := Run(t.Context(), h, Info{Point: PointConfirmPromotion}, nil)

			if n := requests.Load(); n != tc.wantRequests {
				t.Errorf("receiver got %d requests, want %d", n, tc.wantRequests)
			}
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Run succeeded, want the last failure")
			}
			for _, want := range []string{url, "500", "database is down"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestWebhookHookTimesOutAHangingReceiver(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	h := config.Hook{Webhook: &config.Webhook{URL: srv.URL, Timeout: config.Duration(200 * time.Millisecond)}}
	if err := Run(t.Context(), h, Info{Point: PointBeforeAllowTraffic}, nil); err == nil {
		t.Fatal("Run succeeded against a receiver that never answers")
	}
}

func TestWebhookErrorHidesURLQuery(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	t.Cleanup(srv.Close)

	h := config.Hook{Webhook: &config.Webhook{URL: srv.URL + "/hook?token=s3cret"}}
	err := Run(t.Context(), h, Info{Point: PointBeforeInstall}, nil)
	if err == nil {
		t.Fatal("Run succeeded, want the 403")
	}
	if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), srv.URL+"/hook") {
		t.Errorf("error %q should name the URL without its query", err)
	}
}
