package tools

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"30", 30 * time.Second, true},
		{" 2 ", 2 * time.Second, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"99999999999", time.Hour, true}, // capped
		{now.Add(48 * time.Hour).Format(http.TimeFormat), time.Hour, true},
		{"0", 0, false},
		{"-5", 0, false},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, false},
		{"soon", 0, false},
		{"", 0, false},
	} {
		got, ok := retryAfter(http.Header{"Retry-After": {c.v}}, now)
		if got != c.want || ok != c.ok {
			t.Errorf("Retry-After %q: %v %v, want %v %v", c.v, got, ok, c.want, c.ok)
		}
	}
}
