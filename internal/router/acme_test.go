package router

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// pebble is a running Pebble ACME test CA.
type pebble struct {
	directory string
	// tlsRoots verify Pebble's own HTTPS server.
	tlsRoots *x509.CertPool
	// issuer is the root that Pebble's certificates chain to.
	issuer *x509.Certificate
}

// startPebble builds and starts Pebble with challenges always valid, and
// stops it when the test ends.
func startPebble(t *testing.T) *pebble {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the ACME test builds Pebble with the go command: %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "pebble")
	buildCtx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(buildCtx, goTool, "build", "-o", bin, "github.com/letsencrypt/pebble/v2/cmd/pebble").CombinedOutput(); err != nil {
		t.Fatalf("build pebble: %v\n%s", err, out)
	}

	serverCert := writeCert(t, dir, "localhost", "127.0.0.1")
	listen, management := freeAddr(t), freeAddr(t)
	config := map[string]any{"pebble": map[string]any{
		"listenAddress":                  listen,
		"managementListenAddress":        management,
		"certificate":                    serverCert.files.CertFile,
		"privateKey":                     serverCert.files.KeyFile,
		"httpPort":                       5002,
		"tlsPort":                        5001,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"profiles":                       map[string]any{"default": map[string]any{"description": "test", "validityPeriod": 7776000}},
	}}
	configJSON, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(configPath, configJSON, 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, stop := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-config", configPath)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_WFE_NONCEREJECT=0")
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		stop()
		t.Fatalf("start pebble: %v", err)
	}
	t.Cleanup(func() {
		stop()
		cmd.Wait()
		if t.Failed() {
			t.Logf("pebble output:\n%s", out.String())
		}
	})

	p := &pebble{directory: "https://" + listen + "/dir", tlsRoots: x509.NewCertPool()}
	p.tlsRoots.AddCert(serverCert.cert)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.tlsRoots}}}
	defer client.CloseIdleConnections()
	var rootPEM []byte
	for deadline := time.Now().Add(10 * time.Second); ; {
		rootPEM, err = fetch(client, "https://"+management+"/roots/0")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not serve its root within 10 s: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	block, _ := pem.Decode(rootPEM)
	if block == nil {
		t.Fatalf("pebble root is not PEM: %q", rootPEM)
	}
	if p.issuer, err = x509.ParseCertificate(block.Bytes); err != nil {
		t.Fatal(err)
	}
	return p
}

func fetch(client *http.Client, url string) ([]byte, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// lockedBuffer is a process's output, written and read concurrently.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestACMERouteGetsItsCertificateFromTheCA(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs Pebble")
	}
	ca := startPebble(t)
	httpListen := freeAddr(t)
	acmeOpts := &ACMEOptions{Directory: ca.directory, Email: "ops@acme.test", CacheDir: t.TempDir(), RootCAs: ca.tlsRoots, HTTPListen: httpListen}
	_, addr := tlsRouter(t, Options{ACME: acmeOpts}, RouteTLS{ACME: true}, "acme.test")

	client := tlsClient(t, addr, "acme.test", ca.issuer)
	client.Timeout = 60 * time.Second
	leaf, _, _ := servedCert(t, client, "https://acme.test/")
	if !slices.Contains(leaf.DNSNames, "acme.test") || !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
		t.Errorf("got a certificate for %v issued by %q, want one for acme.test issued by Pebble", leaf.DNSNames, leaf.Issuer.CommonName)
	}
	// The client verified the chain up to Pebble's root; a host without an
	// ACME route gets no certificate from the CA.
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "other.test", RootCAs: client.Transport.(*http.Transport).TLSClientConfig.RootCAs})
	if err == nil {
		conn.Close()
		t.Error("a handshake for a host without an ACME route succeeded")
	}

	// The HTTP listener answers challenges itself and sends every other
	// request to https.
	noFollow := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	_, port, _ := net.SplitHostPort(addr)
	resp, _ := do(t, noFollow, mustRequest(t, http.MethodGet, "http://"+httpListen+"/page", "acme.test"))
	if want := "https://acme.test:" + port + "/page"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("HTTP listener: got %s Location %q, want 308 %q", resp.Status, resp.Header.Get("Location"), want)
	}
	resp, _ = do(t, noFollow, mustRequest(t, http.MethodGet, "http://"+httpListen+"/.well-known/acme-challenge/unknown-token", "acme.test"))
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown challenge token: got %s, want 404 from the ACME manager", resp.Status)
	}
}
