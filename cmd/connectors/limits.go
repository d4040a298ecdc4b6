package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/connectors-gateway/connectors/limits"
)

// readLimits reads every tenant's default rate limits and quotas
// (CONNECTORS_LIMIT_*: whole numbers, 0 or unset for no limit).
func readLimits(c *Config, getenv func(string) string) error {
	for _, v := range []struct {
		name string
		dst  *int64
		most int64
	}{
		{"CONNECTORS_LIMIT_CALLS_PER_MINUTE", &c.Limits.CallsPerMinute, limits.Max.CallsPerMinute},
		{"CONNECTORS_LIMIT_BURST", &c.Limits.Burst, limits.Max.Burst},
		{"CONNECTORS_LIMIT_CONCURRENT_CALLS", &c.Limits.ConcurrentCalls, limits.Max.ConcurrentCalls},
		{"CONNECTORS_LIMIT_DAILY_CALLS", &c.Limits.DailyCalls, limits.Max.DailyCalls},
		{"CONNECTORS_LIMIT_MONTHLY_CALLS", &c.Limits.MonthlyCalls, limits.Max.MonthlyCalls},
	} {
		s := getenv(v.name)
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > v.most {
			return fmt.Errorf("%s: %q is not a whole number from 0 (no limit) to %d", v.name, s, v.most)
		}
		*v.dst = n
	}
	return nil
}

// reapEvery is how often the limiter drops the state of tenants idle for
// its IdleTTL (10m).
const reapEvery = 5 * time.Minute

// startLimits makes the limiter of the gateway's tool calls, with the
// configured defaults, and reaps its idle state until ctx ends.
func (m *Main) startLimits(ctx context.Context, cfg Config) {
	m.limiter = limits.New(limits.Options{Defaults: cfg.Limits})
	go everyTick(ctx, reapEvery, func() { m.limiter.Reap() })
}
