package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// KubernetesTarget runs each slot as a Deployment <app>-<slot> in a
// Kubernetes cluster.
type KubernetesTarget struct {
	// Kubeconfig is the kubeconfig file; empty means the in-cluster
	// config, else $KUBECONFIG, else ~/.kube/config.
	Kubeconfig string `yaml:"kubeconfig"`
	// Namespace holds the Deployments and Services; default "default".
	Namespace string `yaml:"namespace"`
	// Replicas is each slot's number of pods; default 1.
	Replicas int `yaml:"replicas"`
	// Template is the pod template, exactly as a Deployment's
	// spec.template; "${VERSION}" in images, args, commands and env
	// values is replaced by the version deployed.
	Template *PodTemplate `yaml:"template"`
	// WorkloadRef, instead of Template, names a Deployment of the team's
	// in Namespace whose spec.template the slots run; cutover scales it
	// to 0 once its own slot serves, and changes nothing else of it.
	WorkloadRef *WorkloadRef `yaml:"workloadRef"`
}

// WorkloadRef names an existing workload to take the pod template from.
type WorkloadRef struct {
	// Name is the Deployment's name.
	Name string `yaml:"name"`
}

// PodTemplate is a Kubernetes pod template written in cutover.yaml.
type PodTemplate struct {
	corev1.PodTemplateSpec
}

// UnmarshalYAML decodes the template the way the API server would read it
// from JSON, refusing fields a pod template does not have.
func (p *PodTemplate) UnmarshalYAML(decode func(any) error) error {
	var v any
	if err := decode(&v); err != nil {
		return err
	}
	spec, err := decodePodTemplate(v)
	if err != nil {
		return err
	}
	p.PodTemplateSpec = spec
	return nil
}

// decodePodTemplate turns a decoded YAML value into a pod template, going
// through JSON since that is the form Kubernetes' types are tagged for.
func decodePodTemplate(v any) (corev1.PodTemplateSpec, error) {
	var spec corev1.PodTemplateSpec
	data, err := json.Marshal(v)
	if err != nil {
		return spec, fmt.Errorf("not a pod template: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return spec, fieldError{msg: "not a pod template: " + strings.TrimPrefix(err.Error(), "json: "),
			hint: "write it exactly as a Deployment's spec.template: {spec: {containers: [{name: web, image: registry.example/web:${VERSION}}]}}"}
	}
	return spec, nil
}

// Traffic says who moves an app's traffic between slots: at most one of
// Service, Router, GatewayAPI, Istio, HAProxy or Nginx; none means Router.
type Traffic struct {
	// Service flips Kubernetes Services' selectors (kubernetes target).
	Service *ServiceTraffic `yaml:"service"`
	// Router is cutover's own router, the default.
	Router *RouterTraffic `yaml:"router"`
	// GatewayAPI sets the weights of a Gateway API HTTPRoute (kubernetes
	// target).
	GatewayAPI *GatewayAPITraffic `yaml:"gatewayAPI"`
	// Istio sets the weights of an Istio VirtualService's routes
	// (kubernetes target).
	Istio *IstioTraffic `yaml:"istio"`
	// HAProxy sets the servers of a backend of the team's HAProxy
	// through its runtime API (process or static target).
	HAProxy *HAProxyTraffic `yaml:"haproxy"`
	// Nginx rewrites an upstream block of the team's nginx and reloads
	// it (process and static targets).
	Nginx *NginxTraffic `yaml:"nginx"`
}

// ServiceTraffic moves traffic by patching the selectors of Services the
// team already has (or that cutover creates) in the target's namespace.
type ServiceTraffic struct {
	// Active is the Service production traffic goes through.
	Active string `yaml:"active"`
	// Preview is a Service pointed at the new slot once it is ready, for
	// tests before the flip; optional.
	Preview string `yaml:"preview"`
}

// GatewayAPITraffic moves traffic with the weights of an HTTPRoute's
// backendRefs to two Services, as the team's gateway splits them; all
// three objects are the team's, in the target's namespace.
type GatewayAPITraffic struct {
	// HTTPRoute is the route whose rules send to StableService.
	HTTPRoute string `yaml:"httpRoute"`
	// StableService selects the slot production traffic goes to.
	StableService string `yaml:"stableService"`
	// CanaryService selects the slot a canary or preview runs in.
	CanaryService string `yaml:"canaryService"`
}

