package router

import (
	"io"
	"net/http"
	"testing"
)

// After an accepted upgrade the connection is the app's: bytes that would
// be a refused head on an HTTP connection go through unchecked.
func TestAnUpgradedConnectionCarriesBytesThatWouldBeARefusedHead(t *testing.T) {
	const tunneled = "POST / HTTP/1.0\r\n"
	engines := map[string]ServerOptions{
		"net-http":   {DisableFastPath: true},
		"goroutine":  {DisableEventLoop: true},
		"event-loop": {},
	}
	for name, so := range engines {
		t.Run(name, func(t *testing.T) {
			app := newSlotWith(t, "blue", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { echoUpgrade(w, "") }))
			const listen = "127.0.0.1:0"
			r := startRouter(t, Options{Server: so}, Route{Listen: listen, App: "web"})
			r.SetBackend("web", false, app.backend)
			conn, br, resp := dialUpgrade(t, r.Addr(listen).String())
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("upgrade answered %s, want 101", resp.Status)
			}
			io.WriteString(conn, tunneled+"Transfer-Encoding: chunked\r\n\r\n")
			if line, err := br.ReadString('\n'); err != nil || line != tunneled {
				t.Fatalf("echo over the tunnel: %q, %v; want %q", line, err, tunneled)
			}
		})
	}
}
