package router

import (
	"log/slog"
	"net/http"
	"time"
)

// logAccess writes the access log record of one finished request.
func logAccess(log *slog.Logger, req *http.Request, sw *statusWriter, ex *exchange, start time.Time) {
	var app, slot, version, endpoint string
	if b := ex.backend; b != nil {
		app, slot, version = b.App, b.Slot, b.Version
	}
	if ex.endpoint != nil {
		endpoint = ex.endpoint.URL().Host
	}
	log.LogAttrs(req.Context(), slog.LevelInfo, "request",
		slog.String("method", req.Method),
		slog.String("host", req.Host),
		slog.String("path", req.URL.Path),
		slog.Int("status", sw.status),
		slog.Int64("bytes", sw.bytes),
		slog.Duration("duration", time.Since(start)),
		slog.String("app", app),
		slog.String("slot", slot),
		slog.String("version", version),
		slog.String("upstream", endpoint),
		slog.String("request_id", req.Header.Get(headerRequestID)),
		slog.String("remote", req.RemoteAddr),
	)
}