// IstioTraffic moves traffic with the weights of a VirtualService's HTTP
// routes, by subset or by host: between the subsets blue and green of a
// DestinationRule, which cutover adds, or between two Services, a stable
// and a canary one, each pointed at a slot by its selector as with
// gatewayAPI. Exactly one of DestinationRule and the two Services is set;
// every object is the team's, in the target's namespace.
type IstioTraffic struct {
	// VirtualService is the one whose HTTP routes send to the app.
	VirtualService string `yaml:"virtualService"`
	// Routes names its HTTP routes that get the weights, each split the
	// same way.
	Routes []string `yaml:"routes"`
	// DestinationRule is the one whose host the routes send to, by
	// subset.
	DestinationRule string `yaml:"destinationRule"`
	// StableService is the host the routes send production traffic to,
	// by host.
	StableService string `yaml:"stableService"`
	// CanaryService is the host of the canary or preview, by host.
	CanaryService string `yaml:"canaryService"`
}

// RouterTraffic selects cutover's own router. On a kubernetes target
// (router mode) the router proxies to the slot's pods by their IPs.
type RouterTraffic struct {
	// Port is the pods' port the router sends requests to (kubernetes
	// target only): a containerPort's number or name; default the first
	// TCP containerPort of the template's first container.
	Port string `yaml:"port"`
}

// reservedLabels are the pod labels cutover sets on each slot; a template
// may not set them, since they decide what the Services select.
var reservedLabels = []string{"app.kubernetes.io/name", "app.kubernetes.io/managed-by", "cutover.dev/slot", "cutover.dev/revision"}

func (k *KubernetesTarget) setDefaults(d *document, path string) {
	if !d.written(path + ".namespace") {
		k.Namespace = "default"
	}
	if !d.written(path + ".replicas") {
		k.Replicas = defaultReplicas
	}
}

func (k *KubernetesTarget) validate(d *document, path string) {
	if !dnsLabel.MatchString(k.Namespace) {
		d.add(path+".namespace", "use lowercase letters, digits and '-', such as namespace: default", "%q is not a namespace name", k.Namespace)
	}
	if k.Replicas < 1 || k.Replicas > maxReplicas {
		d.add(path+".replicas", fmt.Sprintf("use 1 to %d replicas", maxReplicas), "%d is out of range", k.Replicas)
	}
	switch {
	case k.Template != nil && k.WorkloadRef != nil:
		d.add(path+".workloadRef", "keep one: remove workloadRef to run the template written here, or remove template to run the Deployment's", "both template and workloadRef are set")
		return
	case k.WorkloadRef != nil:
		k.WorkloadRef.validate(d, path+".workloadRef")
		return
	case k.Template == nil:
		d.add(path+".template", "write the pod template as in a Deployment's spec.template: {spec: {containers: [{name: web, image: registry.example/web:${VERSION}}]}}, "+
			"or name an existing Deployment to take it from: workloadRef: {name: web}", "missing")
		return
	}
	if len(k.Template.Spec.Containers) == 0 {
		d.add(path+".template.spec.containers", "list at least one container with a name and an image", "no containers")
	}
	for i, c := range k.Template.Spec.Containers {
		if c.Name == "" || c.Image == "" {
			d.add(fmt.Sprintf("%s.template.spec.containers[%d]", path, i), "give every container a name and an image, such as {name: web, image: registry.example/web:${VERSION}}",
				"a container without a name or an image")
		}
	}
	for _, l := range reservedLabels {
		if _, ok := k.Template.Labels[l]; ok {
			d.add(path+".template.metadata.labels", "remove it; cutover sets it on each slot's pods", "%q is set by cutover", l)
		}
	}
}

func (w *WorkloadRef) validate(d *document, path string) {
	if w.Name == "" {
		d.add(path+".name", "name the Deployment whose pod template the slots run, such as workloadRef: {name: web}", "missing")
	} else if errs := validation.IsDNS1123Subdomain(w.Name); len(errs) > 0 {
		d.add(path+".name", "use a Deployment's name: lowercase letters, digits, '-' and '.', such as name: web", "%q is not a Deployment name", w.Name)
	}
}

// validateWorkloadRef checks that the provider of traffic t can retire
// the Deployment a workloadRef names once a slot serves: the Service flip
// and the router can; the others are not built for it yet.
func (k *KubernetesTarget) validateWorkloadRef(d *document, path string, t *Traffic) {
	if k == nil || k.WorkloadRef == nil || t.Service != nil || len(t.modes()) > 1 {
		return
	}
	if set := t.modes(); len(set) == 1 && set[0] != "router" {
		d.add(path+".traffic."+set[0], "use traffic.service or cutover's router with a workloadRef, or write target.kubernetes.template instead of workloadRef",
			"a workloadRef is not built for %s yet", set[0])
	}
}

