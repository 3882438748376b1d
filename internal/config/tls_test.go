package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeKeyPair writes a fresh self-signed certificate for host and its key
// into dir as NAME.pem and NAME-key.pem.
func writeKeyPair(t *testing.T, dir, name, host string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IsCA:         true,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestParseAcceptsHTTPSAppsAndResolvesTheirFilesBesideTheConfig(t *testing.T) {
	dir := t.TempDir()
	writeKeyPair(t, dir, "web", "www.example.com")
	ca, _ := writeKeyPair(t, dir, "ca", "test-ca")
	src := `server:
  trustedProxies: [10.0.0.0/8, 192.168.1.5]
  accessLog: {enabled: true, sample: 0.25}
acme:
  directory: "http://127.0.0.1:14000/dir"
  email: ops@example.com
  rootCAs: ca.pem
  httpListen: "127.0.0.1:8079"
apps:
  - name: web
    listen: 127.0.0.1:8443
    hosts: [www.example.com]
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    tls:
      certificates: [{certFile: web.pem, keyFile: web-key.pem}]
      redirectFrom: "127.0.0.1:8080"
  - name: api
    listen: 127.0.0.1:8443
    hosts: [api.example.com]
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9001"]}}
    upstream: {protocol: h2c, loadBalancing: leastRequests, retries: 0}
    tls:
      acme: true
      redirectFrom: "127.0.0.1:8080"
`
	c, err := Parse(filepath.Join(dir, "cutover.yaml"), []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	web := c.Apps[0].TLS
	want := []Certificate{{CertFile: filepath.Join(dir, "web.pem"), KeyFile: filepath.Join(dir, "web-key.pem")}}
	if web == nil || !reflect.DeepEqual(web.Certificates, want) {
		t.Errorf("web tls = %+v, want certificates %+v", web, want)
	}
	if c.ACME.RootCAs != ca || c.ACME.CacheDir != "" {
		t.Errorf("acme rootCAs %q, cacheDir %q; want %q and empty (the daemon's data dir)", c.ACME.RootCAs, c.ACME.CacheDir, ca)
	}
	if pool, err := c.ACME.RootCAPool(); err != nil || pool == nil {
		t.Errorf("RootCAPool: %v, %v", pool, err)
	}
	if u := c.Apps[1].Upstream; u.Protocol != "h2c" || u.LoadBalancing != "leastRequests" || *u.Retries != 0 || *u.PassiveHealth.ConsecutiveFailures != 3 {
		t.Errorf("api upstream = %+v; want the written values and the default passive health", u)
	}
	gotPrefixes := c.Server.TrustedPrefixes()
	wantPrefixes := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.5/32")}
	if !reflect.DeepEqual(gotPrefixes, wantPrefixes) {
		t.Errorf("TrustedPrefixes = %v, want %v", gotPrefixes, wantPrefixes)
	}
	if *c.Server.AccessLog.Sample != 0.25 || c.Server.ReadHeaderTimeout != Duration(10*time.Second) {
		t.Errorf("server = %+v; want sample 0.25 and the default readHeaderTimeout", c.Server)
	}
}

func TestACMEDirectoryDefaultsToLetsEncrypt(t *testing.T) {
	src := `acme: {email: ops@example.com}
apps:
  - name: web
    listen: 127.0.0.1:8443
    hosts: [www.example.com]
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    tls: {acme: true}
`
	c, err := Parse("/etc/cutover/cutover.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.ACME.Directory != "https://acme-v02.api.letsencrypt.org/directory" {
		t.Errorf("acme.directory = %q, want Let's Encrypt's", c.ACME.Directory)
	}
}

func TestCertificateProblemsNameTheFileAtFault(t *testing.T) {
	dir := t.TempDir()
	writeKeyPair(t, dir, "web", "www.example.com")
	writeKeyPair(t, dir, "other", "other.example.com")
	if err := os.WriteFile(filepath.Join(dir, "garbage.pem"), []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, cert, key, want string
	}{
		{"certificate file without PEM", "garbage.pem", "web-key.pem", "certificates[0].certFile: " + filepath.Join(dir, "garbage.pem") + ": no PEM certificate in it"},
		{"key of another certificate", "web.pem", "other-key.pem", "certificates[0].keyFile: " + filepath.Join(dir, "other-key.pem") + ": tls: private key does not match public key"},
		{"key file that is not a key", "web.pem", "garbage.pem", "certificates[0].keyFile: " + filepath.Join(dir, "garbage.pem")},
		{"missing key file", "web.pem", "nope.pem", "certificates[0].keyFile: cannot read " + filepath.Join(dir, "nope.pem")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := `apps:
  - name: web
    listen: 127.0.0.1:8443
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    tls:
      certificates: [{certFile: ` + tt.cert + `, keyFile: ` + tt.key + `}]
`
			_, err := Parse(filepath.Join(dir, "cutover.yaml"), []byte(src))
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("Parse error:\n%v\nwant one problem containing %q", err, tt.want)
			}
		})
	}
}
