// Package api is cutover's admin HTTP API: JSON in and out, errors as
// {"error": "..."}, a bearer token whenever it listens beyond loopback, and a
// streamed (NDJSON) progress feed for deploys and rollbacks. It refuses
// what a hostile web page in a browser on the same host could send (see
// guard). Client is its Go client, used by the CLI.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
)

// Controller is what the API drives.
type Controller interface {
	Apps() []string
	Status(app string) (controller.AppStatus, error)
	History(app string, limit int) (controller.History, error)
	Deploy(app string, req controller.DeployRequest) (store.Rollout, error)
	Promote(app string, full bool) (store.Rollout, error)
	Pause(app string) (store.Rollout, error)
	Resume(app string) (store.Rollout, error)
	SetWeight(app string, weight int) (store.Rollout, error)
	Retry(app string) (store.Rollout, error)
	Abort(ctx context.Context, app string) (store.Rollout, error)
	Rollback(app string, req controller.RollbackRequest) (store.Rollout, error)
	WaitRollout(ctx context.Context, app string, id int64) (store.Rollout, error)
	Subscribe(app string) (<-chan store.Event, func())
}

// Options configure the admin handler. Controller is required.
type Options struct {
	Controller Controller
	// Token, when set, is required as "Authorization: Bearer TOKEN" on every
	// route but /healthz and /readyz.
	Token string
	// Hosts are the names (or addresses; ports do not matter) accepted in
	// a request's Host besides localhost, loopback addresses and the local
	// address the request arrived on. Every other Host is refused with 403,
	// which defeats DNS rebinding. Empty accepts only those.
	Hosts []string
	// Metrics serves /metrics; nil leaves the route out.
	Metrics http.Handler
	// Reload re-reads the config; nil answers 501.
	Reload func() error
	// Upgrade hands the listeners to a new cutover process and returns once
	// it is ready (or the upgrade failed); nil answers 501.
	Upgrade func() error
	// Version is reported by /v1/version.
	Version string
	Logger  *slog.Logger
}

// RolloutLine is one line of a streamed deploy or rollback: an event while
// it runs, then the rollout's final record.
type RolloutLine struct {
	Event   *store.Event   `json:"event,omitempty"`
	Rollout *store.Rollout `json:"rollout,omitempty"`
	Error   string         `json:"error,omitempty"`
}

// PromoteRequest is the body of POST /v1/apps/{app}/promote.
type PromoteRequest struct {
	// Full skips a canary's remaining steps.
	Full bool `json:"full,omitempty"`
}

// WeightRequest is the body of POST /v1/apps/{app}/weight.
type WeightRequest struct {
	Weight *int `json:"weight"`
}

// RollbackRequest is the body of POST /v1/apps/{app}/rollback.
type RollbackRequest = controller.RollbackRequest

// New returns the admin API handler.
func New(opts Options) http.Handler {
	s := &server{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]bool{"ok": true}) })
	// Ready: this cutover serves the admin API (a standby answers 503).
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]bool{"ok": true}) })
	mux.HandleFunc("GET /v1/version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]string{"version": opts.Version})
	})
	mux.HandleFunc("GET /v1/apps", s.listApps)
	mux.HandleFunc("GET /v1/apps/{app}", s.appStatus)
	mux.HandleFunc("GET /v1/apps/{app}/history", s.history)
	mux.HandleFunc("POST /v1/apps/{app}/deploy", s.deploy)
	mux.HandleFunc("POST /v1/apps/{app}/promote", s.promote)
	mux.HandleFunc("POST /v1/apps/{app}/pause", s.simple(opts.Controller.Pause))
	mux.HandleFunc("POST /v1/apps/{app}/resume", s.simple(opts.Controller.Resume))
	mux.HandleFunc("POST /v1/apps/{app}/retry", s.retry)
	mux.HandleFunc("POST /v1/apps/{app}/weight", s.weight)
	mux.HandleFunc("POST /v1/apps/{app}/abort", s.abort)
	mux.HandleFunc("POST /v1/apps/{app}/rollback", s.rollback)
	mux.HandleFunc("POST /v1/reload", s.reload)
	mux.HandleFunc("POST /v1/upgrade", s.upgrade)
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", opts.Metrics)
	}
	// Go's profiles of the running daemon, behind the same token: where
	// the router spends its time under a real load
	// (go tool pprof http://ADMIN/debug/pprof/profile?seconds=10).
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such admin route: "+r.Method+" "+r.URL.Path)
	})
	return newGuard(opts.Hosts).wrap(s.authenticate(mux))
}

type server struct {
	opts Options
	log  *slog.Logger
}

