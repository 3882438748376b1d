// Package daemon wires cutover's parts into the running server: config,
// store, router, controller and admin API, plus reload, shutdown and hot
// upgrades.
//
// # Hot upgrade
//
// With Options.Upgrades set, every listener (the apps', the previews', the
// redirects', the admin API's) is opened through a tableflip.Upgrader, so a
// new cutover process can inherit the sockets: no connection is refused
// while the binary is replaced or cutover restarts. The store (one bbolt
// file under an exclusive lock, or with store.kubernetes the Lease of the
// store in the API server) and the replicas belong to one process at a
// time, which fixes the order of an upgrade (SIGUSR2 or POST /v1/upgrade,
// see Upgrade):
//
//  1. The old process refuses to start while a rollout is in progress, and
//     waits until its own parent (the previous generation) has exited.
//  2. It closes its store. Traffic goes on from memory; admin calls that
//     need the store answer 503 "upgrading".
//  3. It starts the new process (the same executable path and arguments,
//     so a replaced binary takes over) and hands it the sockets.
//  4. The new process opens the store (retrying the lock for up to 30 s,
//     the Lease for up to a minute),
//     restores every app (the controller starts the active revisions'
//     replicas again, on fresh ports), waits until every app's active
//     revision has a ready endpoint, and only then reports ready. Until
//     then the old process alone answers what it accepts.
//  5. The old process then stops accepting, drains its requests in flight
//     (bounded), stops its replicas and exits 0. Its replicas would die
//     with it anyway (they run with a parent-death signal).
//
// If the new process fails or is not ready within the upgrade timeout, it
// is killed, the old process opens its store again and goes on as before.
// Without Options.Upgrades (the demo, tests) listeners are plain and
// Upgrade is refused.
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
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/cloudflare/tableflip"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/gitops"
	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/router"
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
	// Upgrades opens the listeners so that Upgrade can hand them to a new
	// cutover process, and writes the PID of the process that serves to
	// PIDFile in the data dir. Only one daemon per process may set it.
	// A process started by an upgrade must set it.
	Upgrades bool
}

// PIDFile is the file in the data dir that holds the PID of the cutover
// process serving (with Options.Upgrades); an upgrade changes it.
const PIDFile = "cutover.pid"

// errStopping ends the admin requests still running at shutdown, such as
// an attached deploy's stream; the CLI prints it.
var errStopping = errors.New("cutover is stopping; a rollout in progress goes on when it starts again (`cutover status` shows it)")

// GroupDir is the directory in the data dir where the process groups of
// running replicas are recorded, so that a cutover started after a kill -9
// stops what the killed one left running (see process.Reap).
const GroupDir = "replicas"

// Bounds of an upgrade.
const (
	// upgradeTimeout bounds the new process's start: store, replicas,
	// readiness.
	upgradeTimeout = 2 * time.Minute
	// parentWait bounds the wait for the previous generation to exit
	// before another upgrade may start.
	parentWait = time.Minute
)

// Daemon is a running cutover.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	store   *storeHandle
	upg     *tableflip.Upgrader // nil without Options.Upgrades
	park    *listenerPark       // the listeners; nil without Options.Upgrades
	router  *router.Router
	gates   *acceptGates
	ctl     *controller.Controller
	admin   *http.Server
	adminLn net.Listener
	// endStreams cancels the context of every admin request, so that
	// attached `deploy` streams end at shutdown instead of holding it.
	endStreams context.CancelCauseFunc
	served     chan error

	upgrading sync.Mutex // held by the Upgrade in progress

	mu  sync.Mutex // serializes reloads and upgrades
	cfg *config.Config
	// file is the config file's own config: cfg without the declared
	// apps.
	file *config.Config
	// declared are the apps that CutoverApps declare (spec.app), as
	// applied, by name.
	declared map[string]config.Declaration

	// kubes are the targets of kubernetes apps.
	kubes *kubeTargets
	// proxied are the apps whose traffic a proxy of the team's moves.
	proxied *proxiedApps
	// stopGitops ends the deploys of CutoverApp specs (kube store only).
	stopGitops context.CancelFunc
	// following serves a standby's router-mode apps as the leader routes
	// them; nil otherwise.
	following *following
}

