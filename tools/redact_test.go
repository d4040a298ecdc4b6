package tools

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// spellings returns the ways an answer may carry secret that a Scrubber
// must find: plainly, in JSON escapes, percent-encoded (once, twice, in
// upper and lower case), base64 in both alphabets at every offset, padded
// or not, and line-wrapped.
func spellings(secret string) map[string]string {
	var uesc, pct, pctLower strings.Builder
	for _, r := range secret {
		fmt.Fprintf(&uesc, `\u%04x`, r)
		fmt.Fprintf(&pct, "%%%02X", r)
		fmt.Fprintf(&pctLower, "%%%02x", r)
	}
	out := map[string]string{
		"plain":            secret,
		"json \\u escapes": uesc.String(),
		"json \\/":         strings.ReplaceAll(secret, "/", `\/`),
		"percent":          pct.String(),
		"percent lower":    pctLower.String(),
		"percent twice":    strings.ReplaceAll(pct.String(), "%", "%25"),
		"query escape":     url.QueryEscape("x=" + secret),
	}
	for _, prefix := range []string{"", "a", "ab", "Bearer "} {
		data := []byte(prefix + secret + " and more")
		out["base64 std after "+fmt.Sprint(len(prefix))] = base64.StdEncoding.EncodeToString(data)
		out["base64 url raw after "+fmt.Sprint(len(prefix))] = base64.RawURLEncoding.EncodeToString(data)
	}
	long := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 70) + secret + strings.Repeat("y", 70)))
	var wrapped strings.Builder
	for i := 0; i < len(long); i += 76 {
		wrapped.WriteString(long[i:min(i+76, len(long))])
		wrapped.WriteString(`\r\n`)
	}
	out["base64 wrapped"] = wrapped.String()
	return out
}

// TestScrubberJSON: whatever the spelling and wherever in the JSON text
// (a value, a key, deep down), the secret is gone from the scrubbed text
// and from what it decodes to, the text stays JSON, and a base64 value
// stays base64.
func TestScrubberJSON(t *testing.T) {
	const secret = "tok/secret&123_abcdef"
	s := NewScrubber(secret, "short")
	for name, spelled := range spellings(secret) {
		for _, tmpl := range []string{
			`{"content":[{"type":"text","text":"Bearer %s"}]}`,
			`{"content":[{"type":"image","data":"%s","mimeType":"image/png"}]}`,
			`{"structuredContent":{"deep":[{"%s":1}]},"_meta":{"x":"y"}}`,
			`{"contents":[{"uri":"x://h/%s?q=1","text":"t"}]}`,
		} {
			raw := fmt.Sprintf(tmpl, spelled)
			if !json.Valid([]byte(raw)) {
				t.Fatalf("%s: test input is not JSON: %s", name, raw)
			}
			got, ok := s.JSON([]byte(raw))
			if !ok {
				t.Errorf("%s: JSON(%s) refused", name, raw)
				continue
			}
			var v any
			if err := json.Unmarshal(got, &v); err != nil {
				t.Fatalf("%s: JSON(%s) = %s: not JSON", name, raw, got)
			}
			plain, _ := json.Marshal(v)
			for _, text := range []string{string(got), string(plain)} {
				for form, f := range spellings(secret) {
					if strings.Contains(text, f) {
						t.Errorf("%s: JSON(%s) = %s: still holds the secret (%s)", name, raw, text, form)
					}
				}
			}
			if !strings.Contains(string(got), Redacted) && !strings.Contains(string(got), redactedBase64) {
				t.Errorf("%s: JSON(%s) = %s: no mark where the secret was", name, raw, got)
			}
		}
	}
}

// TestScrubberKeepsOthers: an answer without the secret passes through
// byte for byte, escapes, percent signs and base64 of other things
// included; a value shorter than MinSecretLen is not a secret.
func TestScrubberKeepsOthers(t *testing.T) {
	s := NewScrubber("xtok_tenant-a_secret_5f3a9c", "short")
	for _, raw := range []string{
		`{"content":[{"type":"text","text":"nothing to hide, not even short"}]}`,
		`{"content":[{"type":"text","text":"caf\u00e9 \u2028 50% done, %20 \n line\r\n"}]}`,
		`{"content":[{"type":"image","data":"` + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("png", 300))) + `","mimeType":"image/png"}]}`,
		`{"content":[],"structuredContent":{"n":1.5e3,"s":"a \/ b"},"isError":false}`,
		`{"tools":[{"name":"create","description":"See https://docs.example.com/reference/createPage\nand %20 spaces"}]}`,
	} {
		got, ok := s.JSON([]byte(raw))
		if !ok || string(got) != raw {
			t.Errorf("JSON(%s) = %s, %v; want it unchanged", raw, got, ok)
		}
	}
	if got := s.String("short words stay"); got != "short words stay" {
		t.Errorf("String = %q", got)
	}
	if NewScrubber("1234567", "") != nil || !NewScrubber("").Empty() {
		t.Error("values shorter than MinSecretLen made a Scrubber")
	}
	var none *Scrubber
	if got, ok := none.JSON([]byte(`{"a":1}`)); !ok || string(got) != `{"a":1}` || none.String("x") != "x" {
		t.Error("a nil Scrubber changed something")
	}
}

