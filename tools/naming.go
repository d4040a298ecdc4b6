package tools

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// ExposedNameRE is what every exposed tool name matches (the MCP tool-name
// rule that strict clients enforce).
var ExposedNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

const (
	maxExposedLen = 64
	hashLen       = 8 // hex digits of the suffix
)

// plainSuffixRE matches names that already end the way a marked name does;
// they are marked too, so a plain name can never equal a marked one.
var plainSuffixRE = regexp.MustCompile(`_[0-9a-f]{8}$`)

// ExposedName returns the name the gateway exposes for an upstream tool:
// "{integration}_{tool}", or the tool's own name when it already starts
// with "{integration}_" (a Slack server's slack_post_message is not
// slack_slack_post_message). When that is not a valid tool name (characters
// outside [a-zA-Z0-9_-], longer than 64) it is sanitized (each other
// character becomes '_'), cut to fit, and marked with "_" and the first 8 hex
// digits of a SHA-256 of the original integration and tool, so that two
// upstream names that sanitize alike still differ. The result always
// matches [ExposedNameRE] and depends only on the arguments.
func ExposedName(integration, tool string) string {
	return exposedName(integration, tool, false)
}

// MarkedName is ExposedName's marked form, whatever the names: for an
// upstream tool whose plain exposed name another of the upstream's tools
// has (a tool "post" beside a tool "slack_post" of integration slack).
func MarkedName(integration, tool string) string {
	return exposedName(integration, tool, true)
}

// Prefixed reports whether tool carries integration's prefix already, so
// that ExposedName is the tool's own name when that is a valid one.
func Prefixed(integration, tool string) bool {
	return len(tool) > len(integration)+1 && strings.HasPrefix(tool, integration+"_")
}

func exposedName(integration, tool string, mark bool) string {
	full := integration + "_" + tool
	if Prefixed(integration, tool) {
		full = tool
	}
	sanitized, replaced := sanitize(full)
	if !mark && !replaced && len(full) <= maxExposedLen && nameRE.MatchString(integration) && !plainSuffixRE.MatchString(full) {
		return full
	}
	// Length-prefixed, so that ("a/b", "c") and ("a", "b/c") hash apart.
	sum := sha256.Sum256(fmt.Appendf(nil, "%d:%s/%s", len(integration), integration, tool))
	suffix := "_" + hex.EncodeToString(sum[:])[:hashLen]
	if max := maxExposedLen - len(suffix); len(sanitized) > max {
		sanitized = sanitized[:max]
	}
	return sanitized + suffix
}

// sanitize replaces every rune outside [a-zA-Z0-9_-] with '_'.
func sanitize(s string) (string, bool) {
	replaced := false
	out := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		replaced = true
		return '_'
	}, s)
	return out, replaced
}
