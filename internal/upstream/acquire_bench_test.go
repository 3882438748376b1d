package upstream

import (
	"net/url"
	"testing"
)

// BenchmarkAcquireRelease is the pool's share of every request: pick a
// ready endpoint and count the request on it, then release it, from many
// goroutines at once.
func BenchmarkAcquireRelease(b *testing.B) {
	for _, policy := range []string{RoundRobin, LeastRequests} {
		b.Run(policy, func(b *testing.B) {
			var urls []*url.URL
			for _, h := range []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"} {
				urls = append(urls, &url.URL{Scheme: "http", Host: h})
			}
			p := NewPool(urls, Options{Balancer: policy})
			for _, e := range p.members() {
				p.setReady(e, true)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p.Acquire().Release()
				}
			})
		})
	}
}
