package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// NginxTraffic moves an app's traffic with an nginx the team already
// runs: cutover writes an upstream block, in a file of its own that the
// team's nginx.conf includes in http{}, with the replicas of the active
// slot (or of both slots, weighted, during a canary), then tests the
// config, reloads nginx and checks that it still answers. Process and
// static targets only.
type NginxTraffic struct {
	// UpstreamFile is cutover's own file; nothing else may write it.
	// Relative to the config file's directory.
	UpstreamFile string `yaml:"upstreamFile"`
	// Upstream names the upstream block production traffic goes to, as
	// the team's proxy_pass names it.
	Upstream string `yaml:"upstream"`
	// PreviewUpstream, optional, names a second block in the same file:
	// the new slot once it is ready, for tests before the flip; the
	// active slot otherwise.
	PreviewUpstream string `yaml:"previewUpstream"`
	// Test checks nginx's config; default [nginx, -t].
	Test []string `yaml:"test"`
	// Reload makes nginx read it again; default [nginx, -s, reload].
	Reload []string `yaml:"reload"`
	// PIDFile is nginx's pid file, as nginx.conf's pid directive names
	// it; default /run/nginx.pid. After a reload cutover waits until the
	// master it names has replaced its workers (on Linux), so that no
	// request reaches the previous upstreams once a flip is done; "" does
	// not wait.
	PIDFile string `yaml:"pidFile"`
	// Verify is a request through nginx after each reload; required.
	Verify NginxVerify `yaml:"verify"`
}

// NginxVerify is the request through nginx that must answer below 500 a
// few times in a row after a reload, or the previous file comes back.
type NginxVerify struct {
	// URL is an address of nginx's that proxies to Upstream.
	URL string `yaml:"url"`
	// Timeout bounds the whole check; default 10s.
	Timeout Duration `yaml:"timeout"`
}

// defaultNginxVerifyTimeout is how long nginx has to answer after a
// reload.
const defaultNginxVerifyTimeout = Duration(10 * time.Second)

// defaultNginxPIDFile is where Debian's and the upstream packages' nginx
// writes its pid.
const defaultNginxPIDFile = "/run/nginx.pid"

// nginxName is what an upstream block's name may be here: nginx takes
// more, but this one ends up in proxy_pass http://NAME.
var nginxName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// nginxTraffic is how nginx shares a canary's traffic: by weighted round
// robin over the servers of one upstream block, which sees no header or
// cookie. cutover starts the replicas itself, so it can warm them up.
var nginxTraffic = outside{name: "traffic.nginx", splits: "nginx shares the requests by weighted round robin",
	noHeader: "an upstream block chooses a server by weight only", noCookie: "an upstream block chooses a server by weight only",
	reaches: true}

func (n *NginxTraffic) setDefaults(d *document, path, base string) {
	n.UpstreamFile = besideConfig(base, n.UpstreamFile)
	if !d.written(path + ".test") {
		n.Test = []string{"nginx", "-t"}
	}
	if !d.written(path + ".reload") {
		n.Reload = []string{"nginx", "-s", "reload"}
	}
	if !d.written(path + ".pidFile") {
		n.PIDFile = defaultNginxPIDFile
	}
	n.PIDFile = besideConfig(base, n.PIDFile)
	if !d.written(path + ".verify.timeout") {
		n.Verify.Timeout = defaultNginxVerifyTimeout
	}
}

// validate checks n for an app whose target is target.
func (n *NginxTraffic) validate(d *document, path string, target *Target) {
	const example = "nginx: {upstreamFile: /etc/nginx/conf.d/web-upstream.conf, upstream: web_backend, verify: {url: http://127.0.0.1/healthz}}"
	if target.Kubernetes != nil {
		d.add(path, "use traffic.gatewayAPI, traffic.istio or traffic.service to move a cluster's traffic, or a process or static target with nginx",
			"nginx is pointed at the replicas' addresses, which only a process or static target gives")
	}
	if n.UpstreamFile == "" {
		d.add(path+".upstreamFile", "name a file of cutover's own that your nginx.conf includes in http{}, such as "+example, "missing")
	} else if filepath.Ext(n.UpstreamFile) != ".conf" {
		d.add(path+".upstreamFile", "end it in .conf, such as /etc/nginx/conf.d/web-upstream.conf", "%q is not a .conf file", n.UpstreamFile)
	}
	for _, f := range []struct{ key, value string }{{"upstream", n.Upstream}, {"previewUpstream", n.PreviewUpstream}} {
		switch {
		case f.value == "" && f.key == "upstream":
			d.add(path+".upstream", "name the upstream block your proxy_pass sends to, such as "+example, "missing")
		case f.value != "" && !nginxName.MatchString(f.value):
			d.add(path+"."+f.key, "use letters, digits and '_', such as web_backend", "%q is not an upstream name", f.value)
		}
	}
	if n.PreviewUpstream != "" && n.PreviewUpstream == n.Upstream {
		d.add(path+".previewUpstream", "give the preview a block of its own, such as previewUpstream: web_preview", "the same block as upstream")
	}
	checkCommand(d, path+".test", n.Test, "write the command that checks nginx's config, such as test: [nginx, -t]")
	checkCommand(d, path+".reload", n.Reload, "write the command that reloads nginx, such as reload: [nginx, -s, reload]")
	checkHTTPURL(d, path+".verify.url", n.Verify.URL, "http://127.0.0.1/healthz, an address of nginx's that proxies to the upstream")
	checkPositive(d, path+".verify.timeout", n.Verify.Timeout, "10s")
}

// checkNginxFiles reports an app whose nginx upstream file another app
// writes already: each file holds one app's blocks, and each write
// replaces the whole of it.
func (c *Config) checkNginxFiles(d *document) {
	first := map[string]string{} // file → path of the app that first wrote it
	for i := range c.Apps {
		n := c.Apps[i].Traffic.Nginx
		if n == nil || n.UpstreamFile == "" {
			continue
		}
		path := fmt.Sprintf("apps[%d].traffic.nginx.upstreamFile", i)
		if prev, ok := first[n.UpstreamFile]; ok {
			d.add(path, "give each app a file of its own, such as /etc/nginx/conf.d/"+c.Apps[i].Name+"-upstream.conf",
				"%s is written by %s (%s) already", n.UpstreamFile, strings.TrimSuffix(prev, ".traffic.nginx.upstreamFile"), d.where(prev))
			continue
		}
		first[n.UpstreamFile] = path
	}
}
