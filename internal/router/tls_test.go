package router

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCert is a self-signed certificate written to files.
type testCert struct {
	files CertFiles
	cert  *x509.Certificate
}

// writeCert creates a self-signed certificate for names (DNS names, or IP
// addresses) in dir, as NAME.pem and NAME-key.pem after the first name.
func writeCert(t *testing.T, dir string, names ...string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0]},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	base := strings.ReplaceAll(names[0], "*", "wild")
	files := CertFiles{CertFile: filepath.Join(dir, base+".pem"), KeyFile: filepath.Join(dir, base+"-key.pem")}
	writePEM(t, files.CertFile, "CERTIFICATE", der)
	writePEM(t, files.KeyFile, "PRIVATE KEY", keyDER)
	return testCert{files: files, cert: cert}
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsClient trusts roots, asks for serverName and dials addr whatever
// the URL says, so that test host names need no resolver.
func tlsClient(t *testing.T, addr, serverName string, roots ...*x509.Certificate) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	for _, c := range roots {
		pool.AddCert(c)
	}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: serverName},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// servedCert returns the leaf certificate the server presented, whether
// the connection was reused and the HTTP major version.
func servedCert(t *testing.T, client *http.Client, url string) (leaf *x509.Certificate, reused bool, protoMajor int) {
	t.Helper()
	ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, body := do(t, client, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %q", url, resp.Status, body)
	}
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatalf("GET %s was not served over TLS", url)
	}
	return resp.TLS.PeerCertificates[0], reused, resp.ProtoMajor
}

// tlsRouter serves app "web" on a TLS listener with certs and returns the
// router and the listener's address.
func tlsRouter(t *testing.T, opts Options, tlsOpts RouteTLS, hosts ...string) (*Router, string) {
	t.Helper()
	const listen = "127.0.0.1:0"
	r := startRouter(t, opts, Route{Listen: listen, App: "web", Hosts: hosts, TLS: &tlsOpts})
	r.SetBackend("web", false, newSlot(t, "blue").backend)
	return r, r.Addr(listen).String()
}

func TestTLSListenerServesTheCertificateMatchingSNI(t *testing.T) {
	dir := t.TempDir()
	a, b, wild := writeCert(t, dir, "a.test"), writeCert(t, dir, "b.test"), writeCert(t, dir, "*.w.test")
	_, addr := tlsRouter(t, Options{}, RouteTLS{Certificates: []CertFiles{a.files, b.files, wild.files}})

	for _, tc := range []struct {
		name string
		want testCert
	}{
		{"a.test", a},
		{"b.test", b},
		{"x.w.test", wild},
	} {
		leaf, _, _ := servedCert(t, tlsClient(t, addr, tc.name, tc.want.cert), "https://"+tc.name+"/")
		if !leaf.Equal(tc.want.cert) {
			t.Errorf("SNI %s got the certificate for %v, want %v", tc.name, leaf.DNSNames, tc.want.cert.DNSNames)
		}
	}

	// A name no certificate has gets the first one; only a client that
	// skips verification accepts it.
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "other.test", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().PeerCertificates[0]; !got.Equal(a.cert) {
		t.Errorf("unknown SNI got the certificate for %v, want the first one (a.test)", got.DNSNames)
	}
}

func TestTLSListenerNegotiatesHTTP2(t *testing.T) {
	a := writeCert(t, t.TempDir(), "a.test")
	_, addr := tlsRouter(t, Options{}, RouteTLS{Certificates: []CertFiles{a.files}})
	_, _, major := servedCert(t, tlsClient(t, addr, "a.test", a.cert), "https://a.test/")
	if major != 2 {
		t.Errorf("response over HTTP/%d, want HTTP/2", major)
	}
}

func TestReloadCertificatesServesNewCertificateAndKeepsOpenConnections(t *testing.T) {
	dir := t.TempDir()
	old := writeCert(t, dir, "a.test")
	r, addr := tlsRouter(t, Options{}, RouteTLS{Certificates: []CertFiles{old.files}})
	kept := tlsClient(t, addr, "a.test", old.cert)
	if leaf, _, _ := servedCert(t, kept, "https://a.test/"); !leaf.Equal(old.cert) {
		t.Fatal("first request did not get the certificate on disk")
	}

	renewed := writeCert(t, dir, "a.test") // same files, new certificate
	if err := r.ReloadCertificates(); err != nil {
		t.Fatal(err)
	}
	leaf, reused, _ := servedCert(t, kept, "https://a.test/")
	if !reused || !leaf.Equal(old.cert) {
		t.Errorf("kept-alive connection: reused %v; want its next request served on the same connection", reused)
	}
	if leaf, _, _ := servedCert(t, tlsClient(t, addr, "a.test", renewed.cert), "https://a.test/"); !leaf.Equal(renewed.cert) {
		t.Error("a new connection after ReloadCertificates did not get the renewed certificate")
	}
}