// authenticate checks the bearer token in constant time.
func (s *server) authenticate(next http.Handler) http.Handler {
	if s.opts.Token == "" {
		return next
	}
	want := []byte("Bearer " + s.opts.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cutover"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token; set CUTOVER_TOKEN or pass --token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) listApps(w http.ResponseWriter, _ *http.Request) {
	out := []controller.AppStatus{}
	for _, name := range s.opts.Controller.Apps() {
		st, err := s.opts.Controller.Status(name)
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, st)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) appStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.opts.Controller.Status(r.PathValue("app"))
	if err != nil {
		writeControllerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *server) history(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "limit must be a number, such as limit=50")
			return
		}
		limit = n
	}
	h, err := s.opts.Controller.History(r.PathValue("app"), limit)
	if err != nil {
		writeControllerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *server) deploy(w http.ResponseWriter, r *http.Request) {
	var req controller.DeployRequest
	if !readJSON(w, r, &req) {
		return
	}
	if err := checkDeploy(req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.startAndFollow(w, r, func() (store.Rollout, error) { return s.opts.Controller.Deploy(r.PathValue("app"), req) })
}

func (s *server) rollback(w http.ResponseWriter, r *http.Request) {
	var req RollbackRequest
	if !readJSON(w, r, &req) {
		return
	}
	s.startAndFollow(w, r, func() (store.Rollout, error) {
		return s.opts.Controller.Rollback(r.PathValue("app"), req)
	})
}

func (s *server) promote(w http.ResponseWriter, r *http.Request) {
	var req PromoteRequest
	if !readJSON(w, r, &req) {
		return
	}
	ro, err := s.opts.Controller.Promote(r.PathValue("app"), req.Full)
	if err != nil {
		writeControllerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ro)
}

func (s *server) weight(w http.ResponseWriter, r *http.Request) {
	var req WeightRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Weight == nil {
		writeError(w, http.StatusBadRequest, `give the weight: {"weight": 25}`)
		return
	}
	ro, err := s.opts.Controller.SetWeight(r.PathValue("app"), *req.Weight)
	if err != nil {
		writeControllerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ro)
}

func (s *server) retry(w http.ResponseWriter, r *http.Request) {
	s.startAndFollow(w, r, func() (store.Rollout, error) { return s.opts.Controller.Retry(r.PathValue("app")) })
}

// simple serves a POST that only names the app.
func (s *server) simple(op func(app string) (store.Rollout, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ro, err := op(r.PathValue("app"))
		if err != nil {
			writeControllerError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ro)
	}
}

func (s *server) abort(w http.ResponseWriter, r *http.Request) {
	ro, err := s.opts.Controller.Abort(r.Context(), r.PathValue("app"))
	if err != nil {
		writeControllerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ro)
}

func (s *server) reload(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Reload == nil {
		writeError(w, http.StatusNotImplemented, "reload is not available")
		return
	}
	if err := s.opts.Reload(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"reloaded": true})
}

func (s *server) upgrade(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Upgrade == nil {
		writeError(w, http.StatusNotImplemented, "upgrade is not available")
		return
	}
	if err := s.opts.Upgrade(); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, controller.ErrConflict) {
			code = http.StatusConflict
		}
		writeError(w, code, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"upgraded": true})
}

// startAndFollow starts a rollout. With ?watch=true it streams the rollout's
// events as NDJSON and ends with its final record; otherwise it answers 202
// with the rollout as started. A client that goes away does not stop the
// rollout.
func (s *server) startAndFollow(w http.ResponseWriter, r *http.Request, start func() (store.Rollout, error)) {
	app := r.PathValue("app")
	watch := r.URL.Query().Get("watch") == "true"
	var events <-chan store.Event
	if watch {
		ch, stop := s.opts.Controller.Subscribe(app)
		defer stop()
		events = ch
	}
	ro, err := start()
	if err != nil {
		writeControllerError(w, err)
		return
	}
	if !watch {
		writeJSON(w, http.StatusAccepted, ro)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	send := func(line RolloutLine) {
		_ = enc.Encode(line)
		if flusher != nil {
			flusher.Flush()
		}
	}
	done := make(chan struct{})
	var final store.Rollout
	var waitErr error
	go func() {
		defer close(done)
		final, waitErr = s.opts.Controller.WaitRollout(r.Context(), app, ro.ID)
	}()
	forward := func(ev store.Event) {
		if ev.Rollout == ro.ID {
			send(RolloutLine{Event: &ev})
		}
	}
	for {
		select {
		case ev := <-events:
			forward(ev)
		case <-done:
			// The rollout's last events were published before it ended.
		drained:
			for {
				select {
				case ev := <-events:
					forward(ev)
				default:
					break drained
				}
			}
			if waitErr != nil {
				// A stream ended by cutover's shutdown says so (the
				// request context's cause) rather than "context canceled".
				if r.Context().Err() != nil {
					waitErr = context.Cause(r.Context())
				}
				send(RolloutLine{Error: waitErr.Error()})
				return
			}
			send(RolloutLine{Rollout: &final})
			return
		case <-time.After(15 * time.Second):
			send(RolloutLine{}) // keep idle proxies from cutting the stream
		}
	}
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "bad request body: "+err.Error())
		return false
	}
	return true
}

func writeControllerError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, controller.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, controller.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, controller.ErrInvalid):
		code = http.StatusBadRequest
	}
	msg := err.Error()
	for _, sentinel := range []error{controller.ErrNotFound, controller.ErrConflict, controller.ErrInvalid} {
		msg = strings.TrimPrefix(msg, sentinel.Error()+": ")
	}
	writeError(w, code, msg)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
