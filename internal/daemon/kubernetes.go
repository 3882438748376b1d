package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	istioclientset "istio.io/client-go/pkg/clientset/versioned"
	istioclient "istio.io/client-go/pkg/clientset/versioned/typed/networking/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	gatewayclientset "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/typed/apis/v1"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/target"
	kube "github.com/cutover/cutover/internal/target/kubernetes"
	"github.com/cutover/cutover/internal/traffic"
	"github.com/cutover/cutover/internal/traffic/gatewayapi"
	"github.com/cutover/cutover/internal/traffic/istio"
	"github.com/cutover/cutover/internal/traffic/service"
)

// kubeTargets builds the targets of kubernetes apps. Clients and watches
// are shared: one per kubeconfig and namespace for the Deployments and
// pods, one per set of Services (and HTTPRoute) or VirtualService; they
// live until stop.
type kubeTargets struct {
	ctx      context.Context
	cancel   context.CancelFunc
	detached atomic.Bool
	mu       sync.Mutex
	clients  map[string]kubeClients
	targets  map[[2]string]*kube.Target
	// providers are keyed by their options: a service.Options, a
	// gatewayapi.Options or an istioKey.
	providers map[any]traffic.Provider
	log       *slog.Logger
}

// istioKey is istio.Options as a map key, its Routes joined, under the
// kubeconfig they are read with.
type istioKey struct {
	kubeconfig, namespace, app, virtualService, routes, destinationRule, stableService, canaryService string
}

// kubeClients are the clients of one kubeconfig.
type kubeClients struct {
	core    kubernetes.Interface
	gateway gatewayclient.GatewayV1Interface
	istio   istioclient.NetworkingV1Interface
}

func newKubeTargets(log *slog.Logger) *kubeTargets {
	ctx, cancel := context.WithCancel(context.Background())
	return &kubeTargets{ctx: ctx, cancel: cancel, clients: map[string]kubeClients{},
		targets: map[[2]string]*kube.Target{}, providers: map[any]traffic.Provider{}, log: log}
}

// detach is called when the daemon stops: from then on, stopping a
// router-mode slot leaves its Deployment as it is, so the cluster keeps
// the pods that the next start adopts (as after a kill -9).
func (k *kubeTargets) detach() { k.detached.Store(true) }

// stop ends the watches.
func (k *kubeTargets) stop() { k.cancel() }

// kubeApp is a kubernetes app's target: the slot Deployments, and the
// Services, HTTPRoute or VirtualService that move its traffic.
type kubeApp struct {
	runner   *kube.Runner
	provider traffic.Provider
}

// Traffic returns the provider that moves the app's traffic.
func (k *kubeApp) Traffic() traffic.Provider { return k.provider }

// Start starts the revision as the slot's Deployment.
func (k *kubeApp) Start(ctx context.Context, spec target.Spec) (target.Instance, error) {
	inst, err := k.runner.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &kubeInstance{Instance: inst.(*kube.Instance), provider: k.provider, slot: spec.Slot}, nil
}

// Workload describes the slot's Deployment for status output.
func (k *kubeApp) Workload(app, slot string) target.Workload {
	return k.runner.Target.Workload(app, slot)
}

// kubeInstance keeps the slot the provider calls active running: when
// cutover stops, the cluster goes on serving.
type kubeInstance struct {
	*kube.Instance
	provider traffic.Provider
	slot     string
}

// servingProvider is a provider that can tell whether a slot that is not
// active still gets traffic: a canary's weight or header route on an
// HTTPRoute or a VirtualService, left there when cutover stops or after a
// foreign edit.
type servingProvider interface {
	Serves(ctx context.Context, slot string) (bool, error)
}

// Stop scales the slot to 0 unless the provider calls it active, or says
// it still serves.
func (in *kubeInstance) Stop(ctx context.Context) error {
	if active, err := in.provider.Active(ctx); err != nil || active == in.slot {
		return err
	}
	if sp, ok := in.provider.(servingProvider); ok {
		if serves, err := sp.Serves(ctx, in.slot); err != nil || serves {
			return err
		}
	}
	return in.Instance.Stop(ctx)
}

// kubeRouted is a kubernetes app in router mode: cutover's router proxies
// to the pods of the slot Deployments.
type kubeRouted struct {
	runner   *kube.Runner
	detached *atomic.Bool
	// ref, when not nil, is retired once a slot is ready: the router
	// sends to cutover's slots only, so the team's pods serve it nothing.
	ref *workloadRef
}

// Start starts the revision as the slot's Deployment.
func (k *kubeRouted) Start(ctx context.Context, spec target.Spec) (target.Instance, error) {
	inst, err := k.runner.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	if k.ref != nil {
		k.ref.retire(ctx)
	}
	return &kubeRoutedInstance{RoutedInstance: inst.(*kube.RoutedInstance), detached: k.detached}, nil
}

// kubeRoutedInstance leaves its Deployment alone once the daemon stops.
type kubeRoutedInstance struct {
	*kube.RoutedInstance
	detached *atomic.Bool
}

// Stop scales the slot to 0, unless the daemon is stopping.
func (in *kubeRoutedInstance) Stop(ctx context.Context) error {
	if in.detached.Load() {
		return nil
	}
	return in.RoutedInstance.Stop(ctx)
}

