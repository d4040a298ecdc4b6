package vault

import (
	"regexp"
	"strings"
	"testing"
)

// FuzzValidateIntegration holds the hand-written check to the grammar's
// regular expression.
func FuzzValidateIntegration(f *testing.F) {
	for _, s := range []string{"", "a", "notion", "echo-http", "-x", "9x", "a_b", "a.b", "../x", "%2F", "Notion", strings.Repeat("a", 32), strings.Repeat("a", 33), "a9-"} {
		f.Add(s)
	}
	pattern := regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := ValidateIntegration(name) == nil, pattern.MatchString(name); got != want {
			t.Errorf("ValidateIntegration(%q) valid = %v, the pattern says %v", name, got, want)
		}
	})
}
