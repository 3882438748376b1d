package daemon

import (
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/cutover/cutover/internal/kubetest"
)

// The access cutover checks at start is the access its Role grants: a verb
// added to the code and not to the Role would make every in-cluster
// cutover refuse to start.
func TestTheManifestsRoleGrantsTheAccessCutoverChecks(t *testing.T) {
	objs, err := kubetest.ReadManifests("../../deploy/kubernetes/20-role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.Role
	for _, obj := range objs {
		if obj.GetKind() == "Role" {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &role); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(role.Rules) == 0 {
		t.Fatal("20-role.yaml has no Role with rules")
	}
	for _, a := range slices.Concat(targetAccess, gatewayAccess, istioBySubsetAccess, istioByHostAccess) { // gatewayAccess holds serviceAccess
		for _, verb := range a.verbs {
			granted := slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
				return slices.Contains(r.APIGroups, a.group) && slices.Contains(r.Resources, a.resource) && slices.Contains(r.Verbs, verb)
			})
			if !granted {
				t.Errorf("the Role does not grant %s on %s in API group %q, which cutover checks it may do", verb, a.resource, a.group)
			}
		}
	}
}
