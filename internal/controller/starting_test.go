package controller_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/freeport"
	"github.com/cutover/cutover/internal/router"
	"github.com/cutover/cutover/internal/target/static"
)

// A call about an app of the config that is still being set up (its
// target connecting to a cluster, say) waits for it instead of answering
// that there is no such app; an app that is not in the config is not
// waited for.
func TestCallAboutAnAppStillBeingSetUpWaitsForIt(t *testing.T) {
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(up.Close)
	rt := router.New(router.Options{Logger: testLogger(t)})
	t.Cleanup(func() { _ = rt.Shutdown(context.Background()) })
	cfg, err := config.Parse("cutover.yaml", fmt.Appendf(nil, `apps:
  - name: web
    listen: 127.0.0.1:%d
    version: v1
    target: {static: {upstreams: [%q]}}
`, port, up.URL))
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	c := controller.New(controller.Options{Store: openStore(t), Router: rt, Logger: testLogger(t),
		NewTarget: func(config.App) (controller.Target, error) { close(entered); <-release; return static.New(), nil }})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Stop(ctx)
	})
	started := make(chan error, 1)
	go func() { started <- c.Start(cfg) }()
	<-entered

	answered := make(chan error, 1)
	go func() {
		_, err := c.Status("web")
		answered <- err
	}()
	if _, err := c.Status("api"); !errors.Is(err, controller.ErrNotFound) {
		t.Fatalf("status of an app not in the config: %v, want ErrNotFound at once", err)
	}
	select {
	case err := <-answered:
		t.Fatalf("status of web answered %v while web was still being set up", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("status of web once set up: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("status of web did not answer once web was set up")
	}
	if err := <-started; err != nil {
		t.Fatal(err)
	}
}
