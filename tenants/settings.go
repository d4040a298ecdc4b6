package tenants

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Settings are an admin's decisions about one tenant's integrations,
// independent of the credentials it holds: integrations turned off, and
// integrations narrowed to some of their tools. The zero value allows
// everything.
type Settings struct {
	// Disabled integrations are neither listed nor callable, whatever
	// credentials the tenant holds.
	Disabled []string `json:"disabled,omitempty"`
	// Tools narrows an integration to these upstream tool names; an
	// integration not named here keeps all its tools.
	Tools map[string][]string `json:"tools,omitempty"`
	// Limits is the tenant's own rate limits and quotas, in the stored
	// form of package limits (an override of the defaults), kept here so
	// that it changes as the rest of the settings do, on every replica.
	// Empty: the defaults.
	Limits json.RawMessage `json:"limits,omitempty"`
}

// ParseSettings reads a stored settings record; nil or empty is the zero
// Settings.
func ParseSettings(rec []byte) (Settings, error) {
	var s Settings
	if len(rec) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(rec, &s); err != nil {
		return Settings{}, fmt.Errorf("tenant settings: %w", err)
	}
	return s, nil
}

// Marshal returns the stored form of s.
func (s Settings) Marshal() []byte {
	b, _ := json.Marshal(s) // strings, slices and maps of strings, JSON written by package limits: cannot fail
	return b
}

// Enabled reports whether integration is turned on.
func (s Settings) Enabled(integration string) bool {
	return !slices.Contains(s.Disabled, integration)
}

// AllowsTool reports whether integration's upstream tool may be listed and
// called (the integration itself being enabled).
func (s Settings) AllowsTool(integration, tool string) bool {
	allow, narrowed := s.Tools[integration]
	return !narrowed || slices.Contains(allow, tool)
}

// Set turns integration on with tools as its allowlist (nil: all tools),
// or off when enabled is false (its allowlist is kept for when it is
// turned on again only if tools is nil).
func (s *Settings) Set(integration string, enabled bool, tools []string) {
	s.Disabled = slices.DeleteFunc(s.Disabled, func(n string) bool { return n == integration })
	if !enabled {
		s.Disabled = append(s.Disabled, integration)
		slices.Sort(s.Disabled)
		return
	}
	if tools == nil {
		delete(s.Tools, integration)
		return
	}
	if s.Tools == nil {
		s.Tools = map[string][]string{}
	}
	t := slices.Clone(tools)
	slices.Sort(t)
	s.Tools[integration] = slices.Compact(t)
}
