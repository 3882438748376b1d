// Package sampleapp is the small HTTP server that cutover bundles for its demo,
// its tests and its benchmarks (`cutover sample-app`). Its behaviour — version
// label, latency, error rate, readiness, crashing, shutdown — is set by flags
// and, for latency, error rate and readiness, switchable at runtime through
// POST /admin/... so tests can make a running revision go bad.
//
// Routes:
//
//	GET  /                  200 "version=V\n" (or 500 "error version=V\n" per fail rate)
//	GET  /health            200 "ok", or 503 while not ready
//	GET  /version           "V"
//	GET  /sleep?d=3s        sleeps d (at most 60s), then 200 "version=V slept=3s"
//	GET  /echo              the request headers (and Host) as a JSON object
//	GET  /ws                WebSocket echo: each text message comes back as "V: message"
//	GET  /sse               server-sent events "data: V n" every 100 ms until the client leaves
//	POST /admin/fail-rate?value=0.5
//	POST /admin/latency?value=200ms
//	POST /admin/ready?value=false
//
// Any other path answers like /, so the app can sit behind a path prefix.
// Every response carries the header X-Version: V.
package sampleapp

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// defaultShutdownBound is how long in-flight requests may run after SIGTERM
// when --shutdown-delay is 0.
const defaultShutdownBound = 10 * time.Second

// Main runs the sample app with args (flags without the program name) until
// ctx is done or the process gets SIGTERM (or SIGINT), then shuts down
// gracefully. It returns the process exit code: 0 after a graceful shutdown,
// 1 when listening fails, --crash-after fires or in-flight requests outlive
// the shutdown bound, 2 for bad flags.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseOptions(args, os.Getenv("PORT"), stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()

	ln, err := net.Listen("tcp", opts.addr)
	if err != nil {
		fmt.Fprintf(stderr, "sample-app: %v; choose a free address with --addr\n", err)
		return 1
	}
	return serve(ctx, ln, opts, stdout, stderr)
}

// serve answers on ln until ctx is done or --crash-after fires, and owns ln
// from then on.
func serve(ctx context.Context, ln net.Listener, opts options, stdout, stderr io.Writer) int {
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	b := newBehaviour(opts, time.Now())
	srv := &http.Server{
		Handler:           b.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(stderr, "sample-app: ", 0),
	}
	srv.RegisterOnShutdown(b.long.stop)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on %s version %s\n", ln.Addr(), opts.version)

	var crash <-chan time.Time
	if opts.crashAfter > 0 {
		t := time.NewTimer(opts.crashAfter)
		defer t.Stop()
		crash = t.C
	}
	select {
	case err := <-served:
		logger.Error("serving stopped", "err", err)
		return 1
	case <-crash:
		logger.Error("crashing as asked by --crash-after", "after", opts.crashAfter)
		_ = srv.Close() // the point is to drop everything at once
		<-served
		return 1
	case <-ctx.Done():
	}

	bound := opts.shutdownDelay
	if bound == 0 {
		bound = defaultShutdownBound
	}
	logger.Info("shutting down: no new connections, waiting for in-flight requests", "bound", bound)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bound)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-served // Serve returns as soon as Shutdown starts; Shutdown has waited for handlers.
	if err == nil {
		// Shutdown does not wait for hijacked connections: the WebSockets
		// it told to close may still be saying goodbye.
		err = b.long.wait(sctx)
	}
	if err != nil {
		_ = srv.Close()
		logger.Error("in-flight requests were cut off", "bound", bound, "err", err)
		return 1
	}
	logger.Info("shut down")
	return 0
}
