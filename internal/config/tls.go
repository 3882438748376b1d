package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
)

func (t *TLS) validate(d *document, path string, a *App, acme *ACME) {
	if len(t.Certificates) == 0 && !t.ACME {
		d.add(path, "add certificates: [{certFile: cert.pem, keyFile: key.pem}], or acme: true to get them automatically",
			"no certificates and acme is off")
	}
	for i, c := range t.Certificates {
		c.validate(d, fmt.Sprintf("%s.certificates[%d]", path, i))
	}
	if t.ACME {
		// A block without an email is reported once, at acme.email.
		if acme == nil {
			d.add(path+".acme", "add a top-level acme block, such as acme: {email: ops@example.com}",
				"acme: true needs a top-level acme block with an email")
		}
		if len(a.Hosts) == 0 {
			d.add(path+".acme", "name the app's hosts, such as hosts: [www.example.com]; certificates are issued for them",
				"acme: true needs the app to name its hosts")
		}
	}
	if t.RedirectFrom != "" {
		if _, err := parseAddress(t.RedirectFrom); err != nil {
			d.addError(path+".redirectFrom", err)
		}
	}
}

// validate checks that both files exist and make a key pair, pointing at
// the file that is wrong.
func (c *Certificate) validate(d *document, path string) {
	missing := false
	for _, f := range []struct{ field, file, example string }{
		{"certFile", c.CertFile, "/etc/cutover/tls/cert.pem"},
		{"keyFile", c.KeyFile, "/etc/cutover/tls/key.pem"},
	} {
		at := path + "." + f.field
		if f.file == "" {
			d.add(at, fmt.Sprintf("write the PEM file's path, such as %s: %s", f.field, f.example), "missing")
			missing = true
			continue
		}
		if _, err := os.Stat(f.file); err != nil {
			d.add(at, "check the path; a relative one starts from the config file's directory", "cannot read %s: %v", f.file, unwrapPath(err))
			missing = true
		}
	}
	if missing {
		return
	}
	if _, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile); err != nil {
		if certErr := checkCertFile(c.CertFile); certErr != nil {
			d.add(path+".certFile", "give a PEM file holding the certificate chain, leaf first", "%s: %v", c.CertFile, certErr)
			return
		}
		d.add(path+".keyFile", "give the PEM private key of the certificate in certFile", "%s: %v", c.KeyFile, err)
	}
}

// checkCertFile reports whether file holds at least one PEM certificate
// and every one of them parses.
func checkCertFile(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return unwrapPath(err)
	}
	found := false
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		found = true
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("a certificate does not parse: %w", err)
		}
	}
	if !found {
		return errors.New("no PEM certificate in it")
	}
	return nil
}

// unwrapPath drops the path from a *PathError, whose message already
// names the file.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// validate checks the top-level acme block; used reports whether an app
// has tls.acme, which makes the email required.
func (a *ACME) validate(d *document, used bool) {
	if used && a.Email == "" {
		d.add("acme.email", "write the address the CA may warn about expiring certificates, such as email: ops@example.com", "missing")
	}
	a.validateDirectory(d)
	if a.RootCAs != "" {
		if _, err := a.RootCAPool(); err != nil {
			d.add("acme.rootCAs", "give a PEM file of CA certificates, or leave rootCAs out to trust the system's", "%v", err)
		}
	}
	if a.HTTPListen != "" {
		if _, err := parseAddress(a.HTTPListen); err != nil {
			d.addError("acme.httpListen", err)
		}
	}
}

func (a *ACME) validateDirectory(d *document) {
	hint := "write an absolute https URL such as " + DefaultACMEDirectory + " (http only on 127.0.0.1 or localhost, for a test CA)"
	u, err := url.Parse(a.Directory)
	switch {
	case a.Directory == "":
		d.add("acme.directory", hint, "empty")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		d.add("acme.directory", hint, "%q is not an absolute https URL", a.Directory)
	case u.Scheme == "http" && u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost":
		d.add("acme.directory", hint, "%q uses plain http off this machine", a.Directory)
	}
}

// RootCAPool reads RootCAs, a PEM file of CA certificates; with no
// RootCAs it returns nil, which means the system's roots.
func (a *ACME) RootCAPool() (*x509.CertPool, error) {
	if a.RootCAs == "" {
		return nil, nil
	}
	data, err := os.ReadFile(a.RootCAs)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", a.RootCAs, unwrapPath(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", a.RootCAs)
	}
	return pool, nil
}