// TestScrubberString: error messages and log lines lose every spelling.
func TestScrubberString(t *testing.T) {
	const secret = "ntn_secret_value_42"
	s := NewScrubber(secret)
	for name, spelled := range spellings(secret) {
		if strings.Contains(name, "json") {
			continue // a plain text has no JSON escapes
		}
		spelled = strings.ReplaceAll(spelled, `\r\n`, "\r\n")
		got := s.String("upstream said: " + spelled + " (status 401)")
		for form, f := range spellings(secret) {
			if strings.Contains(got, strings.ReplaceAll(f, `\r\n`, "\r\n")) {
				t.Errorf("%s: String = %q still holds the secret (%s)", name, got, form)
			}
		}
		if !strings.HasPrefix(got, "upstream said: ") || !strings.HasSuffix(got, " (status 401)") {
			t.Errorf("%s: String = %q lost the text around the secret", name, got)
		}
	}
}

// TestScrubberNumbers: a numeric credential is cut out of JSON numbers,
// and the rest of the text is kept.
func TestScrubberNumbers(t *testing.T) {
	s := NewScrubber("98765432")
	got, ok := s.JSON([]byte(`{"content":[],"structuredContent":{"account":98765432,"n":1}}`))
	want := `{"content":[],"structuredContent":{"account":"[redacted]","n":1}}`
	if diff := cmp.Diff(want, string(got)); !ok || diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
}

// TestScrubberNotJSON: a text that may hold a secret but is not JSON is
// refused, never passed on.
func TestScrubberNotJSON(t *testing.T) {
	s := NewScrubber("xtok_secret_value")
	if _, ok := s.JSON([]byte(`{"text":"xtok_secret_value"`)); ok {
		t.Error("JSON accepted a broken text holding the secret")
	}
	if got := (&Conn{scrubber: s}).scrubDirect([]byte(`not json xtok_secret_value`)); string(got) != string(withheldResult) {
		t.Errorf("scrubDirect = %s", got)
	}
}

// FuzzScrubberJSON: whatever JSON text an upstream writes around the
// secret, the scrubbed text is JSON and holds no plain spelling of it.
func FuzzScrubberJSON(f *testing.F) {
	const secret = "tok_fuzz_secret_1"
	for _, s := range spellings(secret) {
		f.Add(`{"a":"` + s + `"}`)
	}
	f.Add(`{"a":["x",1,{"b":null}]}`)
	s := NewScrubber(secret)
	f.Fuzz(func(t *testing.T, raw string) {
		if !json.Valid([]byte(raw)) {
			return
		}
		got, ok := s.JSON([]byte(raw))
		if !ok {
			return // refused: nothing passed on
		}
		var v any
		dec := json.NewDecoder(strings.NewReader(string(got)))
		dec.UseNumber() // 1E700 is JSON, but no float64
		if dec.Decode(&v) != nil {
			t.Fatalf("JSON(%q) = %q: not JSON", raw, got)
		}
		plain, _ := marshalPlain(v)
		if strings.Contains(string(got), secret) || strings.Contains(string(plain), secret) {
			t.Fatalf("JSON(%q) = %q: holds the secret", raw, got)
		}
	})
}

// BenchmarkScrubDirect is the direct path's cost of scrubbing a typical
// answer (an echo tool's text) of the tenant's three secrets: the usual
// case, where nothing is found, must allocate nothing.
func BenchmarkScrubDirect(b *testing.B) {
	c := &Conn{scrubber: NewScrubber("xtok_tenant-a_echo_secret_5f3a9c", "xrefresh_tenant-a_echo_1d2c3b4a", "client-secret-0123456789abcdef")}
	raw := json.RawMessage(`{"content":[{"type":"text","text":"hello, this is an ordinary answer of a tool: a page titled \"Q3 plan\" was created at https://example.com/pages/0123456789abcdef?view=full"}],"isError":false}`)
	b.ReportAllocs()
	for b.Loop() {
		if out := c.scrubDirect(raw); len(out) != len(raw) {
			b.Fatal("changed")
		}
	}
}

// BenchmarkScrubCatalogue is the cost of scrubbing a large answer (a
// tools/list of 40 tools with schemas, about 20 KB) on the usual path.
func BenchmarkScrubCatalogue(b *testing.B) {
	s := NewScrubber("xtok_tenant-a_echo_secret_5f3a9c", "xrefresh_tenant-a_echo_1d2c3b4a", "client-secret-0123456789abcdef")
	var tools []map[string]any
	for i := range 40 {
		tools = append(tools, map[string]any{
			"name":        fmt.Sprintf("API-post-page-%d", i),
			"description": "Create a page in the workspace. See https://developers.notion.com/reference/post-page for the body; returns the page object.",
			"inputSchema": map[string]any{"type": "object", "properties": map[string]any{
				"parent":     map[string]any{"type": "object", "description": "The parent page or database of the new page", "properties": map[string]any{"page_id": map[string]any{"type": "string", "format": "uuid"}}},
				"properties": map[string]any{"type": "object", "additionalProperties": true},
			}, "required": []string{"parent", "properties"}},
		})
	}
	raw, _ := json.Marshal(map[string]any{"tools": tools})
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if out, ok := s.JSON(raw); !ok || len(out) != len(raw) {
			b.Fatal("changed")
		}
	}
}
