package tools

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Redacted replaces a secret wherever an upstream's answer carries one.
const Redacted = "[redacted]"

// MinSecretLen is the shortest value a [Scrubber] takes for a secret.
// Credentials are long (OAuth tokens, API keys: 20 characters and more);
// a shorter template value is an identifier or a flag ("true", a team
// ID's stub), and cutting it out of every answer would turn ordinary words
// and numbers into [redacted] without protecting anything.
const MinSecretLen = 8

// redactedBase64 stands for a base64 text that held a secret: still
// base64 (a client decoding an image's data or a blob gets bytes, not an
// error), and it decodes to [redacted].
var redactedBase64 = base64.StdEncoding.EncodeToString([]byte(Redacted))

// A Scrubber cuts a tenant's secrets (its integration credential's
// values, the integration's OAuth client secret) out of everything an
// upstream sends towards the agent: results, errors, notifications,
// requests. An upstream that quotes what it was given (an error echoing
// its Authorization header, a debug tool printing its environment, a
// prompt-injected server) must not hand the agent the credential: agents
// act with the gateway's tools, never with the credential itself.
//
// It finds a secret spelled plainly, in any JSON spelling (\u escapes,
// \/), percent-encoded (at any depth), and base64-encoded in either
// alphabet, padded or not, line-wrapped or not, at any offset of the
// encoded bytes (a blob or an image's data holding the token). Every
// string of a JSON text is scrubbed, object keys included (an upstream
// writes the keys of structuredContent and _meta as freely as their
// values), and numbers (a numeric credential). Other encodings (hex,
// reversed, split) are not looked for: an upstream that means to leak
// the token it holds can send it elsewhere anyway; this stops careless
// and tricked upstreams, which is what can be stopped here.
//
// A nil or empty Scrubber changes nothing. It is safe for concurrent use.
type Scrubber struct {
	secrets []string // the values, longest first
	// needles: one of them is in every text that holds a secret spelled
	// plainly, JSON-encoded or base64-encoded on one line: plainNeedles
	// (the first two), then prints (base64 fingerprints), of which the
	// shortest is minPrint long.
	needles      []string
	plainNeedles []string
	prints       []string
	minPrint     int
	// chars are the bytes of the secrets: an escape (\uXXXX, \/, %XX)
	// that spells one of them may spell a secret another way. nonASCII:
	// some secret has a byte ≥ 0x80, which any \u escape may spell.
	chars    [256]bool
	nonASCII bool
	// always: some secret JSON must escape (a quote, a control
	// character), whose spellings are too many to look for byte-wise.
	always bool
}

// NewScrubber returns a Scrubber of the given values; values shorter than
// [MinSecretLen] and duplicates are left out.
func NewScrubber(values ...string) *Scrubber {
	s := &Scrubber{}
	for _, v := range values {
		if len(v) >= MinSecretLen && !slices.Contains(s.secrets, v) {
			s.secrets = append(s.secrets, v)
		}
	}
	if len(s.secrets) == 0 {
		return nil
	}
	// Longest first: a secret that contains another is cut out whole.
	slices.SortFunc(s.secrets, func(a, b string) int { return len(b) - len(a) })
	add := func(n string) {
		if n != "" && !slices.Contains(s.needles, n) {
			s.needles = append(s.needles, n)
		}
	}
	for _, v := range s.secrets {
		add(v)
		enc := string(encodedString(v))
		add(enc)
		if strings.IndexByte(enc, '\\') >= 0 {
			s.always = true
		}
	}
	s.plainNeedles = slices.Clone(s.needles)
	for _, v := range s.secrets {
		for _, fp := range fingerprints(v) {
			if !slices.Contains(s.prints, fp) {
				s.prints = append(s.prints, fp)
				if s.minPrint == 0 || len(fp) < s.minPrint {
					s.minPrint = len(fp)
				}
			}
			add(fp)
		}
		for i := 0; i < len(v); i++ {
			s.chars[v[i]] = true
			if v[i] >= utf8.RuneSelf {
				s.nonASCII = true
			}
		}
	}
	return s
}

// fingerprints returns the texts that the base64 encoding of any bytes
// holding v contains: for each of the three offsets v can start at within
// a 3-byte group, the characters that depend on v's bits alone, in the
// standard and the URL alphabet.
func fingerprints(v string) []string {
	var out []string
	for k := range 3 {
		data := make([]byte, k, k+len(v)+2)
		data = append(data, v...)
		data = append(data, 0, 0)
		first := (8*k + 5) / 6         // the first character past the k leading bytes
		last := (8 * (k + len(v))) / 6 // one past the last one within v
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			full := enc.EncodeToString(data)
			if last > first {
				out = append(out, full[first:last])
			}
		}
	}
	return out
}

// isBase64 reports whether c is in either base64 alphabet (or padding).
func isBase64(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '+' || c == '/' || c == '-' || c == '_' || c == '='
}

// wrapRun is how many base64 characters before a line break make it a
// possible line of wrapped base64 (MIME wraps at 76, PEM at 64; a line of
// text rarely ends in a 40-character word).
const wrapRun = 40

