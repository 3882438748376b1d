package cli

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/daemon"
)

// drainTimeout bounds a shutdown: requests in flight get this long.
const drainTimeout = 30 * time.Second

func newServe(g *globals) *cobra.Command {
	var cfgPath, dataDir, logLevel string
	cmd := &cobra.Command{
		Use:   "serve -c cutover.yaml [--data-dir DIR]",
		Short: "Run the router and the admin API for the apps of a config file",
		Long: `Run the router (one listener per app address) and the admin API. On first
start each app's configured version is deployed to the blue slot; after a
restart the recorded active revision is served again.
SIGHUP (or "cutover reload") re-reads the config; an invalid one is refused and
the running one stays. SIGINT/SIGTERM drain requests in flight and stop; a
rollout in progress stays recorded as such and resumes at the next start, as
after kill -9.
SIGUSR2 (or "cutover upgrade") starts a new process of the binary at the same
path and hands it the listeners: it restarts the replicas, takes over once they
are ready, and this process drains and exits 0. <data-dir>/cutover.pid holds
the PID of the process that serves.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageErrorf("--log-level must be debug, info, warn or error")
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			d, err := daemon.Start(daemon.Options{ConfigPath: cfgPath, DataDir: dataDir, Version: version(), Logger: log, Upgrades: true})
			if err != nil {
				return err
			}
			sig := make(chan os.Signal, 2)
			signal.Notify(sig, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR2)
			defer signal.Stop(sig)
			shutdown := func() {
				ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
				defer cancel()
				d.Shutdown(ctx)
			}
			for {
				select {
				case s := <-sig:
					switch s {
					case syscall.SIGHUP:
						if err := d.Reload(); err != nil {
							log.Error("reload refused", "err", err)
						}
						continue
					case syscall.SIGUSR2:
						if err := d.Upgrade(); err != nil {
							log.Error("upgrade refused", "err", err)
						}
						continue
					}
					log.Info("shutting down: draining requests in flight", "signal", s.String())
					shutdown()
					return nil
				case <-d.Upgraded():
					log.Info("upgraded: a new process serves; draining requests in flight", "pid", os.Getpid())
					shutdown()
					return nil
				case <-cmd.Context().Done():
					shutdown()
					return nil
				case err := <-d.Done():
					shutdown()
					return err
				}
			}
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "cutover.yaml", "config file")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "state and replica logs (default: .cutover beside the config)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}
