package router

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// ACMEOptions configure certificates obtained from an ACME CA for routes
// with TLS.ACME. Certificates are requested on the first handshake for a
// host and renewed before they expire.
type ACMEOptions struct {
	// Directory is the CA's directory URL; empty means Let's Encrypt.
	Directory string
	// Email is the contact address given to the CA; it may be empty.
	Email string
	// CacheDir keeps the account key and certificates across restarts;
	// empty keeps them in memory only, so every start asks the CA again.
	CacheDir string
	// RootCAs verify the CA's server; nil means the system roots.
	RootCAs *x509.CertPool
	// HTTPListen, when set, is a plain HTTP address (such as ":80") that
	// answers the CA's HTTP-01 challenges and redirects every other
	// request for an ACME host to https, like RouteTLS.RedirectFrom.
	HTTPListen string
}

// acmeChallengePrefix is the path of HTTP-01 challenges.
const acmeChallengePrefix = "/.well-known/acme-challenge/"

// newACMEManager returns the manager that obtains certificates for o. It
// asks the CA only for hosts of the routes currently set.
func (r *Router) newACMEManager(o *ACMEOptions) *autocert.Manager {
	client := &acme.Client{DirectoryURL: o.Directory}
	if o.RootCAs != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}
		client.HTTPClient = &http.Client{Transport: t}
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Email:      o.Email,
		Client:     client,
		HostPolicy: r.acmeHostPolicy,
	}
	if o.CacheDir != "" {
		m.Cache = autocert.DirCache(o.CacheDir)
	}
	return m
}

// acmeHostPolicy lets the ACME manager request certificates only for the
// hosts of routes with TLS.ACME, so a client cannot make it ask the CA
// for arbitrary names.
func (r *Router) acmeHostPolicy(_ context.Context, host string) error {
	if r.certs.Load().acmeHosts[strings.ToLower(host)] {
		return nil
	}
	return fmt.Errorf("router: %q is not a host of a route with ACME", host)
}
