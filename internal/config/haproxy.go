package config

import (
	"net"
	"regexp"
	"strconv"
	"strings"
)

// HAProxyTraffic moves traffic by driving an HAProxy the team already
// runs through its runtime API: the addresses, weights and states of the
// servers blue1..N and green1..N of one backend, which the team declares
// with server-template lines; never by a reload.
type HAProxyTraffic struct {
	// Socket is the runtime API: the path of HAProxy's stats socket
	// (stats socket /run/haproxy/admin.sock level admin), or host:port
	// for one on TCP (stats socket ipv4@127.0.0.1:9999 level admin).
	Socket string `yaml:"socket"`
	// Backend is the backend whose blue and green servers cutover sets.
	Backend string `yaml:"backend"`
	// PreviewBackend, optional, is a second backend with servers of the
	// same names, pointed at the new slot once it is ready, for tests
	// before the flip.
	PreviewBackend string `yaml:"previewBackend"`
}

// haproxyName is what HAProxy accepts as a proxy's name.
var haproxyName = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

const haproxyExample = "haproxy: {socket: /run/haproxy/admin.sock, backend: web}"

func (h *HAProxyTraffic) validate(d *document, path string) {
	switch {
	case h.Socket == "":
		d.add(path+".socket", "write the path of HAProxy's stats socket (level admin), such as "+haproxyExample+", or its host:port, such as socket: 127.0.0.1:9999", "missing")
	case strings.HasPrefix(h.Socket, "/"):
	case strings.Contains(h.Socket, "/"):
		d.add(path+".socket", "write the stats socket's absolute path, such as socket: /run/haproxy/admin.sock", "%q is a relative path", h.Socket)
	default:
		if _, port, err := net.SplitHostPort(h.Socket); err != nil || !validPort(port) {
			d.add(path+".socket", "write the stats socket's absolute path, such as socket: /run/haproxy/admin.sock, or the host:port it listens on, such as socket: 127.0.0.1:9999",
				"%q is neither a path nor a host:port", h.Socket)
		}
	}
	for _, b := range []struct{ key, name string }{{"backend", h.Backend}, {"previewBackend", h.PreviewBackend}} {
		switch {
		case b.name == "" && b.key == "backend":
			d.add(path+".backend", "name the backend whose blue and green servers cutover sets, such as "+haproxyExample, "missing")
		case b.name != "" && !haproxyName.MatchString(b.name):
			d.add(path+"."+b.key, "use the backend's name as haproxy.cfg writes it: letters, digits, '-', '_', '.' and ':'", "%q is not a backend name", b.name)
		}
	}
	if h.PreviewBackend != "" && h.PreviewBackend == h.Backend {
		d.add(path+".previewBackend", "give the preview a backend of its own, such as previewBackend: web-preview, or leave it out", "the same backend as backend")
	}
}

// validPort reports whether s is a TCP port number from 1 to 65535.
func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}
