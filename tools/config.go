package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// LoadConfig reads the integrations file at path and returns presets, with
// the file's overrides applied, followed by the file's new integrations in
// file order. Every error starts with path and names the integration (by
// name, or as integrations[i] when it has none) and the field:
//
//	integrations.json: integration "jira": upstream.url: scheme must be http or https
//
// # Format
//
//	{
//	  "integrations": [
//	    {
//	      "name": "jira",                  // required, ^[a-z][a-z0-9-]{0,31}$
//	      "category": "productivity",
//	      "description": "Jira issues",
//	      "timeout": "30s",                // per tools/call; Go duration; default 60s
//	      "protocol": "2025-11-25",        // pin the upstream protocol; default: negotiate
//	      "upstream": {
//	        "url": "https://mcp.example.com/mcp",  // streamable HTTP, or:
//	        "headers": {"Authorization": "Bearer {{access_token}}"},
//	        "command": "npx",              // stdio server
//	        "args": ["-y", "some-mcp-server"],
//	        "env": {"API_TOKEN": "{{access_token}}"}
//	      },
//	      "oauth": {                       // optional: tenants link their account
//	        "kind": "standard",            // standard (RFC 6749, default), notion, github, slack
//	        "authorizeUrl": "https://auth.example.com/authorize",  // required
//	        "tokenUrl": "https://auth.example.com/token",          // required
//	        "revokeUrl": "https://auth.example.com/revoke",        // RFC 7009; default: none
//	        "scopes": ["read", "write"],
//	        "authStyle": "basic",          // client credentials: basic (default) or body
//	        "pkce": true                   // S256 challenge; default true
//	      }
//	    }
//	  ]
//	}
//
// Exactly one of upstream.command and upstream.url is set. Env and header
// values are templates: {{access_token}}, {{refresh_token}}, {{token_type}}
// and {{extra.NAME}} (a value the provider returned with the token, such as
// Slack's team_id). Placeholders are refused in command, args and url, where
// a credential would be visible to other processes or in logs. Unknown
// fields are errors.
//
// OAuth endpoint URLs must be https (http is accepted only for 127.0.0.1,
// ::1 and localhost, for fake providers in tests) and carry no credentials;
// scopes must be non-empty and without spaces. A literal {client_id} in
// revokeUrl stands for the client ID (GitHub's grant deletion). The client
// ID and secret are never in this file: they come from the environment
// ({NAME}_CLIENT_ID, {NAME}_CLIENT_SECRET).
//
// An entry named like a preset overrides it: each field the entry gives
// replaces the preset's, the others are kept. Within upstream, giving url
// drops the preset's command, args and env, and giving command drops its url
// and headers, so an override can switch a preset between stdio and HTTP.
// Within oauth, each field given replaces the preset's, the others are kept.
func LoadConfig(path string, presets []Integration) ([]Integration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading integrations: %w", err)
	}
	out, err := parseConfig(data, presets)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

type configFile struct {
	Integrations []json.RawMessage `json:"integrations"`
}

type configIntegration struct {
	Name        string          `json:"name"`
	Category    *string         `json:"category"`
	Description *string         `json:"description"`
	Timeout     *string         `json:"timeout"`
	Protocol    *string         `json:"protocol"`
	Upstream    json.RawMessage `json:"upstream"`
	OAuth       json.RawMessage `json:"oauth"`
}

type configOAuth struct {
	Kind         *string  `json:"kind"`
	AuthorizeURL *string  `json:"authorizeUrl"`
	TokenURL     *string  `json:"tokenUrl"`
	RevokeURL    *string  `json:"revokeUrl"`
	Scopes       []string `json:"scopes"`
	AuthStyle    *string  `json:"authStyle"`
	PKCE         *bool    `json:"pkce"`
}

type configUpstream struct {
	Command *string           `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env"`
	URL     *string           `json:"url"`
	Headers map[string]string `json:"headers"`
}

func parseConfig(data []byte, presets []Integration) ([]Integration, error) {
	var file configFile
	if err := decodeStrict(data, &file); err != nil {
		return nil, jsonError(data, "", err)
	}
	if file.Integrations == nil {
		return nil, errors.New(`missing "integrations"`)
	}
	out := make([]Integration, 0, len(presets)+len(file.Integrations))
	presetAt := make(map[string]int, len(presets))
	for _, p := range presets {
		presetAt[p.Name] = len(out)
		out = append(out, p.clone())
	}
	seen := make(map[string]bool)
	for i, raw := range file.Integrations {
		// The name first, leniently, so that any later error can name it.
		var named struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(raw, &named)
		fail := func(field string, err error) error {
			return &IntegrationError{Integration: named.Name, Index: i, Field: field, Err: err}
		}
		var ci configIntegration
		if err := decodeStrict(raw, &ci); err != nil {
			return nil, fail("", jsonError(raw, "", err))
		}
		if ci.Name != "" && seen[ci.Name] {
			return nil, fail("name", errors.New("duplicate"))
		}
		seen[ci.Name] = true

		in := Integration{Name: ci.Name}
		at, isPreset := presetAt[ci.Name]
		if isPreset {
			in = out[at]
		}
		if field, err := ci.apply(&in); err != nil {
			return nil, fail(field, err)
		}
		if err := validate(in, i); err != nil {
			return nil, err
		}
		if isPreset {
			out[at] = in
		} else {
			out = append(out, in)
		}
	}
	return out, nil
}