// mayHold reports whether t may hold a secret: cheap, no allocation, and
// never false when t holds one in a spelling the Scrubber knows. t is a
// JSON text or a plain string. Besides a search for each plain spelling,
// it is one pass over t: runs of base64 long enough for a fingerprint
// are searched for one, and escapes (\uXXXX, \/, %XX, a line break
// after base64) that may spell a secret another way, or break a base64
// run that holds one, send t to the full rewrite.
func (s *Scrubber) mayHold(t string) bool {
	if s == nil {
		return false
	}
	if s.always {
		return true
	}
	for _, n := range s.plainNeedles {
		if strings.Contains(t, n) {
			return true
		}
	}
	start, end := -1, -1 // the current base64 run, or the last one's end
	runLen := 0          // the last run's length
	for i := 0; i < len(t); i++ {
		c := t[i]
		if b64[c] {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			if i-start >= s.minPrint && s.printIn(t[start:i]) {
				return true
			}
			end, runLen, start = i, i-start, -1
		}
		switch c {
		case '\\':
			if i+1 >= len(t) {
				return true
			}
			switch t[i+1] {
			case 'u':
				if i+6 > len(t) {
					return true
				}
				r, ok := hex4(t[i+2 : i+6])
				if !ok || r >= utf8.RuneSelf && s.nonASCII || r < utf8.RuneSelf && (s.chars[r] || b64[r] || r == '%') {
					return true
				}
				i += 5
			case '/': // a base64 '/' or a secret's, spelled another way
				if s.chars['/'] || end == i {
					return true
				}
				i++
			case 'n', 'r': // a line of wrapped base64 ends here
				if end == i && runLen >= wrapRun {
					return true
				}
				i++
			default:
				i++
			}
		case '\r', '\n':
			if end == i && runLen >= wrapRun {
				return true
			}
		case '%':
			// %25 is a percent sign: perhaps a secret encoded twice.
			if i+2 < len(t) {
				if b, ok := hex2(t[i+1], t[i+2]); ok && (s.chars[b] || b == '%' || b64[b] && end == i) {
					return true
				}
			}
		}
	}
	return start >= 0 && len(t)-start >= s.minPrint && s.printIn(t[start:])
}

// printIn reports whether run holds a base64 fingerprint of a secret.
func (s *Scrubber) printIn(run string) bool {
	for _, p := range s.prints {
		if strings.Contains(run, p) {
			return true
		}
	}
	return false
}

// b64 holds the bytes of either base64 alphabet, and padding.
var b64 = func() (t [256]bool) {
	for c := range 256 {
		t[c] = isBase64(byte(c))
	}
	return t
}()

func hex2(a, b byte) (byte, bool) {
	x, ok1 := unhex(a)
	y, ok2 := unhex(b)
	return x<<4 | y, ok1 && ok2
}

func hex4(h string) (rune, bool) {
	var r rune
	for i := 0; i < 4; i++ {
		x, ok := unhex(h[i])
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(x)
	}
	return r, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// String returns v with every secret cut out: a plain text (an error
// message, a log line) or one string of a decoded JSON value.
func (s *Scrubber) String(v string) string {
	if !s.mayHold(v) {
		return v
	}
	v = s.plain(v)
	// Percent-encoded, perhaps more than once: a secret is cut out of
	// the text decoded as far as it takes, which then stands for the
	// encoded one. (Each round shortens the text: the loop ends.)
	for cur := v; strings.IndexByte(cur, '%') >= 0; {
		d := percentDecode(cur)
		if d == cur {
			break
		}
		if p := s.plain(d); p != d {
			v, d = p, p
		}
		cur = d
	}
	return s.base64Runs(v)
}

// plain replaces every plain occurrence of a secret in v.
func (s *Scrubber) plain(v string) string {
	for _, sec := range s.secrets {
		if strings.Contains(v, sec) {
			v = strings.ReplaceAll(v, sec, Redacted)
		}
	}
	return v
}

// base64Runs replaces every run of base64 characters (line breaks
// within allowed) that encodes bytes holding a secret.
func (s *Scrubber) base64Runs(v string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(v); {
		if !isBase64(v[i]) {
			i++
			continue
		}
		j := i
		for j < len(v) && (isBase64(v[j]) || v[j] == '\r' || v[j] == '\n') {
			j++
		}
		run := v[i:j]
		if strings.ContainsAny(run, "\r\n") {
			run = strings.NewReplacer("\r", "", "\n", "").Replace(run)
		}
		for _, n := range s.needles {
			if strings.Contains(run, n) {
				b.WriteString(v[last:i])
				b.WriteString(redactedBase64)
				last = j
				break
			}
		}
		i = j
	}
	if last == 0 {
		return v
	}
	b.WriteString(v[last:])
	return b.String()
}

// percentDecode decodes every %XX of v, leaving anything else as it is.
func percentDecode(v string) string {
	if strings.IndexByte(v, '%') < 0 {
		return v
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '%' && i+2 < len(v) {
			if b, ok := hex2(v[i+1], v[i+2]); ok {
				out = append(out, b)
				i += 2
				continue
			}
		}
		out = append(out, v[i])
	}
	return string(out)
}

// JSON returns the JSON text b with every secret cut out of its strings,
// keys and numbers: b itself when it cannot hold one (the usual case, at
// the cost of a few searches and no allocation), else b rewritten. ok is
// false when b may hold a secret and is not JSON: the caller must not
// pass it on.
func (s *Scrubber) JSON(b []byte) (out []byte, ok bool) {
	if !s.mayHold(unsafe.String(unsafe.SliceData(b), len(b))) {
		return b, true
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return nil, false
	}
	out, err := marshalPlain(s.Value(v))
	if err != nil {
		return nil, false
	}
	// What the rewrite left must not spell a secret plainly (it cannot:
	// this is the rule that it holds to).
	for _, n := range s.needles {
		if bytes.Contains(out, []byte(n)) {
			return nil, false
		}
	}
	return out, true
}

// Value scrubs a decoded JSON value (as encoding/json decodes into any,
// numbers as json.Number or float64) in place where it can, and returns
// it.
func (s *Scrubber) Value(v any) any {
	switch v := v.(type) {
	case string:
		return s.String(v)
	case json.Number: // a numeric credential (an account number, a PIN)
		if r := s.String(v.String()); r != v.String() {
			return r
		}
		return v
	case []any:
		for i := range v {
			v[i] = s.Value(v[i])
		}
		return v
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[s.String(k)] = s.Value(e)
		}
		return out
	}
	return v
}