// validate checks traffic against the app's target: a Service flip, an
// HTTPRoute or a VirtualService only moves the traffic of a kubernetes
// target, and the router reaches a kubernetes target's pods on a port of
// theirs.
func (t *Traffic) validate(d *document, path string, target *Target) {
	if target.Kubernetes != nil && (target.Process != nil || target.Static != nil) {
		return // the target's own problem says what to fix first
	}
	kube := target.Kubernetes != nil
	switch set := t.modes(); {
	case len(set) > 1:
		d.add(path, "keep exactly one of service, router, gatewayAPI, istio, haproxy and nginx", "%s are set", andList(set))
	case t.Service != nil && !kube:
		d.add(path+".service", "remove it, or use target.kubernetes", "a Service flip needs target.kubernetes")
	case t.Service != nil:
		t.Service.validate(d, path+".service")
	case t.GatewayAPI != nil && !kube:
		d.add(path+".gatewayAPI", "remove it, or use target.kubernetes", "an HTTPRoute's Services need target.kubernetes")
	case t.GatewayAPI != nil:
		t.GatewayAPI.validate(d, path+".gatewayAPI")
	case t.Istio != nil && !kube:
		d.add(path+".istio", "remove it, or use target.kubernetes", "a VirtualService's subsets need target.kubernetes")
	case t.Istio != nil:
		t.Istio.validate(d, path+".istio")
	case t.HAProxy != nil && kube:
		d.add(path+".haproxy", "use traffic.service, gatewayAPI or istio with target.kubernetes, or a process or static target with haproxy",
			"HAProxy's servers are pointed at the replicas' addresses, which cutover knows for a process or static target only")
	case t.HAProxy != nil:
		t.HAProxy.validate(d, path+".haproxy")
	case t.Nginx != nil:
		t.Nginx.validate(d, path+".nginx", target)
	case kube:
		t.Router.validatePort(d, path, target.Kubernetes)
	case t.Router != nil && t.Router.Port != "":
		d.add(path+".router.port", "remove it; the router reaches a process or static target at its own URLs", "port is for target.kubernetes")
	}
}

// RouterMode reports whether cutover's own router moves the traffic: no
// provider outside it is set.
func (t *Traffic) RouterMode() bool {
	return t.Service == nil && t.GatewayAPI == nil && t.Istio == nil && t.HAProxy == nil && t.Nginx == nil
}

// modes names the providers set.
func (t *Traffic) modes() []string {
	var set []string
	for _, mode := range []struct {
		name string
		set  bool
	}{{"service", t.Service != nil}, {"router", t.Router != nil}, {"gatewayAPI", t.GatewayAPI != nil}, {"istio", t.Istio != nil}, {"haproxy", t.HAProxy != nil}, {"nginx", t.Nginx != nil}} {
		if mode.set {
			set = append(set, mode.name)
		}
	}
	return set
}

// outsideRouter returns the provider that moves the requests without
// cutover's router, or nil: for the router, and when more than one is
// set (validate reports that first).
func (t *Traffic) outsideRouter() *outside {
	switch {
	case len(t.modes()) > 1:
		return nil
	case t.Service != nil:
		return &serviceTraffic
	case t.GatewayAPI != nil:
		return &gatewayTraffic
	case t.Istio != nil:
		return &istioTraffic
	case t.HAProxy != nil:
		return &haproxyTraffic
	case t.Nginx != nil:
		return &nginxTraffic
	}
	return nil
}

// validatePort checks that the router (r, nil when traffic is omitted)
// has a port to reach the pods of k on, path being the app's traffic.
func (r *RouterTraffic) validatePort(d *document, path string, k *KubernetesTarget) {
	if k.Template == nil || len(k.Template.Spec.Containers) == 0 {
		return // the template's own problem says what to fix
	}
	if r == nil || r.Port == "" {
		for _, p := range k.Template.Spec.Containers[0].Ports {
			if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
				return
			}
		}
		d.add(path, "give the first container a port, such as ports: [{containerPort: 8080}], or write traffic: {router: {port: 8080}}",
			"the router needs the pods' port, and the template's first container has no TCP containerPort")
		return
	}
	if n, err := strconv.Atoi(r.Port); err == nil {
		if n < 1 || n > 65535 {
			d.add(path+".router.port", "use a port from 1 to 65535, or a containerPort's name", "%d is not a port", n)
		}
		return
	}
	for _, c := range k.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == r.Port {
				return
			}
		}
	}
	d.add(path+".router.port", "use a port number, or the name of a containerPort in the template, such as ports: [{name: http, containerPort: 8080}]",
		"no containerPort named %q", r.Port)
}

func (s *ServiceTraffic) validate(d *document, path string) {
	if s.Active == "" {
		d.add(path+".active", "name the Service production traffic goes through, such as active: web", "missing")
	} else if !dnsLabel.MatchString(s.Active) {
		d.add(path+".active", "use a Service name: lowercase letters, digits and '-'", "%q is not a Service name", s.Active)
	}
	if s.Preview != "" && !dnsLabel.MatchString(s.Preview) {
		d.add(path+".preview", "use a Service name: lowercase letters, digits and '-'", "%q is not a Service name", s.Preview)
	}
	if s.Preview != "" && s.Preview == s.Active {
		d.add(path+".preview", "use a second Service for the preview, such as preview: web-preview", "the same Service as active")
	}
}

