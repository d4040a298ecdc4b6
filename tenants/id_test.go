package tenants

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestValidateID(t *testing.T) {
	tests := []struct {
		name  string
		id    string
		valid bool
	}{
		{"simple", "tenant", true},
		{"seed example", "tenant-123", true},
		{"digits only", "123", true},
		{"one char", "a", true},
		{"one digit", "7", true},
		{"underscore inside", "acme_corp", true},
		{"dash and underscore", "a-b_c", true},
		{"64 chars", strings.Repeat("a", 64), true},

		{"empty", "", false},
		{"65 chars", strings.Repeat("a", 65), false},
		{"dot-dot traversal", "../x", false},
		{"dot-dot alone", "..", false},
		{"dot", ".", false},
		{"slash", "a/b", false},
		{"backslash", `a\b`, false},
		{"percent-encoded slash", "%2F", false},
		{"percent-encoded dots", "%2e%2e", false},
		{"embedded encoded slash", "tenant%2Fx", false},
		{"upper case", "Tenant", false},
		{"all upper case", "TENANT", false},
		{"latin accent", "ténant", false},
		{"NUL byte", "tenant\x00", false},
		{"Cyrillic e look-alike", "tеnant", false},
		{"full-width letter", "ｔenant", false},
		{"leading space", " tenant", false},
		{"trailing space", "tenant ", false},
		{"trailing newline", "tenant\n", false},
		{"leading dash", "-x", false},
		{"leading underscore", "_x", false},
		{"dot inside", "a.b", false},
		{"colon", "a:b", false},
		{"asterisk", "*", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateID(tt.id)
			if tt.valid && err != nil {
				t.Errorf("ValidateID(%q) = %v, want nil", tt.id, err)
			}
			if !tt.valid && !errors.Is(err, ErrInvalidID) {
				t.Errorf("ValidateID(%q) = %v, want ErrInvalidID", tt.id, err)
			}
		})
	}
}

// FuzzValidateID holds the hand-written check to the grammar's regular
// expression.
func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"", "a", "tenant-123", "_x", "-x", "a_", "a.b", "../x", "%2F", "ténant", strings.Repeat("a", 64), strings.Repeat("a", 65), "A", "z9_-"} {
		f.Add(s)
	}
	pattern := regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := ValidateID(id) == nil, pattern.MatchString(id); got != want {
			t.Errorf("ValidateID(%q) valid = %v, the pattern says %v", id, got, want)
		}
	})
}
