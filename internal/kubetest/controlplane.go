package kubetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/cutover/cutover/internal/freeport"
)

// kwokStages is kwok's configuration: what it does to nodes and pods.
//
//go:embed kwok-stages.yaml
var kwokStages []byte

// startTimeout bounds each phase of the start-up; the machines running the
// tests are shared and slow at times, a healthy start takes seconds.
const startTimeout = 2 * time.Minute

// controllers are the kube-controller-manager controllers the tests need:
// Deployments and their ReplicaSets, Services' endpoints, namespaces'
// default service accounts (pods are refused without one), and deletion of
// namespaces and of owned objects. The node lifecycle controller is left
// out: kwok's nodes send no heartbeats, so it would taint them after 40 s.
var controllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"endpoints-controller",
	"endpointslice-controller",
	"endpointslice-mirroring-controller",
	"serviceaccount-controller",
	"namespace-controller",
	"garbage-collector-controller",
	"pod-garbage-collector-controller",
}

// start starts the control plane with its files in dir, and stops what it
// started if a component fails to come up.
func start(bins binaries, dir string) (c *Cluster, err error) {
	c = &Cluster{dir: dir}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, c.logTails(20))
			c.stop()
			c = nil
		}
	}()
	p, err := newPKI(dir)
	if err != nil {
		return c, err
	}
	etcdURL, err := c.startEtcd(bins.etcd)
	if err != nil {
		return c, err
	}
	if err := c.startAPIServer(bins.apiserver, p, etcdURL); err != nil {
		return c, err
	}
	if err := c.startControllers(bins); err != nil {
		return c, err
	}
	if err := c.createNodes(2); err != nil {
		return c, err
	}
	return c, c.waitReady()
}

