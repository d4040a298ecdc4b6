package tools

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"sync"
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
// "{integration}_{tool}". When that is not a valid tool name (characters
// outside [a-zA-Z0-9_-], longer than 64) it is sanitized (each other
// character becomes '_'), cut to fit, and marked with "_" and the first 8 hex
// digits of a SHA-256 of the original integration and tool, so that two
// upstream names that sanitize alike still differ. The result always
// matches [ExposedNameRE] and depends only on the arguments.
func ExposedName(integration, tool string) string {
	return exposedName(integration, tool, hashLen)
}

func exposedName(integration, tool string, digits int) string {
	full := integration + "_" + tool
	sanitized, replaced := sanitize(full)
	if !replaced && len(full) <= maxExposedLen && nameRE.MatchString(integration) && !plainSuffixRE.MatchString(full) {
		return full
	}
	// Length-prefixed, so that ("a/b", "c") and ("a", "b/c") hash apart.
	sum := sha256.Sum256(fmt.Appendf(nil, "%d:%s/%s", len(integration), integration, tool))
	suffix := "_" + hex.EncodeToString(sum[:])[:digits]
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

// Names remembers which upstream tool each exposed name stands for. It is
// safe for concurrent use; the zero value is ready.
type Names struct {
	mu      sync.RWMutex
	byName  map[string]toolRef // guarded by mu
	exposed map[toolRef]string // guarded by mu
}

type toolRef struct{ integration, tool string }

// Expose returns the exposed name of an upstream tool and remembers it. It is
// ExposedName, except in the (2^-32-unlikely) case that the name is already
// taken by another tool: then a longer hash suffix is used.
func (n *Names) Expose(integration, tool string) string {
	ref := toolRef{integration, tool}
	n.mu.RLock()
	name, ok := n.exposed[ref]
	n.mu.RUnlock()
	if ok {
		return name
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if name, ok := n.exposed[ref]; ok {
		return name
	}
	if n.byName == nil {
		n.byName = make(map[string]toolRef)
		n.exposed = make(map[toolRef]string)
	}
	for _, digits := range []int{hashLen, 16, 32, 48} {
		name = exposedName(integration, tool, digits)
		if _, taken := n.byName[name]; !taken {
			break
		}
	}
	n.byName[name] = ref
	n.exposed[ref] = name
	return name
}

// Resolve returns the integration and upstream tool an exposed name stands
// for, if Expose returned it.
func (n *Names) Resolve(exposed string) (integration, tool string, ok bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	ref, ok := n.byName[exposed]
	return ref.integration, ref.tool, ok
}

// Forget drops every name of integration (after its tool list changed or it
// was removed).
func (n *Names) Forget(integration string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ref, name := range n.exposed {
		if ref.integration == integration {
			delete(n.exposed, ref)
			delete(n.byName, name)
		}
	}
}