// Start loads and validates the config, opens the store, binds every
// listener and starts the apps. A config error is returned as
// config.Problems. In a process started by an upgrade, Start returns once
// every app's active revision is ready again, and then tells the old
// process to go.
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
	d := &Daemon{opts: opts, log: log, cfg: cfg, file: cfg, declared: map[string]config.Declaration{}, served: make(chan error, 1)}
	d.store = &storeHandle{dir: opts.DataDir, kube: cfg.Store.Kubernetes, lost: d.fail}
	ok := false
	defer func() {
		if !ok {
			d.closeAll(context.Background())
		}
	}()
	listen := net.Listen
	if opts.Upgrades {
		d.upg, err = tableflip.New(tableflip.Options{UpgradeTimeout: upgradeTimeout})
		if err != nil {
			return nil, fmt.Errorf("prepare hot upgrades: %w", err)
		}
		d.park = newListenerPark(d.upg.Fds.Listen)
		listen = d.park.Listen
	}
	d.gates = newAcceptGates(cfg)
	listen = d.gates.wrap(listen)
	upgraded := d.upg != nil && d.upg.HasParent()
	var standby *standbyAdmin
	if k := cfg.Store.Kubernetes; k != nil && k.Standby {
		// Answer health checks while waiting for the Lease, and 503 to
		// everything else.
		standby = &standbyAdmin{}
		d.store.holder = func(identity string) {
			standby.setHolder(identity)
			if identity != "" && !d.store.open() {
				log.Info("standby: waiting for the Lease of the store", "leader", identity)
			}
		}
		if err := d.listenAdmin(cfg, listen); err != nil {
			return nil, err
		}
		d.kubes = newKubeTargets(log)
		if err := d.follow(cfg, listen); err != nil {
			return nil, err
		}
		standby.serves = d.following.servesFollowed
		d.serveAdmin(api.Guard(adminHosts(cfg), standby))
		log.Info("standby: taking the Lease of the store; the admin API answers /healthz, and 503 elsewhere until this cutover leads", "admin", d.AdminURL())
	}
	if err := d.store.openStore(context.Background(), upgraded); err != nil {
		return nil, err
	}
	if standby != nil {
		log.Info("standby: took the Lease of the store; starting as the leader")
	}
	groupDir := filepath.Join(opts.DataDir, GroupDir)
	if !upgraded {
		// The store's lock makes this cutover the data dir's only owner:
		// whatever replicas are recorded were left by one that died
		// without stopping them. (After an upgrade they are the previous
		// generation's, which still serves and stops them itself.)
		if n, err := process.Reap(groupDir, log); err != nil {
			log.Error("stop what the previous cutover left running", "err", err)
		} else if n > 0 {
			log.Warn("stopped replicas a previous cutover left running", "groups", n)
		}
	}

	if cfg.Store.Kubernetes != nil {
		cfg = d.declareAtStart(cfg)
		d.cfg = cfg
		d.gates.hold(cfg, func(a config.App) bool { return a.Declared != nil })
	}

	m := metrics.New()
	if d.router == nil {
		if d.router, err = newRouter(cfg, opts.DataDir, listen, log); err != nil {
			return nil, err
		}
	}
	if err := d.router.SetRoutes(routes(cfg)); err != nil {
		return nil, err
	}
	if d.adminLn == nil {
		if err := d.listenAdmin(cfg, listen); err != nil {
			return nil, err
		}
	}
	transport := upstream.NewTransport()
	logDir := filepath.Join(opts.DataDir, "logs")
	if d.kubes == nil {
		d.kubes = newKubeTargets(log)
	}
	kubes := d.kubes
	if d.proxied == nil {
		d.proxied = newProxiedApps()
	}
	proxied := d.proxied
	d.ctl = controller.New(controller.Options{
		Store: d.store, Router: d.router, Metrics: m, Transport: transport, Logger: log,
		NewTarget: func(app config.App) (controller.Target, error) {
			if app.Target.Kubernetes != nil {
				return kubes.forApp(app)
			}
			var t controller.Target = static.New()
			if p := app.Target.Process; p != nil {
				t = process.New(process.Options{LogDir: logDir, GroupDir: groupDir, Dir: p.Dir, StopGrace: p.StopGrace.D(), Logger: log})
			}
			return proxied.wrap(app, t)
		},
	})
	apiOpts := api.Options{Controller: d.ctl, Token: cfg.Admin.Token, Hosts: adminHosts(cfg),
		Metrics: m.Handler(), Reload: d.Reload, Version: opts.Version, Logger: log}
	if d.upg != nil {
		apiOpts.Upgrade = d.Upgrade
	}
	if handler := d.refuseWhileUpgrading(api.New(apiOpts)); standby != nil {
		standby.lead(handler)
	} else {
		d.serveAdmin(handler)
	}
	// What a standby routed flows on until each app's restore publishes
	// its own backends.
	d.following.handOver(d.appServes)
	if err := d.ctl.Start(cfg); err != nil {
		return nil, err
	}
	if cfg.Store.Kubernetes != nil {
		ctx, cancel := context.WithCancel(context.Background())
		d.stopGitops = cancel
		go gitops.Run(ctx, d.store, d.ctl, d, log)
	}
	go d.gates.run(d.appServes, func(addr string, apps []string) {
		log.Warn("accepting on the listener although its apps do not serve yet (deployTimeout passed): they answer 503; check `cutover status`",
			"listen", addr, "apps", apps)
	})
	if d.upg != nil {
		if upgraded {
			ctx, cancel := context.WithTimeout(context.Background(), readyWait(cfg))
			err := d.waitReady(ctx)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("upgrade: %w; the previous cutover goes on serving", err)
			}
		}
		if err := d.upg.Ready(); err != nil {
			return nil, fmt.Errorf("signal readiness: %w", err)
		}
		if err := writePIDFile(filepath.Join(opts.DataDir, PIDFile)); err != nil {
			log.Error("serving without a PID file: `cutover upgrade` (the API) still works, SIGUSR2 needs the PID; free space in the data dir", "err", err)
		}
	}
	log.Info("cutover serving", "config", opts.ConfigPath, "admin", d.AdminURL(), "data", opts.DataDir, "pid", os.Getpid(), "upgraded", upgraded)
	ok = true
	return d, nil
}

