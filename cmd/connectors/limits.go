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
		{"CONNECTORS_LIMIT_STDIO_PROCESSES", &c.Limits.StdioProcesses, limits.Max.StdioProcesses},
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
	return readFair(c, getenv)
}

// readFair reads the replica's bound on calls in flight
// (CONNECTORS_MAX_CONCURRENT_CALLS, 0 or unset: none) and how long a call
// waits its tenant's turn when it is reached (CONNECTORS_CALL_QUEUE_WAIT).
func readFair(c *Config, getenv func(string) string) error {
	if s := getenv("CONNECTORS_MAX_CONCURRENT_CALLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 1_000_000 {
			return fmt.Errorf("CONNECTORS_MAX_CONCURRENT_CALLS: %q is not a whole number from 0 (no bound) to 1000000", s)
		}
		c.Fair.Capacity = n
	}
	if s := getenv("CONNECTORS_CALL_QUEUE_WAIT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > time.Minute {
			return fmt.Errorf("CONNECTORS_CALL_QUEUE_WAIT: %q: want a duration from 1ms to 1m, such as 5s", s)
		}
		c.Fair.MaxWait = d
	}
	return nil
}

// reapEvery is how often the limiter drops the state of tenants idle for
// its IdleTTL (10m).
const reapEvery = 5 * time.Minute

// startLimits makes the limiter of the gateway's tool calls, with the
// configured defaults, and reaps its idle state until ctx ends.
func (m *Main) startLimits(ctx context.Context, cfg Config) {
	m.limiter = limits.New(limits.Options{Defaults: cfg.Limits, Fair: cfg.Fair})
	go everyTick(ctx, reapEvery, func() { m.limiter.Reap() })
}