// Any returns v (any value encoding/json can encode) as a JSON text
// without secrets: v's encoding when it holds none, which callers decode
// back into their own type only when changed is true. ok is false when v
// cannot be encoded.
func (s *Scrubber) Any(v any) (clean json.RawMessage, changed, ok bool) {
	b, err := marshalPlain(v)
	if err != nil {
		return nil, false, false
	}
	out, ok := s.JSON(b)
	if !ok {
		return nil, false, false
	}
	return out, !bytes.Equal(out, b), true
}

// Scrubber returns what cuts the secrets of c's credential out of what its
// upstream sends. Every answer, notification and request c hands on is
// scrubbed already; this is for data that reaches the agent another way.
func (c *Conn) Scrubber() *Scrubber { return c.scrubber }

// Empty reports whether s has no secret to cut out.
func (s *Scrubber) Empty() bool { return s == nil || len(s.secrets) == 0 }

// withheld is the message of an upstream's answer that may hold a secret
// and cannot be scrubbed (it is not JSON).
const withheld = "the upstream's answer was withheld: it may hold a credential"

// scrubResponse scrubs an upstream's JSON-RPC response in place: its
// result, or its error's message and data.
func (c *Conn) scrubResponse(resp *transport.JSONRPCResponse) {
	if resp == nil || c.scrubber.Empty() {
		return
	}
	if len(resp.Result) > 0 {
		if out, ok := c.scrubber.JSON(resp.Result); ok {
			resp.Result = out
		} else {
			resp.Result = nil
			resp.Error = &mcp.JSONRPCErrorDetails{Code: mcp.INTERNAL_ERROR, Message: withheld}
		}
	}
	if e := resp.Error; e != nil {
		e.Message = c.scrubber.String(e.Message)
		if e.Data != nil {
			if clean, changed, ok := c.scrubber.Any(e.Data); !ok {
				e.Data = nil
			} else if changed {
				e.Data = clean
			}
		}
	}
}

// scrubParams returns the params of a request or notification from the
// upstream without secrets: params itself when it holds none.
func (c *Conn) scrubParams(params any) any {
	if params == nil || c.scrubber.Empty() {
		return params
	}
	if raw, ok := params.(json.RawMessage); ok {
		out, ok := c.scrubber.JSON(raw)
		if !ok {
			return json.RawMessage(`{}`)
		}
		return json.RawMessage(out)
	}
	clean, changed, ok := c.scrubber.Any(params)
	switch {
	case !ok:
		return json.RawMessage(`{}`)
	case changed:
		return clean
	}
	return params
}

// scrubNotification returns n without secrets in its params.
func (c *Conn) scrubNotification(n mcp.JSONRPCNotification) mcp.JSONRPCNotification {
	if c.scrubber.Empty() {
		return n
	}
	clean, changed, ok := c.scrubber.Any(n.Params)
	if ok && !changed {
		return n
	}
	n.Params = mcp.NotificationParams{}
	if ok {
		_ = json.Unmarshal(clean, &n.Params)
	}
	return n
}

// encodedString is s as it appears inside a JSON string.
func encodedString(s string) []byte {
	b, _ := marshalPlain(s)
	return bytes.TrimSuffix(bytes.TrimPrefix(bytes.TrimSpace(b), []byte(`"`)), []byte(`"`))
}

// marshalPlain is json.Marshal without HTML escaping.
func marshalPlain(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
