// Package daemon wires cutover's parts into the running server: config,
// store, router, controller and admin API, plus reload and shutdown.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/router"
	"github.com/cutover/cutover/internal/store/bolt"
	"github.com/cutover/cutover/internal/target/process"
	"github.com/cutover/cutover/internal/target/static"
	"github.com/cutover/cutover/internal/upstream"
)

// Options configure a daemon.
type Options struct {
	// ConfigPath is the cutover.yaml to serve.
	ConfigPath string
	// DataDir holds the store and replica logs; "" means .cutover beside
	// the config file.
	DataDir string
	// Version is reported by the admin API.
	Version string
	Logger  *slog.Logger
}

// Daemon is a running cutover.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	db      *bolt.DB
	router  *router.Router
	ctl     *controller.Controller
	admin   *http.Server
	adminLn net.Listener
	served  chan error

	mu  sync.Mutex // serializes reloads
	cfg *config.Config
}

// Start loads and validates the config, opens the store, binds every
// listener and starts the apps. A config error is returned as
// config.Problems.
func Start(opts Options) (*Daemon, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	cfg, err := config.Load(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	if opts.DataDir == "" {
		opts.DataDir = filepath.Join(filepath.Dir(opts.ConfigPath), ".cutover")
	}
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	db, err := bolt.Open(opts.DataDir)
	if err != nil {
		return nil, err
	}
	d := &Daemon{opts: opts, log: log, db: db, cfg: cfg, served: make(chan error, 1)}
	ok := false
	defer func() {
		if !ok {
			d.closeAll(context.Background())
		}
	}()

	m := metrics.New()
	d.router = router.New(router.Options{Logger: log})
	if err := d.router.SetRoutes(routes(cfg)); err != nil {
		return nil, err
	}
	d.adminLn, err = net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin listener %s: %w (is another cutover running? change admin.listen)", cfg.Admin.Listen, err)
	}
	transport := upstream.NewTransport()
	logDir := filepath.Join(opts.DataDir, "logs")
	d.ctl = controller.New(controller.Options{
		Store: db, Router: d.router, Metrics: m, Transport: transport, Logger: log,
		NewTarget: func(app config.App) (controller.Target, error) {
			if p := app.Target.Process; p != nil {
				return process.New(process.Options{LogDir: logDir, Dir: p.Dir, StopGrace: p.StopGrace.D(), Logger: log}), nil
			}
			return static.New(), nil
		},
	})
	d.admin = &http.Server{
		Handler: api.New(api.Options{Controller: d.ctl, Token: cfg.Admin.Token, Metrics: m.Handler(),
			Reload: d.Reload, Version: opts.Version, Logger: log}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { d.served <- d.admin.Serve(d.adminLn) }()
	if err := d.ctl.Start(cfg); err != nil {
		return nil, err
	}
	log.Info("cutover serving", "config", opts.ConfigPath, "admin", d.AdminURL(), "data", opts.DataDir)
	ok = true
	return d, nil
}

// AdminURL is the admin API's base URL.
func (d *Daemon) AdminURL() string { return "http://" + d.adminLn.Addr().String() }

// Router exposes the router (for its bound addresses).
func (d *Daemon) Router() *router.Router { return d.router }

// Done reports an admin server failure.
func (d *Daemon) Done() <-chan error { return d.served }

// Reload re-reads the config file. An invalid file, or listeners that cannot
// be bound, change nothing: the running config stays and the error says why.
func (d *Daemon) Reload() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg, err := config.Load(d.opts.ConfigPath)
	if err != nil {
		return fmt.Errorf("config not reloaded, the running one stays:\n%w", err)
	}
	if cfg.Admin != d.cfg.Admin {
		return errors.New("config not reloaded: admin settings change only with a restart of cutover")
	}
	if err := d.router.SetRoutes(routes(cfg)); err != nil {
		return fmt.Errorf("config not reloaded, the running one stays: %w", err)
	}
	if err := d.ctl.Reload(cfg); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	d.cfg = cfg
	d.log.Info("config reloaded", "config", d.opts.ConfigPath)
	return nil
}

// Shutdown stops accepting admin requests, lets requests in flight finish,
// stops the replicas and closes the store.
func (d *Daemon) Shutdown(ctx context.Context) {
	d.closeAll(ctx)
}

func (d *Daemon) closeAll(ctx context.Context) {
	if d.admin != nil {
		_ = d.admin.Shutdown(ctx)
	} else if d.adminLn != nil {
		d.adminLn.Close()
	}
	if d.router != nil {
		_ = d.router.Shutdown(ctx)
	}
	if d.ctl != nil {
		d.ctl.Stop(ctx)
	}
	if d.db != nil {
		_ = d.db.Close()
	}
}

// routes derives the router's table from the config.
func routes(cfg *config.Config) []router.Route {
	var rs []router.Route
	for _, a := range cfg.Apps {
		rs = append(rs, router.Route{Listen: a.Listen, Hosts: a.Hosts, PathPrefix: a.PathPrefix, App: a.Name})
		if bg := a.Strategy.BlueGreen; bg != nil && bg.PreviewListen != "" {
			rs = append(rs, router.Route{Listen: bg.PreviewListen, PathPrefix: "/", App: a.Name, Preview: true})
		}
	}
	return rs
}
