package main

import (
	"testing"
	"time"
)

func TestPercentileIsTheNearestRank(t *testing.T) {
	// 1ms..100ms: the p-th percentile of 100 values is the p-th value.
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"no values", nil, 50, 0},
		{"one value is every percentile", []time.Duration{7}, 1, 7},
		{"p50 of 100", hundred, 50, 50 * time.Millisecond},
		{"p99 of 100", hundred, 99, 99 * time.Millisecond},
		{"p100 is the maximum", hundred, 100, 100 * time.Millisecond},
		{"p50 of four rounds the rank up", []time.Duration{1, 2, 3, 4}, 50, 2},
		{"p90 of four is the largest", []time.Duration{1, 2, 3, 4}, 90, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(%d values, %v) = %v, want %v", len(tc.sorted), tc.p, got, tc.want)
			}
		})
	}
}

func TestCheckArgsRefusesHostsOtherThanLoopback(t *testing.T) {
	for _, u := range []string{
		"http://example.com/",
		"http://localhost:8080/",
		"http://10.0.0.1:8080/",
		"https://127.0.0.1:8443/",
	} {
		if _, err := checkArgs(10, time.Second, 1, time.Second, []string{u}); err == nil {
			t.Errorf("checkArgs accepted %s", u)
		}
	}
	if _, err := checkArgs(10, time.Second, 1, time.Second, []string{"http://127.0.0.1:8080/"}); err != nil {
		t.Errorf("checkArgs refused 127.0.0.1: %v", err)
	}
}

func TestCheckArgsCapsTheDuration(t *testing.T) {
	if _, err := checkArgs(10, maxDuration+time.Second, 1, time.Second, []string{"http://127.0.0.1:8080/"}); err == nil {
		t.Errorf("checkArgs accepted -duration %s", maxDuration+time.Second)
	}
}
