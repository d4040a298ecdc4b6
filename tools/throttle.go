package tools

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// maxThrottle bounds how long an upstream's Retry-After is heeded: a
// hostile or broken upstream must not shut a tenant out for days.
const maxThrottle = time.Hour

// retryAfter reads a 429's Retry-After: delay seconds or an HTTP date. ok
// is false without one that is valid and in the future.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(min(secs, int64(maxThrottle/time.Second))) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(now)
	}
	if d <= 0 {
		return 0, false
	}
	return min(d, maxThrottle), true
}

// noteThrottle records in until (UnixNano) the end of the wait an
// upstream's 429 with Retry-After asks for.
func noteThrottle(until *atomic.Int64, resp *http.Response) {
	if resp.StatusCode != http.StatusTooManyRequests {
		return
	}
	now := time.Now()
	d, ok := retryAfter(resp.Header, now)
	if !ok {
		return
	}
	end := now.Add(d).UnixNano()
	for {
		cur := until.Load()
		if cur >= end || until.CompareAndSwap(cur, end) {
			return
		}
	}
}

// ThrottledUntil is when the wait ends that the upstream last asked c's
// tenant for (HTTP 429 with Retry-After); zero when it asked none, or
// the wait is over.
func (c *Conn) ThrottledUntil() time.Time {
	ns := c.throttled.Load()
	if ns == 0 || time.Now().UnixNano() >= ns {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