// listenAdmin binds the admin listener.
func (d *Daemon) listenAdmin(cfg *config.Config, listen func(network, addr string) (net.Listener, error)) error {
	ln, err := listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin listener %s: %w (is another cutover running? change admin.listen)", cfg.Admin.Listen, err)
	}
	d.adminLn = ln
	return nil
}

// serveAdmin serves handler on the admin listener.
func (d *Daemon) serveAdmin(handler http.Handler) {
	adminCtx, endStreams := context.WithCancelCause(context.Background())
	d.endStreams = endStreams
	d.admin = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return adminCtx },
	}
	go func() { d.served <- d.admin.Serve(d.adminLn) }()
}

// AdminURL is the admin API's base URL.
func (d *Daemon) AdminURL() string { return "http://" + d.adminLn.Addr().String() }

// Done reports an admin server failure, or the loss of a Kubernetes
// store's Lease.
func (d *Daemon) Done() <-chan error { return d.served }

// fail ends the daemon with err, through Done.
func (d *Daemon) fail(err error) {
	select {
	case d.served <- err:
	default:
	}
}

// Upgraded is closed once an Upgrade has handed over to a new process:
// the caller should then call Shutdown and exit. It is nil (never ready)
// without Options.Upgrades.
func (d *Daemon) Upgraded() <-chan struct{} {
	if d.upg == nil {
		return nil
	}
	return d.upg.Exit()
}

