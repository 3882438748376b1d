package router

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// accessRecord is what the access log says of one finished request.
type accessRecord struct {
	method, host, path string
	status             int
	bytes              int64
	start              time.Time
	ex                 exchange
	requestID, remote  string
}

// logAccess writes the access log record of one finished request of the
// net/http path.
func logAccess(log *slog.Logger, req *http.Request, sw *statusWriter, ex *exchange, start time.Time) {
	writeAccess(req.Context(), log, &accessRecord{
		method:    req.Method,
		host:      req.Host,
		path:      req.URL.Path,
		status:    sw.status,
		bytes:     sw.bytes,
		start:     start,
		ex:        *ex,
		requestID: req.Header.Get(headerRequestID),
		remote:    req.RemoteAddr,
	})
}

// writeAccess writes rec to log.
func writeAccess(ctx context.Context, log *slog.Logger, rec *accessRecord) {
	var app, slot, version, endpoint string
	if b := rec.ex.backend; b != nil {
		app, slot, version = b.App, b.Slot, b.Version
	}
	if rec.ex.endpoint != nil {
		endpoint = rec.ex.endpoint.URL().Host
	}
	log.LogAttrs(ctx, slog.LevelInfo, "request",
		slog.String("method", rec.method),
		slog.String("host", rec.host),
		slog.String("path", rec.path),
		slog.Int("status", rec.status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("duration", time.Since(rec.start)),
		slog.String("app", app),
		slog.String("slot", slot),
		slog.String("version", version),
		slog.String("upstream", endpoint),
		slog.String("request_id", rec.requestID),
		slog.String("remote", rec.remote),
	)
}
