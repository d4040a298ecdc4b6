package metrics

import (
	"slices"
	"sync"
)

// Caps on distinct label values. Integrations come from the registry and
// routes from the mux, both far below these; the caps only stop a bug
// (a tool name passed where an integration belongs, a path for a pattern)
// from growing the series without bound.
const (
	maxIntegrations = 256
	maxRoutes       = 128
)

// validIntegration reports whether s follows the integration grammar,
// ^[a-z][a-z0-9-]{0,31}$ (as vault.ValidateIntegration).
func validIntegration(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// validRoute reports whether s can be a ServeMux pattern as this gateway
// writes them: short printable ASCII ("POST /admin/tenants/{tenantId}/credentials").
func validRoute(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// oneOf returns v if it is in allowed, else Other.
func oneOf(v string, allowed []string) string {
	if slices.Contains(allowed, v) {
		return v
	}
	return Other
}

// boundedSet admits label values that are valid, up to max distinct ones;
// any other value becomes Other.
type boundedSet struct {
	max   int
	valid func(string) bool

	mu   sync.RWMutex
	seen map[string]struct{}
}

func newBoundedSet(max int, valid func(string) bool) *boundedSet {
	return &boundedSet{max: max, valid: valid, seen: make(map[string]struct{})}
}

func (s *boundedSet) value(v string) string {
	if !s.valid(v) {
		return Other
	}
	s.mu.RLock()
	_, ok := s.seen[v]
	s.mu.RUnlock()
	if ok {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[v]; ok {
		return v
	}
	if len(s.seen) >= s.max {
		return Other
	}
	s.seen[v] = struct{}{}
	return v
}
