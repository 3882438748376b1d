package haproxy

import "testing"

func TestSplitWeightsGiveTheCanaryItsPercentAcrossReplicas(t *testing.T) {
	tests := []struct {
		percent, stableServers, canaryServers int
		stable, canary                        int
		exact                                 bool
	}{
		{percent: 50, stableServers: 1, canaryServers: 1, stable: 1, canary: 1, exact: true},
		{percent: 25, stableServers: 1, canaryServers: 1, stable: 3, canary: 1, exact: true},
		{percent: 5, stableServers: 2, canaryServers: 2, stable: 19, canary: 1, exact: true},
		{percent: 20, stableServers: 3, canaryServers: 1, stable: 4, canary: 3, exact: true},
		{percent: 1, stableServers: 8, canaryServers: 8, stable: 99, canary: 1, exact: true},
		{percent: 99, stableServers: 1, canaryServers: 1, stable: 1, canary: 99, exact: true},
		// 33·8 = 264 does not fit: 197 on the canary server against
		// 50 on each stable one comes closest (32.998%).
		{percent: 33, stableServers: 8, canaryServers: 1, stable: 50, canary: 197, exact: false},
	}
	for _, tt := range tests {
		stable, canary, exact := splitWeights(tt.percent, tt.stableServers, tt.canaryServers)
		if stable != tt.stable || canary != tt.canary || exact != tt.exact {
			t.Errorf("splitWeights(%d%%, %d stable, %d canary) = %d, %d, %v; want %d, %d, %v",
				tt.percent, tt.stableServers, tt.canaryServers, stable, canary, exact, tt.stable, tt.canary, tt.exact)
		}
		share := 100 * float64(canary*tt.canaryServers) / float64(canary*tt.canaryServers+stable*tt.stableServers)
		if abs(share-float64(tt.percent)) > 0.5 {
			t.Errorf("%d%% across %d stable and %d canary servers gives the canary %.2f%%", tt.percent, tt.stableServers, tt.canaryServers, share)
		}
	}
}
