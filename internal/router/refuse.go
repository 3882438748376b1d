package router

import (
	"strings"

	"github.com/cutover/cutover/internal/httpwire"
)

// refusal is why a request whose head parsed must still be refused with
// 400 Bad Request (and the connection closed), or "" to serve it: a Host
// that would go on into X-Forwarded-Host and Forwarded as something other
// than a host, or a path whose dot-segments the route and the backend
// could resolve differently. Both engines ask it before routing.
func refusal[T string | []byte](host, target T) httpwire.Refusal {
	switch {
	case !httpwire.ValidHost(host):
		return httpwire.RefusedHostInvalid
	case httpwire.HasDotSegment(target):
		return httpwire.RefusedDotSegment
	}
	return ""
}

// refusalText is the body of the 400 answer to a refused request.
func refusalText(why httpwire.Refusal) string {
	return "cutover: bad request: " + string(why)
}

// routePath is the path a request is routed by: its own, with runs of
// slashes merged as nginx merges them, so that "//api" goes where "/api"
// goes. The backend gets the path as the client sent it.
func routePath(path string) string {
	if !strings.Contains(path, "//") {
		return path
	}
	var b strings.Builder
	b.Grow(len(path))
	for i := 0; i < len(path); i++ {
		if path[i] == '/' && i > 0 && path[i-1] == '/' {
			continue
		}
		b.WriteByte(path[i])
	}
	return b.String()
}