func (g *GatewayAPITraffic) validate(d *document, path string) {
	checkNames(d, path, "gatewayAPI: {httpRoute: web, stableService: web-stable, canaryService: web-canary}", []objectName{
		{"httpRoute", "an HTTPRoute", g.HTTPRoute, "web"},
		{"stableService", "a Service", g.StableService, "web-stable"},
		{"canaryService", "a Service", g.CanaryService, "web-canary"},
	})
	if g.CanaryService != "" && g.CanaryService == g.StableService {
		d.add(path+".canaryService", "give the canary a Service of its own, such as canaryService: web-canary", "the same Service as stableService")
	}
}

// istioHeaderRoutePrefix begins the names of the HTTP routes cutover owns
// on a VirtualService (istio.HeaderRoutePrefix).
const istioHeaderRoutePrefix = "cutover-header-"

func (i *IstioTraffic) validate(d *document, path string) {
	const bySubset = "istio: {virtualService: web, routes: [primary], destinationRule: web}"
	const byHost = "istio: {virtualService: web, routes: [primary], stableService: web-stable, canaryService: web-canary}"
	example, names := bySubset, []objectName{{"virtualService", "a VirtualService", i.VirtualService, "web"}}
	switch services := i.StableService != "" || i.CanaryService != ""; {
	case services && i.DestinationRule != "":
		d.add(path+".destinationRule", "keep destinationRule to weigh the subsets blue and green of its host, "+
			"or stableService and canaryService to weigh two Services, not both", "set with stableService or canaryService")
	case services:
		example = byHost
		names = append(names, objectName{"stableService", "a Service", i.StableService, "web-stable"},
			objectName{"canaryService", "a Service", i.CanaryService, "web-canary"})
		if i.CanaryService == i.StableService {
			d.add(path+".canaryService", "give the canary a Service of its own, such as canaryService: web-canary", "the same Service as stableService")
		}
	case i.DestinationRule == "":
		d.add(path+".destinationRule", "name a DestinationRule, such as "+bySubset+", or two Services, such as "+byHost, "missing")
	default:
		names = append(names, objectName{"destinationRule", "a DestinationRule", i.DestinationRule, "web"})
	}
	checkNames(d, path, example, names)
	if len(i.Routes) == 0 {
		d.add(path+".routes", "name the HTTP routes of the VirtualService that get the weights, such as "+example, "missing")
	}
	for n, r := range i.Routes {
		at := fmt.Sprintf("%s.routes[%d]", path, n)
		switch {
		case r == "":
			d.add(at, "write the name of one of the VirtualService's HTTP routes, such as primary", "empty")
		case strings.HasPrefix(r, istioHeaderRoutePrefix):
			d.add(at, "name the route of yours that serves the app", "names beginning with %s are cutover's own header routes", istioHeaderRoutePrefix)
		case slices.Contains(i.Routes[:n], r):
			d.add(at, "name each route once", "%s is named twice", r)
		}
	}
}

// objectName is a key naming a Kubernetes object.
type objectName struct{ key, kind, value, example string }

// checkNames reports each of names that is missing or not a valid name
// of its kind; example is the whole of path written right.
func checkNames(d *document, path, example string, names []objectName) {
	for _, f := range names {
		if f.value == "" {
			d.add(path+"."+f.key, fmt.Sprintf("name %s, such as %s", f.kind, example), "missing")
		} else if !dnsLabel.MatchString(f.value) {
			d.add(path+"."+f.key, fmt.Sprintf("use %s name: lowercase letters, digits and '-', such as %s", f.kind, f.example), "%q is not %s name", f.value, f.kind)
		}
	}
}

// checkPodTemplate checks a pod template against Kubernetes' own schema,
// which the reflection walk cannot follow (its types are tagged for JSON).
func (d *document) checkPodTemplate(path string, n ast.Node) {
	var v any
	if err := yaml.NodeToValue(n, &v); err != nil {
		d.addError(path, err)
		return
	}
	if _, err := decodePodTemplate(v); err != nil {
		d.addError(path, err)
		return
	}
	d.locateWithin(path, n)
}

// locateWithin records where each field and list item under n was
// written, so that later checks on the template point at their line.
func (d *document) locateWithin(path string, n ast.Node) {
	if seq, ok := n.(*ast.SequenceNode); ok {
		for i, item := range seq.Values {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.nodes[p] = located{value: item}
			d.locateWithin(p, item)
		}
		return
	}
	pairs, _ := mappingPairs(n)
	for _, p := range pairs {
		name := p.Key.GetToken().Value
		d.nodes[join(path, name)] = located{key: p.Key.GetToken(), value: p.Value}
		d.locateWithin(join(path, name), p.Value)
	}
}