// apply sets what ci configures of in: the field at fault and why, or nil.
func (ci configIntegration) apply(in *Integration) (field string, err error) {
	if ci.Category != nil {
		in.Category = *ci.Category
	}
	if ci.Description != nil {
		in.Description = *ci.Description
	}
	if ci.Timeout != nil {
		d, err := time.ParseDuration(*ci.Timeout)
		if err != nil {
			return "timeout", fmt.Errorf("%q is not a duration such as \"30s\"", truncate(*ci.Timeout, 40))
		}
		if d <= 0 {
			return "timeout", errors.New("must be positive")
		}
		in.Timeout = d
	}
	if ci.Protocol != nil {
		in.Protocol = *ci.Protocol
	}
	if ci.Upstream != nil {
		var cu configUpstream
		if err := decodeStrict(ci.Upstream, &cu); err != nil {
			return "", jsonError(ci.Upstream, "upstream", err)
		}
		in.Upstream = mergeUpstream(in.Upstream, cu)
	}
	if ci.OAuth != nil {
		var co configOAuth
		if err := decodeStrict(ci.OAuth, &co); err != nil {
			return "", jsonError(ci.OAuth, "oauth", err)
		}
		in.OAuth = mergeOAuth(in.OAuth, co)
	}
	return "", nil
}

func mergeUpstream(up Upstream, cu configUpstream) Upstream {
	switch {
	case cu.URL != nil && cu.Command == nil:
		up.Command, up.Args, up.Env = "", nil, nil
	case cu.Command != nil && cu.URL == nil:
		up.URL, up.Headers = "", nil
	}
	if cu.Command != nil {
		up.Command = *cu.Command
	}
	if cu.Args != nil {
		up.Args = cu.Args
	}
	if cu.Env != nil {
		up.Env = cu.Env
	}
	if cu.URL != nil {
		up.URL = *cu.URL
	}
	if cu.Headers != nil {
		up.Headers = cu.Headers
	}
	return up
}

// mergeOAuth returns o (which it does not change; nil for none) with the
// fields co gives replaced.
func mergeOAuth(o *OAuth, co configOAuth) *OAuth {
	var out OAuth
	if o != nil {
		out = *o
	}
	if co.Kind != nil {
		out.Kind = *co.Kind
	}
	if co.AuthorizeURL != nil {
		out.AuthorizeURL = *co.AuthorizeURL
	}
	if co.TokenURL != nil {
		out.TokenURL = *co.TokenURL
	}
	if co.RevokeURL != nil {
		out.RevokeURL = *co.RevokeURL
	}
	if co.Scopes != nil {
		out.Scopes = co.Scopes
	}
	if co.AuthStyle != nil {
		out.AuthStyle = *co.AuthStyle
	}
	if co.PKCE != nil {
		out.PKCE = new(*co.PKCE)
	}
	return &out
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// jsonError rewrites a decoding error to name the field (under prefix) or
// the line and column, rather than a byte offset.
func jsonError(data []byte, prefix string, err error) error {
	join := func(field string) string {
		if prefix == "" {
			return field
		}
		if field == "" {
			return prefix
		}
		return prefix + "." + field
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		line, col := position(data, syntax.Offset)
		return fmt.Errorf("invalid JSON at line %d, column %d: %v", line, col, syntax)
	case errors.As(err, &typ):
		return fmt.Errorf("%s: must be %s, not %s", join(typ.Field), jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errors.New("invalid JSON: unexpected end of input")
	}
	// Unknown fields arrive as a plain error: `json: unknown field "x"`.
	msg := err.Error()
	if rest, ok := bytes.CutPrefix([]byte(msg), []byte("json: unknown field ")); ok {
		if prefix != "" {
			return fmt.Errorf("%s: unknown field %s", prefix, rest)
		}
		return fmt.Errorf("unknown field %s", rest)
	}
	return err
}

func jsonKind(kind string) string {
	switch kind {
	case "ptr", "string":
		return "a string"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return "a " + kind
}

func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}
