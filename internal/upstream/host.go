package upstream

// Values of Options.HostHeader besides a literal host.
const (
	// HostClient passes on the Host the client sent, as Caddy, Traefik,
	// HAProxy, kamal-proxy and nginx (with proxy_set_header Host $host)
	// do: apps build links, virtual hosts and cookies from it.
	HostClient = "client"
	// HostUpstream sends the endpoint's own host:port.
	HostUpstream = "upstream"
)

// requestHost is the Host of a request to e whose client sent clientHost;
// "" leaves it to the transport, which sends e's host:port.
func (e *Endpoint) requestHost(clientHost string) string {
	switch h := e.pool.hostHeader; h {
	case "", HostClient:
		return clientHost
	case HostUpstream:
		return ""
	default:
		return h
	}
}

// headHost is the host given to HeadWriter.AppendHead for a request to e:
// "" asks for the client's own Host.
func (e *Endpoint) headHost() string {
	switch h := e.pool.hostHeader; h {
	case "", HostClient:
		return ""
	case HostUpstream:
		return e.url.Host
	default:
		return h
	}
}
