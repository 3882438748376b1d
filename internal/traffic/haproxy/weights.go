package haproxy

// maxWeight is the largest weight HAProxy gives a server.
const maxWeight = 256

// splitWeights returns the weight of each stable and each canary server
// that sends canary percent of the requests to the canaryServers and the
// rest to the stableServers, in lowest terms, and whether the split is
// exact. When the exact weights do not fit in HAProxy's 1 to 256, it
// returns the pair that comes closest.
func splitWeights(percent, stableServers, canaryServers int) (stable, canary int, exact bool) {
	// canary·canaryServers / (stable·stableServers) = percent / (100-percent)
	canary, stable = percent*stableServers, (100-percent)*canaryServers
	g := gcd(canary, stable)
	canary, stable = canary/g, stable/g
	if canary <= maxWeight && stable <= maxWeight {
		return stable, canary, true
	}
	best := 2.0
	for c := 1; c <= maxWeight; c++ {
		// The stable weight closest to the ratio for this canary weight.
		s := (2*c*(100-percent)*canaryServers + percent*stableServers) / (2 * percent * stableServers)
		if s < 1 || s > maxWeight {
			continue
		}
		share := float64(c*canaryServers) / float64(c*canaryServers+s*stableServers)
		if miss := abs(share - float64(percent)/100); miss < best {
			best, stable, canary = miss, s, c
		}
	}
	return stable, canary, false
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}