func TestReloadCertificatesWithBrokenFileChangesNothingAndNamesIt(t *testing.T) {
	dir := t.TempDir()
	a := writeCert(t, dir, "a.test")
	r, addr := tlsRouter(t, Options{}, RouteTLS{Certificates: []CertFiles{a.files}})
	if err := os.WriteFile(a.files.CertFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := r.ReloadCertificates()
	if err == nil || !strings.Contains(err.Error(), a.files.CertFile) {
		t.Fatalf("ReloadCertificates with a broken file = %v, want an error naming %s", err, a.files.CertFile)
	}
	if leaf, _, _ := servedCert(t, tlsClient(t, addr, "a.test", a.cert), "https://a.test/"); !leaf.Equal(a.cert) {
		t.Error("after a failed reload the listener no longer serves the loaded certificate")
	}
}

func TestRedirectFromAnswers308ToTheSameURLOverHTTPS(t *testing.T) {
	a := writeCert(t, t.TempDir(), "a.test")
	from := freeAddr(t)
	_, addr := tlsRouter(t, Options{}, RouteTLS{Certificates: []CertFiles{a.files}, RedirectFrom: from}, "a.test")
	_, port, _ := net.SplitHostPort(addr)

	client := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, _ := do(t, client, mustRequest(t, http.MethodGet, "http://"+from+"/docs/page?q=1&r=2", "a.test"))
	want := "https://a.test:" + port + "/docs/page?q=1&r=2"
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("got %s Location %q, want 308 %q", resp.Status, resp.Header.Get("Location"), want)
	}
	resp, _ = do(t, client, mustRequest(t, http.MethodGet, "http://"+from+"/", "elsewhere.test"))
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("redirect for a host no route has: %s, want 404", resp.Status)
	}
}

func TestSetRoutesSwitchesAKeptListenerBetweenHTTPAndHTTPS(t *testing.T) {
	a := writeCert(t, t.TempDir(), "a.test")
	const listen = "127.0.0.1:0"
	r := startRouter(t, Options{}, Route{Listen: listen, App: "web"})
	r.SetBackend("web", false, newSlot(t, "blue").backend)
	addr := r.Addr(listen).String()
	if got := get(t, http.DefaultClient, "http://"+addr+"/", ""); got.status != http.StatusOK {
		t.Fatalf("plain HTTP before the switch: %d", got.status)
	}

	if err := r.SetRoutes([]Route{{Listen: listen, App: "web", TLS: &RouteTLS{Certificates: []CertFiles{a.files}}}}); err != nil {
		t.Fatal(err)
	}
	if got := r.Addr(listen).String(); got != addr {
		t.Fatalf("listener moved from %s to %s", addr, got)
	}
	if leaf, _, _ := servedCert(t, tlsClient(t, addr, "a.test", a.cert), "https://a.test/"); !leaf.Equal(a.cert) {
		t.Error("after the switch the listener does not serve its certificate")
	}
}

func TestSetRoutesRejectsInvalidTLS(t *testing.T) {
	a := writeCert(t, t.TempDir(), "a.test")
	missing := CertFiles{CertFile: filepath.Join(t.TempDir(), "missing.pem"), KeyFile: a.files.KeyFile}
	for _, tc := range []struct {
		name   string
		routes []Route
		want   string
	}{
		{"TLS and plain on one listener", []Route{
			{Listen: "127.0.0.1:0", App: "web", Hosts: []string{"a.test"}, TLS: &RouteTLS{Certificates: []CertFiles{a.files}}},
			{Listen: "127.0.0.1:0", App: "api", Hosts: []string{"b.test"}},
		}, "with and without TLS"},
		{"no certificates", []Route{{Listen: "127.0.0.1:0", App: "web", TLS: &RouteTLS{}}}, "without certificates"},
		{"ACME without a CA", []Route{{Listen: "127.0.0.1:0", App: "web", Hosts: []string{"a.test"}, TLS: &RouteTLS{ACME: true}}}, "no ACME CA"},
		{"missing file", []Route{{Listen: "127.0.0.1:0", App: "web", TLS: &RouteTLS{Certificates: []CertFiles{missing}}}}, missing.CertFile},
		{"redirect onto a route listener", []Route{
			{Listen: "127.0.0.1:0", App: "web", TLS: &RouteTLS{Certificates: []CertFiles{a.files}, RedirectFrom: "127.0.0.1:1"}},
			{Listen: "127.0.0.1:1", App: "api"},
		}, "also the listen address"},
	} {
		r := startRouter(t, Options{})
		err := r.SetRoutes(tc.routes)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: SetRoutes = %v, want an error containing %q", tc.name, err, tc.want)
		}
		if r.Addr("127.0.0.1:0") != nil {
			t.Errorf("%s: a rejected route table bound a listener", tc.name)
		}
	}
}
