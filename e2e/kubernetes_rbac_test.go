package e2e

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/cutover/cutover/internal/kubetest"
)

// manifestsDir holds the manifests that run cutover in a cluster.
const manifestsDir = "../deploy/kubernetes"

// runAsCutover installs the RBAC of deploy/kubernetes as the README does
// (the namespace cutover and its ServiceAccount; the Role and RoleBinding
// in ns, where the apps are) and returns a kubeconfig file that authenticates as
// cutover's ServiceAccount with a token from the TokenRequest API, as the
// kubelet mints for a pod. It checks that the kubeconfig is held to the
// Role: reading Secrets, which the Role does not grant, is forbidden.
func runAsCutover(t *testing.T, c *kubetest.Cluster, ns string) string {
	t.Helper()
	for _, f := range []string{"00-namespace.yaml", "10-serviceaccount.yaml", "20-role.yaml"} {
		objs, err := kubetest.ReadManifests(filepath.Join(manifestsDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Create(t, ns, false, objs...); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	ctx := context.Background()
	tr, err := c.Client.CoreV1().ServiceAccounts("cutover").CreateToken(ctx, "cutover",
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("mint a token for the ServiceAccount cutover: %v", err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: c.Config.Host, CertificateAuthorityData: c.Config.CAData}
	kc.AuthInfos["cutover"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["cutover"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "cutover"}
	kc.CurrentContext = "cutover"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	_, err = clientFor(t, path).CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("the ServiceAccount's kubeconfig lists Secrets (err %v): it is not held to the Role", err)
	}
	return path
}

// clientFor is a client that authenticates as kubeconfig says.
func clientFor(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func TestKubernetesServiceModeDeploysAndRollsBackWithTheManifestsRBAC(t *testing.T) {
	k := newKubeSetup(t)
	k.kubeconfig = runAsCutover(t, k.cluster, k.ns)
	k.writeKubeConfig(t, "")
	k.serve(t)
	k.deployAndRollBack(t)
}

func TestKubernetesRouterModeDeploysAndRollsBackWithTheManifestsRBAC(t *testing.T) {
	k := newRouterSetup(t, routerBlueGreen)
	k.writeConfig(t, runAsCutover(t, k.cluster, k.ns))
	k.serve(t)
	k.waitVersion(t, "v1")
	k.mustCLI(t, "deploy", "web", "--version", "v2")
	k.wantVersion(t, "v2", "once deploy v2 returned")
	k.mustCLI(t, "rollback", "web")
	k.wantVersion(t, "v1", "once the rollback returned")
}

// An administrator takes a verb cutover needs out of its Role: the next
// deploy fails with the API server's refusal, which names the
// ServiceAccount, the verb, the resource and the namespace, and the
// Service goes on selecting the slot it did.
func TestKubernetesDeployWithoutAVerbOfTheRoleFailsNamingIt(t *testing.T) {
	k := newKubeSetup(t)
	k.kubeconfig = runAsCutover(t, k.cluster, k.ns)
	k.writeKubeConfig(t, "")
	k.serve(t)
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		return k.selectorSlot(t, "web") == "blue" && len(k.endpointPods(t, "web")) == 2, nil
	})

	k.takeFromRole(t, "services", "patch")

	r := k.cli(t, "deploy", "web", "--version", "v2")
	out := r.stdout + r.stderr
	t.Logf("deploy v2 said:\n%s", out)
	if r.code != 1 {
		t.Fatalf("deploy v2 without patch on services: exit %d, want 1", r.code)
	}
	for _, want := range []string{`User "system:serviceaccount:cutover:cutover" cannot patch resource "services"`, `in the namespace "` + k.ns + `"`} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy v2 without patch on services does not say %q", want)
		}
	}
	k.wantOnly(t, "blue", "after the refused deploy")
}

// A Role without a verb that cutover's watches need: serve refuses to
// start, naming the grant missing, instead of waiting forever for a watch
// that cannot start; it creates nothing.
func TestKubernetesServeWithoutAVerbOfTheRoleRefusesToStartNamingIt(t *testing.T) {
	k := newKubeSetup(t)
	k.kubeconfig = runAsCutover(t, k.cluster, k.ns)
	k.writeKubeConfig(t, "")
	k.takeFromRole(t, "endpointslices", "list")
	srv := k.start(t)
	if code := srv.waitExit(t, time.Minute); code == 0 {
		t.Fatalf("cutover serve without list on endpointslices exited 0:\n%s", srv.stderr.String())
	}
	out := srv.stderr.String()
	t.Logf("cutover serve said:\n%s", out)
	want := "cutover may not list endpointslices.discovery.k8s.io in namespace " + k.ns + ": grant it"
	if !strings.Contains(out, want) {
		t.Errorf("cutover serve without list on endpointslices does not say %q", want)
	}
	deps, err := k.cluster.Client.AppsV1().Deployments(k.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil || len(deps.Items) != 0 {
		t.Errorf("cutover serve created Deployments (%v) before refusing to start", err)
	}
}

// takeFromRole takes verb on resource out of cutover's Role in the test's
// namespace, as an administrator would, and waits until the API server
// refuses it to cutover.
func (k *kubeSetup) takeFromRole(t *testing.T, resource, verb string) {
	t.Helper()
	ctx := context.Background()
	roles := k.cluster.Client.RbacV1().Roles(k.ns)
	role, err := roles.Get(ctx, "cutover", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	group, found := "", false
	for i, r := range role.Rules {
		if slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
			role.Rules[i].Verbs = slices.DeleteFunc(r.Verbs, func(v string) bool { return v == verb })
			group, found = r.APIGroups[0], true
		}
	}
	if !found {
		t.Fatalf("the Role does not grant %s on %s to take away: %+v", verb, resource, role.Rules)
	}
	if _, err := roles.Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The authorizer follows Roles through a watch.
	reviews := clientFor(t, k.kubeconfig).AuthorizationV1().SelfSubjectAccessReviews()
	kubetest.WaitFor(t, time.Minute, func() (bool, error) {
		r, err := reviews.Create(ctx, &authzv1.SelfSubjectAccessReview{Spec: authzv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authzv1.ResourceAttributes{Namespace: k.ns, Verb: verb, Group: group, Resource: resource}}}, metav1.CreateOptions{})
		return err == nil && !r.Status.Allowed, err
	})
}