// Reload re-reads the config file; the apps CutoverApps declare stay. An
// invalid file (or one whose apps clash with the declared ones), or
// listeners that cannot be bound, change nothing: the running config stays
// and the error says why.
func (d *Daemon) Reload() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.store.open() {
		return errUpgrading
	}
	file, err := config.Load(d.opts.ConfigPath)
	if err != nil {
		return fmt.Errorf("config not reloaded, the running one stays:\n%w", err)
	}
	cfg, err := withDeclared(file, d.declared)
	if err != nil {
		return fmt.Errorf("config not reloaded, the running one stays: the apps CutoverApps declare do not fit it:\n%w", err)
	}
	if !reflect.DeepEqual(cfg.Admin, d.cfg.Admin) {
		return errors.New("config not reloaded: admin settings change only with a restart of cutover")
	}
	if !reflect.DeepEqual(cfg.Store, d.cfg.Store) {
		return errors.New("config not reloaded: store settings change only with a restart of cutover")
	}
	if !sameACME(cfg.ACME, d.cfg.ACME) {
		return errors.New("config not reloaded: acme settings change only with a restart of cutover")
	}
	if err := d.apply(cfg); err != nil {
		return fmt.Errorf("config not reloaded: %w", err)
	}
	d.file = file
	d.log.Info("config reloaded", "config", d.opts.ConfigPath)
	return nil
}

// apply makes cfg, already validated, the running config: the router's
// routes and listener settings, then the controller's apps (see
// controller.Reload: new apps start, changed ones take the new settings
// for their next rollout, removed ones stop). Listeners that cannot be
// bound change nothing. Callers hold d.mu.
func (d *Daemon) apply(cfg *config.Config) error {
	if err := d.router.SetRoutes(routes(cfg)); err != nil {
		return fmt.Errorf("the running config stays: %w", err)
	}
	d.router.SetServerOptions(serverOptions(cfg, d.log))
	if err := d.router.ReloadCertificates(); err != nil {
		d.log.Error("reload certificates: the previous ones stay", "err", err)
	}
	if err := d.ctl.Reload(cfg); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	d.cfg = cfg
	return nil
}

// Shutdown stops accepting admin requests, ends the streams of attached
// deploys (their rollouts stay recorded as in progress and resume at the
// next start), lets requests in flight finish, stops the replicas and
// closes the store.
func (d *Daemon) Shutdown(ctx context.Context) {
	d.closeAll(ctx)
}

func (d *Daemon) closeAll(ctx context.Context) {
	if d.gates != nil {
		d.gates.close()
	}
	if d.endStreams != nil {
		d.endStreams(errStopping)
	}
	if d.park != nil {
		// From here closed listeners are closed for real: after an
		// upgrade the new process accepts on the same sockets, and a
		// parked one would refuse its connections.
		d.park.Close()
	}
	if d.router != nil {
		_ = d.router.Shutdown(ctx)
	}
	if d.admin != nil {
		_ = d.admin.Shutdown(ctx)
	} else if d.adminLn != nil {
		d.adminLn.Close()
	}
	if d.kubes != nil {
		// Router-mode pods go on running for the next start to adopt.
		d.kubes.detach()
	}
	if d.stopGitops != nil {
		d.stopGitops()
	}
	if d.ctl != nil {
		d.ctl.Stop(ctx)
	}
	d.following.close()
	if d.kubes != nil {
		d.kubes.stop()
	}
	if err := d.store.release(); err != nil {
		d.log.Error("close store", "err", err)
	}
	if d.upg != nil {
		d.upg.Stop()
	}
}

// refuseWhileUpgrading answers 503 to admin calls that need the store
// while an upgrade has handed it over; health, metrics, the version and
// the upgrade route itself still answer.
func (d *Daemon) refuseWhileUpgrading(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") && r.URL.Path != "/v1/version" && r.URL.Path != "/v1/upgrade" && !d.store.open() {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "{\"error\": %q}\n", errUpgrading.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// routes derives the router's table from the config.
func routes(cfg *config.Config) []router.Route {
	var rs []router.Route
	for _, a := range cfg.Apps {
		rs = append(rs, router.Route{Listen: a.Listen, Hosts: a.Hosts, PathPrefix: a.PathPrefix, App: a.Name, TLS: routeTLS(a.TLS)})
		if bg := a.Strategy.BlueGreen; bg != nil && bg.PreviewListen != "" {
			rs = append(rs, router.Route{Listen: bg.PreviewListen, PathPrefix: "/", App: a.Name, Preview: true})
		}
	}
	return rs
}

// adminHosts are the names clients may use in the admin API's Host: the
// admin listener's host and admin.hosts.
func adminHosts(cfg *config.Config) []string {
	host, _, _ := net.SplitHostPort(cfg.Admin.Listen)
	return append([]string{host}, cfg.Admin.Hosts...)
}
