package limits

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkAdmit admits and releases calls of 1,000 tenants from every
// core at once, with every limit on (a tenant's and an integration's).
func BenchmarkAdmit(b *testing.B) {
	l := New(Options{Defaults: Limits{CallsPerMinute: Max.CallsPerMinute, Burst: Max.Burst, ConcurrentCalls: 1000, DailyCalls: Max.DailyCalls, MonthlyCalls: Max.MonthlyCalls}})
	o := &Override{Integrations: map[string]Limits{"notion": {CallsPerMinute: Max.CallsPerMinute, ConcurrentCalls: 1000}}}
	tenants := make([]string, 1000)
	for i := range tenants {
		tenants[i] = fmt.Sprintf("tenant-%d", i)
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			i++
			tk, r := l.Admit(tenants[i%len(tenants)], "notion", o)
			if r != nil {
				b.Error(r)
				return
			}
			tk.Release()
		}
	})
}