func (c *Cluster) startEtcd(bin string) (string, error) {
	clientPort, err := freeport.Get()
	if err != nil {
		return "", err
	}
	peerPort, err := freeport.Get()
	if err != nil {
		return "", err
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	p, err := c.run("etcd", bin,
		"--name=kubetest",
		"--data-dir="+filepath.Join(c.dir, "etcd"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL,
		// The data is thrown away after the test; fsync only slows it.
		"--unsafe-no-fsync",
	)
	if err != nil {
		return "", err
	}
	err = c.waitHTTP(p, http.DefaultClient, clientURL+"/health", "")
	return clientURL, err
}

func (c *Cluster) startAPIServer(bin string, p *pki, etcdURL string) error {
	port, err := freeport.Get()
	if err != nil {
		return err
	}
	proc, err := c.run("kube-apiserver", bin,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--cert-dir="+filepath.Join(c.dir, "apiserver-certs"),
		"--tls-cert-file="+p.certFile,
		"--tls-private-key-file="+p.keyFile,
		"--token-auth-file="+p.tokenFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p.saKeyFile,
		"--service-account-signing-key-file="+p.saKeyFile,
		"--service-cluster-ip-range=10.96.0.0/16",
		// Debian's etcd 3.4 cannot serve the streaming lists that
		// client-go v0.35 and later ask for.
		"--feature-gates=WatchList=false",
		// The "kubernetes" Service would list 127.0.0.1, which Endpoints
		// refuse, and nothing in the tests needs it.
		"--endpoint-reconciler-type=none",
		// This plugin taints new nodes not-ready until the node lifecycle
		// controller sees them Ready; that controller is left out (see
		// controllers), so the taint would stay and nothing be scheduled.
		"--disable-admission-plugins=TaintNodesByCondition",
		"--enable-priority-and-fairness=false",
		"--allow-privileged=true",
		"--profiling=false",
	)
	if err != nil {
		return err
	}
	c.Config = &rest.Config{
		Host:            fmt.Sprintf("https://127.0.0.1:%d", port),
		BearerToken:     p.adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: p.caPEM},
		// Tests create and watch many objects quickly; client-go's default
		// of 5 requests per second would make them slow, not more real.
		QPS:   200,
		Burst: 400,
	}
	c.Kubeconfig = filepath.Join(c.dir, "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, kubeconfig(c.Config.Host, p), 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return fmt.Errorf("client for %s: %w", c.Config.Host, err)
	}
	c.Client = client
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return c.waitHTTP(proc, httpClient, c.Config.Host+"/readyz", p.adminToken)
}

// startControllers starts kube-controller-manager, kube-scheduler and kwok.
// None of them serves anything the tests need, so they listen nowhere.
func (c *Cluster) startControllers(bins binaries) error {
	stages := filepath.Join(c.dir, "kwok-stages.yaml")
	if err := os.WriteFile(stages, kwokStages, 0o600); err != nil {
		return fmt.Errorf("write kwok's stages: %w", err)
	}
	components := []struct {
		name, bin string
		args      []string
		env       []string
	}{
		{"kube-controller-manager", bins.controllerManager, []string{
			"--kubeconfig=" + c.Kubeconfig,
			"--controllers=" + strings.Join(controllers, ","),
			"--leader-elect=false",
			"--secure-port=0",
		}, nil},
		{"kube-scheduler", bins.scheduler, []string{
			"--kubeconfig=" + c.Kubeconfig,
			"--leader-elect=false",
			"--secure-port=0",
		}, nil},
		{"kwok", bins.kwok, []string{
			"--kubeconfig=" + c.Kubeconfig,
			"--config=" + stages,
			"--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector=" + fakeNodeAnnotation + "=fake",
			"--cidr=" + defaultPodCIDR,
			"--node-ip=" + nodeIP,
		}, []string{
			// kwok also reads ~/.kwok/kwok.yaml; a home of its own keeps
			// the user's out.
			"HOME=" + c.dir,
		}},
	}
	for _, comp := range components {
		if _, err := c.runEnv(comp.name, comp.bin, comp.env, comp.args...); err != nil {
			return err
		}
	}
	return nil
}

// waitReady waits until the fake nodes are Ready (kwok works) and the
// default namespace has its service account (the controller manager works).
// The scheduler shows itself working when the first pod is scheduled.
func (c *Cluster) waitReady() error {
	ctx := context.Background()
	return c.poll(func() (bool, error) {
		for _, name := range c.Nodes {
			node, err := c.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, fmt.Errorf("get node %s: %w", name, err)
			}
			if !nodeReady(node) {
				return false, nil
			}
		}
		_, err := c.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
}

// poll is the package's poll that also gives up, with the component's
// log, when a component has exited.
func (c *Cluster) poll(cond func() (bool, error)) error {
	return poll(startTimeout, func() (bool, error) {
		for _, p := range c.procs {
			if err := p.exited(); err != nil {
				return false, err
			}
		}
		return cond()
	})
}

// waitHTTP waits until url answers 200, authenticated with token if it is
// not empty.
func (c *Cluster) waitHTTP(p *process, client *http.Client, url, token string) error {
	var last string
	err := c.poll(func() (bool, error) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		last = fmt.Sprintf("%s: %s", resp.Status, body)
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %s at %s (last answer: %s): %w", p.name, url, last, err)
	}
	return nil
}

func (c *Cluster) run(name, bin string, args ...string) (*process, error) {
	return c.runEnv(name, bin, nil, args...)
}

func (c *Cluster) runEnv(name, bin string, env []string, args ...string) (*process, error) {
	p, err := startProcess(c.dir, name, bin, args, env)
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	return p, nil
}

// stop stops the components in the reverse order of their start, so none
// spends its last seconds retrying a dependency already gone.
func (c *Cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop(10 * time.Second)
	}
	c.procs = nil
	c.loopback.release()
	c.loopback = nil
}

// logTails returns the last n lines of each component's log.
func (c *Cluster) logTails(n int) string {
	var b strings.Builder
	for _, p := range c.procs {
		fmt.Fprintf(&b, "--- last lines of %s (%s):\n%s\n", p.name, p.logPath, p.logTail(n))
	}
	return b.String()
}

// kubeconfig is a kubeconfig file for the admin of the cluster at host.
func kubeconfig(host string, p *pki) []byte {
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: kubetest-admin
  user:
    token: %s
contexts:
- name: kubetest
  context:
    cluster: kubetest
    user: kubetest-admin
    namespace: default
current-context: kubetest
`, host, base64.StdEncoding.EncodeToString(p.caPEM), p.adminToken))
}
