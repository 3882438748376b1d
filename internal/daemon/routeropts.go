package daemon

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/router"
)

// newRouter builds the router for cfg; every listener it opens goes
// through listen.
func newRouter(cfg *config.Config, dataDir string, listen func(network, addr string) (net.Listener, error), log *slog.Logger) (*router.Router, error) {
	opts := router.Options{Logger: log, Listen: listen, Server: serverOptions(cfg, log)}
	if a := cfg.ACME; a != nil {
		roots, err := a.RootCAPool()
		if err != nil {
			return nil, fmt.Errorf("acme.rootCAs: %w", err)
		}
		cacheDir := a.CacheDir
		if cacheDir == "" {
			cacheDir = filepath.Join(dataDir, "acme")
		}
		opts.ACME = &router.ACMEOptions{Directory: a.Directory, Email: a.Email, CacheDir: cacheDir, RootCAs: roots, HTTPListen: a.HTTPListen}
	}
	return router.New(opts), nil
}

// serverOptions maps the config's server block to the router's listener
// settings.
func serverOptions(cfg *config.Config, log *slog.Logger) router.ServerOptions {
	s := cfg.Server
	opts := router.ServerOptions{
		ReadHeaderTimeout: s.ReadHeaderTimeout.D(),
		ReadTimeout:       s.ReadTimeout.D(),
		WriteTimeout:      s.WriteTimeout.D(),
		IdleTimeout:       s.IdleTimeout.D(),
		MaxHeaderBytes:    s.MaxHeaderBytes,
		MaxBodyBytes:      s.MaxBodyBytes,
		TrustedProxies:    s.TrustedPrefixes(),
		Via:               s.Via,
		RequestID:         s.RequestID == nil || *s.RequestID,
		AccessLogSample:   1,
		DisableFastPath:   s.FastPath != nil && !*s.FastPath,
		DisableEventLoop:  s.EventLoop != nil && !*s.EventLoop,
	}
	// The router reads zero as its default; a written 0s means no idle
	// timeout of its own, as in net/http.
	if s.IdleTimeout == 0 {
		opts.IdleTimeout = -1
	}
	if s.AccessLog.Enabled {
		opts.AccessLog = log.With("log", "access")
		if s.AccessLog.Sample != nil {
			opts.AccessLogSample = *s.AccessLog.Sample
		}
	}
	return opts
}

// routeTLS maps an app's tls block to the router's.
func routeTLS(t *config.TLS) *router.RouteTLS {
	if t == nil {
		return nil
	}
	rt := &router.RouteTLS{ACME: t.ACME, RedirectFrom: t.RedirectFrom}
	for _, c := range t.Certificates {
		rt.Certificates = append(rt.Certificates, router.CertFiles{CertFile: c.CertFile, KeyFile: c.KeyFile})
	}
	return rt
}

// sameACME reports whether two acme blocks are equal; the ACME client is
// set up once, at start.
func sameACME(a, b *config.ACME) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
