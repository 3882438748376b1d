package daemon

import (
	"context"
	"fmt"
	"slices"
	"strings"

	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// kubeAccess is what cutover does to one resource through the API, as
// deploy/kubernetes/20-role.yaml grants it.
type kubeAccess struct {
	group, resource string
	verbs           []string
}

// targetAccess is what the slot Deployments need (package
// target/kubernetes; get and patch also read and scale down the
// Deployment a workloadRef names), serviceAccess what service mode adds (package
// traffic/service), gatewayAccess what Gateway API mode adds (package
// traffic/gatewayapi, which drives two Services as service mode does),
// istioAccess what Istio mode adds (package traffic/istio, which reads
// back every write): by subset the slots' subsets in the DestinationRule
// (istioBySubsetAccess), by host two Services as Gateway API mode drives
// them (istioByHostAccess).
var (
	targetAccess = []kubeAccess{
		{"apps", "deployments", []string{"get", "list", "watch", "create", "update", "patch"}},
		{"", "pods", []string{"list", "watch"}},
		{"", "events", []string{"list"}},
	}
	serviceAccess = []kubeAccess{
		{"", "services", []string{"list", "watch", "patch"}},
		{"discovery.k8s.io", "endpointslices", []string{"list", "watch"}},
	}
	gatewayAccess = append([]kubeAccess{
		{"gateway.networking.k8s.io", "httproutes", []string{"get", "update"}},
	}, serviceAccess...)
	istioAccess = []kubeAccess{
		{"networking.istio.io", "virtualservices", []string{"get", "update"}},
	}
	istioBySubsetAccess = append([]kubeAccess{
		{"networking.istio.io", "destinationrules", []string{"get", "update"}},
	}, istioAccess...)
	istioByHostAccess = append(slices.Clone(istioAccess), serviceAccess...)
)

// checkAccess asks the API server whether client may do all of want in
// namespace (a SelfSubjectAccessReview for each verb, which every
// authenticated user may send) and names every grant missing. Without
// it, a missing list or watch would leave an informer retrying, its cache
// never synced and the app never set up, with nothing said but the
// retries in the log.
func checkAccess(ctx context.Context, client kubernetes.Interface, namespace string, want []kubeAccess) error {
	var missing []string
	for _, a := range want {
		for _, verb := range a.verbs {
			review, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
				Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authzv1.ResourceAttributes{
					Namespace: namespace, Verb: verb, Group: a.group, Resource: a.resource}}}, metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("check what cutover may do in namespace %s: %w", namespace, err)
			}
			if !review.Status.Allowed {
				missing = append(missing, verb+" "+strings.TrimSuffix(a.resource+"."+a.group, "."))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("cutover may not %s in namespace %s: grant it to the user of its kubeconfig "+
			"(in the cluster, apply deploy/kubernetes/20-role.yaml to the namespace; it lists every verb cutover needs)",
			strings.Join(missing, ", "), namespace)
	}
	return nil
}
