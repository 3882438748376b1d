package store

import "testing"

func TestShareSaysWhatItCounts(t *testing.T) {
	for _, tc := range []struct {
		share Share
		want  string
	}{
		{Share{Canary: 1, Total: 4}, "1 of 4 ready pods (25%) are canary"},
		{Share{Canary: 10, Total: 100, Exact: true}, "10% of the requests go to the canary (exact weights)"},
		{Share{Canary: 197, Total: 597, Weights: true}, "the canary's servers weigh 197 of 597 (33.0% of the requests)"},
	} {
		if got := tc.share.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.share, got, tc.want)
		}
	}
}
