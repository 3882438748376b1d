package config

import (
	"strings"
	"testing"
)

func TestStoreDefaultsToBoltAndTakesKubernetes(t *testing.T) {
	for _, tc := range []struct {
		store      string
		kubernetes bool
		namespace  string
	}{
		{"", false, ""},
		{"store: {kubernetes: {}}\n", true, ""},
		{"store:\n  kubernetes:\n    namespace: cutover\n", true, "cutover"},
		{"store: {kubernetes: {namespace: cutover, kubeconfig: /etc/kube.conf}}\n", true, "cutover"},
	} {
		cfg, err := Parse("cutover.yaml", []byte(tc.store+adminApp))
		if err != nil {
			t.Fatalf("%q: %v", tc.store, err)
		}
		k := cfg.Store.Kubernetes
		if (k != nil) != tc.kubernetes || (k != nil && k.Namespace != tc.namespace) {
			t.Errorf("%q: store.kubernetes = %+v, want set %v with namespace %q", tc.store, k, tc.kubernetes, tc.namespace)
		}
	}
}

func TestStoreNamespaceMustBeANamespaceName(t *testing.T) {
	src := "store: {kubernetes: {namespace: Cutover_NS}}\n" + adminApp
	ps := parseProblems(t, src)
	if len(ps) != 1 || !strings.HasPrefix(ps[0].String(), "cutover.yaml:1:") || !strings.Contains(ps[0].String(), "store.kubernetes.namespace") ||
		!strings.Contains(ps[0].Hint, "namespace: cutover") {
		t.Fatalf("problems = %v; want one at store.kubernetes.namespace with a hint", ps)
	}
}

func TestStoreRejectsUnknownBackends(t *testing.T) {
	ps := parseProblems(t, "store: {etcd: {}}\n"+adminApp)
	if len(ps) != 1 || !strings.Contains(ps[0].String(), "etcd") {
		t.Fatalf("problems = %v; want the unknown field etcd", ps)
	}
}