// forApp returns app's kubernetes target: router mode unless
// traffic.service, traffic.gatewayAPI or traffic.istio is set.
func (k *kubeTargets) forApp(app config.App) (controller.Target, error) {
	kc := app.Target.Kubernetes
	k.mu.Lock()
	defer k.mu.Unlock()
	clients, err := k.client(kc.Kubeconfig)
	if err != nil {
		return nil, err
	}
	tkey := [2]string{kc.Kubeconfig, kc.Namespace}
	t := k.targets[tkey]
	if t == nil {
		if err := checkAccess(k.ctx, clients.core, kc.Namespace, targetAccess); err != nil {
			return nil, err
		}
		if t, err = kube.New(k.ctx, clients.core, kc.Namespace); err != nil {
			return nil, err
		}
		k.targets[tkey] = t
	}
	tmpl, err := podTemplate(k.ctx, clients.core, kc)
	if err != nil {
		return nil, err
	}
	var ref *workloadRef
	if kc.WorkloadRef != nil {
		ref = &workloadRef{client: clients.core, namespace: kc.Namespace, name: kc.WorkloadRef.Name, log: k.log}
	}
	runner := &kube.Runner{Target: t, Replicas: kc.Replicas, Template: tmpl, Timeout: app.DeployTimeout.D()}
	var pkey any
	var newProvider func() (traffic.Provider, error)
	var access []kubeAccess
	switch svc, gw, is := app.Traffic.Service, app.Traffic.GatewayAPI, app.Traffic.Istio; {
	case svc != nil:
		opts := service.Options{Namespace: kc.Namespace, App: app.Name, Active: svc.Active, Preview: svc.Preview,
			Scaler: t, Replicas: kc.Replicas}
		pkey, newProvider, access = opts, func() (traffic.Provider, error) { return service.New(k.ctx, clients.core, opts) }, serviceAccess
	case gw != nil:
		opts := gatewayapi.Options{Namespace: kc.Namespace, App: app.Name, HTTPRoute: gw.HTTPRoute,
			StableService: gw.StableService, CanaryService: gw.CanaryService}
		pkey, newProvider, access = opts, func() (traffic.Provider, error) { return gatewayapi.New(k.ctx, clients.core, clients.gateway, opts) }, gatewayAccess
	case is != nil:
		opts := istio.Options{Namespace: kc.Namespace, App: app.Name, VirtualService: is.VirtualService,
			Routes: is.Routes, DestinationRule: is.DestinationRule, StableService: is.StableService, CanaryService: is.CanaryService}
		pkey = istioKey{kc.Kubeconfig, kc.Namespace, app.Name, is.VirtualService, strings.Join(is.Routes, "\x00"), is.DestinationRule,
			is.StableService, is.CanaryService}
		access = istioBySubsetAccess
		if is.DestinationRule == "" {
			access = istioByHostAccess
		}
		newProvider = func() (traffic.Provider, error) { return istio.New(k.ctx, t, clients.istio, opts) }
	default:
		runner.Router = true
		if r := app.Traffic.Router; r != nil {
			runner.Port = r.Port
		}
		if kube.PodPort(&tmpl.Spec, runner.Port) == 0 {
			// Config checks a written template; a workloadRef's is read now.
			missing := "its first container has no TCP containerPort"
			if runner.Port != "" {
				missing = fmt.Sprintf("it has no containerPort named %q", runner.Port)
			}
			return nil, fmt.Errorf("the router needs the pods' port, and %s; add one to the pod template, or write traffic: {router: {port: 8080}}", missing)
		}
		return &kubeRouted{runner: runner, detached: &k.detached, ref: ref}, nil
	}
	p := k.providers[pkey]
	if p == nil {
		if err := checkAccess(k.ctx, clients.core, kc.Namespace, access); err != nil {
			return nil, err
		}
		if p, err = newProvider(); err != nil {
			return nil, err
		}
		k.providers[pkey] = p
	}
	if ref != nil {
		if p, err = retiringProvider(p, ref); err != nil {
			return nil, err
		}
	}
	return &kubeApp{provider: p, runner: runner}, nil
}

// stopRouted scales the slot Deployments of a router-mode app to 0: once
// the app is removed nothing routes to them, whichever slot a restart of
// cutover left running (a restore starts the active slot's only).
func (k *kubeTargets) stopRouted(ctx context.Context, app config.App) error {
	kc := app.Target.Kubernetes
	if kc == nil || !app.Traffic.RouterMode() {
		return nil
	}
	k.mu.Lock()
	t := k.targets[[2]string{kc.Kubeconfig, kc.Namespace}]
	k.mu.Unlock()
	if t == nil {
		return nil
	}
	var errs []error
	for _, slot := range []string{store.Blue, store.Green} {
		if t.Exists(app.Name, slot) {
			errs = append(errs, t.Scale(ctx, app.Name, slot, 0))
		}
	}
	return errors.Join(errs...)
}

// client returns the clients for a kubeconfig file; "" means the
// in-cluster config, else $KUBECONFIG, else ~/.kube/config.
func (k *kubeTargets) client(kubeconfig string) (kubeClients, error) {
	if c, ok := k.clients[kubeconfig]; ok {
		return c, nil
	}
	cfg, err := restConfig(kubeconfig)
	if err != nil {
		return kubeClients{}, err
	}
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return kubeClients{}, fmt.Errorf("kubernetes client: %w", err)
	}
	gateway, err := gatewayclientset.NewForConfig(cfg)
	if err != nil {
		return kubeClients{}, fmt.Errorf("gateway API client: %w", err)
	}
	mesh, err := istioclientset.NewForConfig(cfg)
	if err != nil {
		return kubeClients{}, fmt.Errorf("istio client: %w", err)
	}
	c := kubeClients{core: core, gateway: gateway.GatewayV1(), istio: mesh.NetworkingV1()}
	k.clients[kubeconfig] = c
	return c, nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		if cfg, err := rest.InClusterConfig(); err == nil {
			return cfg, nil
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes config: %w; set target.kubernetes.kubeconfig or $KUBECONFIG", err)
	}
	return cfg, nil
}
