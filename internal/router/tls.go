package router

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/crypto/acme"
)

// RouteTLS makes a route's listener serve HTTPS. Every route on one
// listener must have TLS, or none.
type RouteTLS struct {
	// Certificates are PEM files served by SNI: a client gets the
	// certificate whose DNS names (wildcards included) match the server
	// name it asks for, else the listener's first certificate.
	// ReloadCertificates reads them again.
	Certificates []CertFiles
	// ACME obtains and renews certificates for the route's Hosts from
	// the router's ACME CA (Options.ACME, required), answering its
	// TLS-ALPN-01 challenges on this listener.
	ACME bool
	// RedirectFrom, when set, is a plain HTTP address (such as ":80")
	// whose requests for the route's hosts are answered with 308 to the
	// same URL on this listener over https.
	RedirectFrom string
}

// CertFiles names one PEM certificate chain and its private key.
type CertFiles struct {
	CertFile, KeyFile string
}

// validateTLS checks each route's TLS settings on their own.
func validateTLS(routes []Route, acme *ACMEOptions) error {
	for i, rt := range routes {
		t := rt.TLS
		if t == nil {
			continue
		}
		if len(t.Certificates) == 0 && !t.ACME {
			return fmt.Errorf("route %d of app %s has TLS without certificates; give certificate files or enable ACME", i, rt.App)
		}
		for _, c := range t.Certificates {
			if c.CertFile == "" || c.KeyFile == "" {
				return fmt.Errorf("route %d of app %s: a certificate needs both a certificate file and a key file (have %q and %q)",
					i, rt.App, c.CertFile, c.KeyFile)
			}
		}
		if t.ACME && acme == nil {
			return fmt.Errorf("route %d of app %s uses ACME, but no ACME CA is configured; configure acme or give certificate files", i, rt.App)
		}
		if t.ACME && len(rt.Hosts) == 0 {
			return fmt.Errorf("route %d of app %s uses ACME but names no hosts; list the hosts to get certificates for", i, rt.App)
		}
	}
	return nil
}

// certTable is every TLS listener's certificates. Like the snapshot it is
// built whole and swapped in, so a handshake reads one consistent table.
type certTable struct {
	listeners map[string]*listenerCerts // by Route.Listen
	// acmeHosts are the hosts of every ACME route, the ACME host policy.
	acmeHosts map[string]bool
}

// listenerCerts are the certificates of one TLS listener.
type listenerCerts struct {
	exact    map[string]*tls.Certificate // by lower-case DNS name
	wildcard map[string]*tls.Certificate // "*.example.com" by "example.com"
	first    *tls.Certificate
	acme     bool
}

// loadCertificates reads every certificate file of routes. The error names
// the file that failed.
func loadCertificates(routes []Route) (*certTable, error) {
	t := &certTable{listeners: make(map[string]*listenerCerts), acmeHosts: make(map[string]bool)}
	loaded := make(map[CertFiles]*tls.Certificate)
	for _, rt := range routes {
		if rt.TLS == nil {
			continue
		}
		lc := t.listeners[rt.Listen]
		if lc == nil {
			lc = &listenerCerts{exact: make(map[string]*tls.Certificate), wildcard: make(map[string]*tls.Certificate)}
			t.listeners[rt.Listen] = lc
		}
		if rt.TLS.ACME {
			lc.acme = true
			for _, h := range rt.Hosts {
				t.acmeHosts[normalHost(h)] = true
			}
		}
		for _, f := range rt.TLS.Certificates {
			cert, ok := loaded[f]
			if !ok {
				var err error
				if cert, err = loadCertificate(f); err != nil {
					return nil, fmt.Errorf("app %s: %w", rt.App, err)
				}
				loaded[f] = cert
			}
			lc.add(cert)
		}
	}
	return t, nil
}

func loadCertificate(f CertFiles) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(f.CertFile)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("read certificate key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate %s with key %s: %w; check that both are PEM and belong together", f.CertFile, f.KeyFile, err)
	}
	if len(cert.Leaf.DNSNames) == 0 && len(cert.Leaf.IPAddresses) == 0 {
		return nil, fmt.Errorf("certificate %s names no DNS name or IP address; clients would reject it", f.CertFile)
	}
	return &cert, nil
}

// add registers cert under its names; the first certificate to claim a
// name keeps it.
func (lc *listenerCerts) add(cert *tls.Certificate) {
	if lc.first == nil {
		lc.first = cert
	}
	names := slices.Clone(cert.Leaf.DNSNames)
	for _, ip := range cert.Leaf.IPAddresses {
		names = append(names, ip.String())
	}
	for _, n := range names {
		n = strings.ToLower(n)
		m, key := lc.exact, n
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			m, key = lc.wildcard, rest
		}
		if _, taken := m[key]; !taken {
			m[key] = cert
		}
	}
}

// match returns the certificate for server name, or the first one.
func (lc *listenerCerts) match(name string) *tls.Certificate {
	if c, ok := lc.exact[name]; ok {
		return c
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		if c, ok := lc.wildcard[parent]; ok {
			return c
		}
	}
	return lc.first
}

// getCertificate returns the tls.Config.GetCertificate of the TLS listener
// listen: an ACME host (or an ACME challenge) is answered by the ACME
// manager, any other name by the listener's certificate files.
func (r *Router) getCertificate(listen string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		table := r.certs.Load()
		lc := table.listeners[listen]
		if lc == nil {
			return nil, fmt.Errorf("router: listener %s has no certificates", listen)
		}
		name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
		if lc.acme && r.acme != nil && (table.acmeHosts[name] || slices.Contains(hello.SupportedProtos, acme.ALPNProto)) {
			return r.acme.GetCertificate(hello)
		}
		if c := lc.match(name); c != nil {
			return c, nil
		}
		return nil, fmt.Errorf("router: no certificate for %q on listener %s", hello.ServerName, listen)
	}
}

// ReloadCertificates reads every route's certificate files again and swaps
// them in for new TLS handshakes; open connections keep theirs. On any
// error nothing changes and the error names the file.
func (r *Router) ReloadCertificates() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("router: ReloadCertificates after Shutdown")
	}
	table, err := loadCertificates(r.routes)
	if err != nil {
		return fmt.Errorf("router: certificates not reloaded, the loaded ones stay: %w", err)
	}
	r.certs.Store(table)
	return nil
}
