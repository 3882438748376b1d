package config

// Store says where cutover keeps its state (apps, revisions, rollouts,
// history). The zero value is the default: a bbolt file in the data dir.
// It changes only with a restart of cutover.
type Store struct {
	// Kubernetes keeps the state in the Kubernetes API server instead, as
	// CutoverApp objects, so that a cutover with an empty disk (a
	// rescheduled pod) finds it again.
	Kubernetes *KubernetesStore `yaml:"kubernetes"`
}

// KubernetesStore is a store in the Kubernetes API server.
type KubernetesStore struct {
	// Kubeconfig is the kubeconfig file; empty means the in-cluster
	// config, else $KUBECONFIG, else ~/.kube/config.
	Kubeconfig string `yaml:"kubeconfig"`
	// Namespace holds the CutoverApp objects and the store's Lease;
	// empty means the namespace cutover runs in (in a cluster), else the
	// kubeconfig context's, else default.
	Namespace string `yaml:"namespace"`
	// Standby makes a cutover that finds the store's Lease held wait for
	// it as long as it takes, instead of refusing to start: a standby
	// replica that takes over within seconds when the leader dies. It
	// also shortens the Lease from 15 s to 5 s, renewed every second.
	Standby bool `yaml:"standby"`
}

func (s *Store) validate(d *document) {
	if k := s.Kubernetes; k != nil && k.Namespace != "" && !dnsLabel.MatchString(k.Namespace) {
		d.add("store.kubernetes.namespace", "use lowercase letters, digits and '-', such as namespace: cutover", "%q is not a namespace name", k.Namespace)
	}
}
