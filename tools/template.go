package tools

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Template variables a credential provides. Extras a provider returns with
// its token (Slack's team_id, ...) are named "extra." + NAME.
const (
	VarAccessToken  = "access_token"
	VarRefreshToken = "refresh_token"
	VarTokenType    = "token_type"
	varExtraPrefix  = "extra."
)

var extraName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// errMissingVar is wrapped when a template needs a value the caller's vars
// don't have. Its message names the placeholder, never a value.
var errMissingVar = errors.New("no value for placeholder")

// checkTemplate reports whether s is a well-formed template: every "{{"
// closes, and every placeholder is one of the known variables.
func checkTemplate(s string) error {
	_, err := expand(s, nil)
	return err
}

// hasPlaceholder reports whether s contains a "{{".
func hasPlaceholder(s string) bool { return strings.Contains(s, "{{") }

// render expands the placeholders of s with vars; a placeholder without a
// value is an error (an upstream started with an empty token fails later
// and more obscurely).
func render(s string, vars map[string]string) (string, error) {
	if vars == nil {
		vars = map[string]string{}
	}
	return expand(s, vars)
}

// expand does the work of checkTemplate (vars nil: syntax only) and render.
func expand(s string, vars map[string]string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		rest := s[i+2:]
		j := strings.Index(rest, "}}")
		if j < 0 {
			return "", fmt.Errorf("unclosed placeholder %q", truncate(s[i:], 24))
		}
		name := strings.TrimSpace(rest[:j])
		if !knownVar(name) {
			return "", fmt.Errorf("unknown placeholder {{%s}} (known: {{access_token}}, {{refresh_token}}, {{token_type}}, {{extra.NAME}})", truncate(name, 40))
		}
		if vars != nil {
			v, ok := vars[name]
			if !ok {
				return "", fmt.Errorf("%w {{%s}}", errMissingVar, name)
			}
			b.WriteString(v)
		}
		s = rest[j+2:]
	}
}

func knownVar(name string) bool {
	switch name {
	case VarAccessToken, VarRefreshToken, VarTokenType:
		return true
	}
	extra, ok := strings.CutPrefix(name, varExtraPrefix)
	return ok && extraName.MatchString(extra)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
