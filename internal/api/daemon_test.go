package api_test

import (
	"testing"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/daemon/daemontest"
)

// admin is a real cutover serving one app "web" and a client of its API.
type admin struct {
	*daemontest.Daemon
	client *api.Client
}

// startAdmin starts a cutover daemon; adminExtra adds fields to its admin
// block (such as a token).
func startAdmin(t *testing.T, adminExtra string) *admin {
	t.Helper()
	d := daemontest.Start(t, daemontest.Options{Admin: adminExtra})
	return &admin{Daemon: d, client: &api.Client{Base: d.URL}}
}
