package tools

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"go.opentelemetry.io/otel/trace"

	"github.com/connectors-gateway/connectors/internal/rawjson"
	"github.com/connectors-gateway/connectors/telemetry"
)

// A direct call is a tools/call forwarded to an upstream as bytes: the
// arguments go out and the result comes back without being decoded into Go
// values and encoded again. Only an upstream that speaks protocol
// 2026-07-28 takes one: every request stands alone there (no session, no
// server-to-client requests on the stream, input requests carried in the
// result), so a call is one POST and its answer over streamable HTTP (see
// h1.go), or one line and its answer over stdio (see pipe.go).

// DirectCall is one tools/call to forward as bytes.
type DirectCall struct {
	Name      string          // the upstream's tool name
	Arguments json.RawMessage // a JSON object, or empty
	// Capabilities are the agent's client capabilities (a JSON object):
	// the upstream asks (input_required) only for what the agent can do.
	Capabilities json.RawMessage
	// Meta holds the agent's other _meta entries, forwarded; none may be
	// a protocol key (io.modelcontextprotocol/...).
	Meta map[string]json.RawMessage
	// InputResponses and RequestState, when set, answer an earlier
	// input_required result of the same call.
	InputResponses json.RawMessage
	RequestState   json.RawMessage
}

func init() { newDirectLane = newHTTPLane }

// httpLane is a pool's direct lane: every direct call to an HTTP upstream
// goes through the pool's http.Client, or through h1 when the pool has the
// default client and h1 takes the upstream's URL.
type httpLane struct {
	client *http.Client
	fast   *h1 // nil: every call through client
}

func newHTTPLane(client *http.Client, isDefault bool) directLane {
	l := &httpLane{client: client}
	if isDefault {
		l.fast = newH1()
	}
	return l
}

func (l *httpLane) target(lc *launch) *directTarget {
	t := &directTarget{url: lc.in.Upstream.URL, headers: http.Header{}, send: l.client.Do, drop: func() {}}
	if u, err := url.Parse(t.url); err == nil && l.fast.takes(u) {
		host := h1Host(u)
		t.send = func(req *http.Request) (*http.Response, error) { return l.send(req) }
		t.drop = func() { l.fast.closeHost(host) }
	}
	for k, v := range lc.headers {
		t.headers.Set(k, v)
	}
	return t
}

func (l *httpLane) reap(now time.Time) { l.fast.closeStale(now) }
func (l *httpLane) close()             { l.fast.closeIdle() }

// send sends req through h1, or the http.Client for what h1 leaves to it:
// bodies over h1MaxBody, and redirects.
func (l *httpLane) send(req *http.Request) (*http.Response, error) {
	// h1 writes the whole request before it reads: an upstream that
	// answers early (a 401 before reading the body) and stops reading
	// would stall or break a body larger than the socket's buffers, where
	// net/http reads the answer while it writes.
	if req.ContentLength > h1MaxBody {
		return l.client.Do(req)
	}
	resp, err := l.fast.Do(req)
	if err != nil || !redirect(resp) {
		return resp, err
	}
	resp.Body.Close()
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	req.Body = body
	return l.client.Do(req)
}

// redirect reports whether the http.Client would follow resp.
func redirect(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return resp.Header.Get("Location") != ""
	}
	return false
}

// version is the protocol the conn's session negotiated, set by the
// client through trackedHTTP.SetProtocolVersion.
func (c *Conn) version() string {
	v, _ := c.negotiated.Load().(string)
	return v
}

// Modern reports whether the upstream's session speaks 2026-07-28 (or a
// later version): stateless requests, input rounds in results rather than
// requests to the agent.
func (c *Conn) Modern() bool { return mcp.IsModernProtocol(c.version()) }

// Direct reports whether c takes direct calls: a live upstream, streamable HTTP
// or stdio, whose session speaks 2026-07-28.
func (c *Conn) Direct() bool {
	return (c.direct != nil || c.pipe != nil) && mcp.IsModernProtocol(c.version()) && c.Err() == nil
}

// CallDirect calls an upstream tool and returns its result as the upstream
// sent it, with the tenant's credential values redacted. An upstream that
// refuses the credential (HTTP 401) is an error wrapping
// transport.ErrAuthorizationRequired; the call was not made. Bounds,
// cancellation and errors are those of CallTool.
func (c *Conn) CallDirect(ctx context.Context, call DirectCall) (_ json.RawMessage, err error) {
	if !c.Direct() {
		return nil, ErrNoDirect
	}
	if telemetry.On() {
		var span trace.Span
		ctx, span = c.traceDirect(ctx, &call)
		defer func() { telemetry.End(span, err) }()
	}
	params, err := c.directParams(call)
	if err != nil {
		return nil, err
	}
	// A request ID of the gateway's own, never the agent's, and never one
	// of the mcp-go client's (numbers).
	id := "gw-" + strconv.FormatUint(ownSeq.Add(1), 36)
	var result json.RawMessage
	err = c.do(ctx, nil, func(ctx context.Context, cli *client.Client) error {
		frame := make([]byte, 0, len(params)+64)
		frame = append(frame, `{"jsonrpc":"2.0","id":"`...)
		frame = append(frame, id...)
		frame = append(frame, `","method":"tools/call","params":`...)
		frame = append(frame, params...)
		frame = append(frame, '}')
		if c.direct == nil { // stdio: a line on the process's pipes
			line, err := c.pipe.call(ctx, id, append(frame, '\n'))
			if err != nil {
				if ctx.Err() != nil {
					// What mcp-go's client does for its own calls over stdio.
					if t, ok := cli.GetTransport().(*tracked); ok {
						t.sendCancelled(ctx, mcp.NewRequestId(id))
					}
				}
				return transport.NewError(err)
			}
			result, err = answer(line, id)
			return err
		}
		result, err = c.postDirect(ctx, call.Name, frame, id)
		return err
	})
	if err != nil {
		scrubRefusal(err, c.scrubber)
		return nil, err
	}
	return c.scrubDirect(result), nil
}

// traceDirect is traceCall for a direct call, whose _meta is the agent's
// (call.Meta is copied before the traceparent is put in it).
func (c *Conn) traceDirect(ctx context.Context, call *DirectCall) (context.Context, trace.Span) {
	var agent string
	if raw, ok := call.Meta["traceparent"]; ok {
		_ = json.Unmarshal(raw, &agent)
	}
	ctx, span := telemetry.StartUpstream(ctx, agent, c.tenant, c.integration, string(mcp.MethodToolsCall), call.Name)
	meta := maps.Clone(call.Meta)
	if meta == nil {
		meta = map[string]json.RawMessage{}
	}
	meta["traceparent"], _ = json.Marshal(telemetry.Traceparent(ctx))
	call.Meta = meta
	return ctx, span
}

// directParams encodes the params of call: its members as they are (each
// checked to be one JSON value, so none can add members of its own), the
// _meta keys in order, as encoding/json would write them.
func (c *Conn) directParams(call DirectCall) (json.RawMessage, error) {
	// Each value the caller gave must be one JSON value: `1,"name":"x"`
	// would otherwise add members of its own.
	for _, v := range call.Meta {
		if !json.Valid(v) {
			return nil, errors.New("direct call: a _meta value is not JSON")
		}
	}
	for _, v := range [...][]byte{call.Capabilities, call.Arguments, call.InputResponses, call.RequestState} {
		if len(v) > 0 && !json.Valid(v) {
			return nil, errors.New("direct call: a parameter is not JSON")
		}
	}
	caps := call.Capabilities
	if len(caps) == 0 {
		caps = json.RawMessage("{}")
	}
	args := call.Arguments
	if bytes.Equal(bytes.TrimSpace(args), []byte("null")) {
		args = nil // "no arguments"; some servers choke on null
	}
	fixed := [...]string{mcp.MetaKeyClientCapabilities, mcp.MetaKeyClientInfo, mcp.MetaKeyProtocolVersion}
	keys := make([]string, 0, len(call.Meta)+len(fixed))
	size := len(caps) + len(c.clientInfoJSON) + len(args) + len(call.InputResponses) + len(call.RequestState) + 200
	for k, v := range call.Meta {
		if slices.Contains(fixed[:], k) {
			continue // the gateway's own
		}
		keys = append(keys, k)
		size += len(k) + len(v) + 4
	}
	keys = append(keys, fixed[:]...)
	slices.Sort(keys)

	out := make([]byte, 0, size)
	out = append(out, `{"_meta":{`...)
	for i, k := range keys {
		var v []byte
		switch k {
		case mcp.MetaKeyClientCapabilities:
			v = caps
		case mcp.MetaKeyClientInfo:
			v = c.clientInfoJSON
		case mcp.MetaKeyProtocolVersion:
			v = appendJSONString(nil, c.version())
		default:
			v = call.Meta[k]
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, k)
		out = append(out, ':')
		out = append(out, v...)
	}
	out = append(out, `},"name":`...)
	out = appendJSONString(out, call.Name)
	for _, m := range [...]struct {
		key   string
		value []byte
	}{{"arguments", args}, {"inputResponses", call.InputResponses}, {"requestState", call.RequestState}} {
		if len(m.value) > 0 {
			out = append(out, `,"`...)
			out = append(out, m.key...)
			out = append(out, `":`...)
			out = append(out, m.value...)
		}
	}
	out = append(out, '}')
	return out, nil
}

// appendJSONString appends s as a JSON string: as it is when it needs no
// escape (the usual case), else as encoding/json writes it.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	if !utf8.ValidString(s) {
		b, _ := json.Marshal(s)
		return append(dst, b...)
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// maxDirectResult bounds an upstream's answer to one call.
const maxDirectResult = 64 << 20

// postDirect sends body and reads the answer with ID id: a JSON body, or the
// response event of an SSE stream (notifications on it go where the
// session's would).
func (c *Conn) postDirect(ctx context.Context, name string, body []byte, id string) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.direct.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = c.direct.headers.Clone()
	req.Header["Content-Type"] = []string{"application/json"}
	req.Header["Accept"] = []string{"application/json, text/event-stream"}
	req.Header[mcp.HeaderProtocolVersion] = []string{c.version()}
	req.Header[mcp.HeaderMethod] = []string{string(mcp.MethodToolsCall)}
	req.Header[mcp.HeaderName] = []string{name}
	telemetry.Inject(ctx, req.Header)
	// Failures below the protocol are reported as mcp-go's client reports
	// them (transport error: ...), so that both paths say the same.
	resp, err := c.direct.send(req)
	if err != nil {
		return nil, transport.NewError(err)
	}
	c.heard.Add(1)
	noteThrottle(&c.throttled, resp)
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, transport.NewError(transport.ErrAuthorizationRequired)
	case resp.StatusCode != http.StatusOK:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var msg struct {
			Error *mcp.JSONRPCErrorDetails `json:"error"`
		}
		if json.Unmarshal(body, &msg) == nil && msg.Error != nil {
			return nil, answerError(msg.Error) // a JSON-RPC error, whatever the status
		}
		return nil, transport.NewError(fmt.Errorf("request failed with status %d: %s", resp.StatusCode, body))
	}
	media, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch media {
	case "application/json":
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxDirectResult))
		if err != nil {
			return nil, transport.NewError(err)
		}
		return answer(raw, id)
	case "text/event-stream":
		return c.readEvents(resp.Body, id)
	}
	return nil, transport.NewError(fmt.Errorf("unexpected content type %q", media))
}

// answer returns the result of the JSON-RPC response raw to request id.
func answer(raw []byte, id string) (json.RawMessage, error) {
	// The answer as servers write it, read by a member walk; anything else
	// (an error, other members, odd spellings) as encoding/json reads it.
	if json.Valid(raw) {
		var gotID, result []byte
		if rawjson.Members(raw, func(k, v []byte) bool {
			switch string(k) {
			case "jsonrpc":
				return true
			case "id":
				return gotID == nil && string(v) == `"`+id+`"` && setTo(&gotID, v)
			case "result":
				return result == nil && v[0] == '{' && setTo(&result, v)
			}
			return false
		}) && gotID != nil && result != nil {
			return result, nil
		}
	}
	return answerDecoded(raw, id)
}

// answerDecoded is answer with encoding/json.
func answerDecoded(raw []byte, id string) (json.RawMessage, error) {
	var msg struct {
		ID     json.RawMessage          `json:"id"`
		Result json.RawMessage          `json:"result"`
		Error  *mcp.JSONRPCErrorDetails `json:"error"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		return nil, transport.NewError(fmt.Errorf("malformed response: %w", err))
	}
	// The ID as encoding/json reads it (escapes undone), as mcp-go's
	// client matches its own.
	var got string
	if json.Unmarshal(msg.ID, &got) != nil || got != id {
		return nil, transport.NewError(fmt.Errorf("response to another request (id %s)", msg.ID))
	}
	if msg.Error != nil {
		return nil, answerError(msg.Error)
	}
	if len(msg.Result) == 0 || msg.Result[0] != '{' {
		return nil, transport.NewError(errors.New("response without a result object"))
	}
	return msg.Result, nil
}

func setTo(dst *[]byte, v []byte) bool {
	*dst = v
	return true
}

// readEvents reads an SSE stream until the response to id. Notifications
// are handled as the session's are; anything else is skipped.
func (c *Conn) readEvents(r io.Reader, id string) (json.RawMessage, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxDirectResult)
	var data []byte
	// event handles one event's data; done when it was the response.
	event := func() (json.RawMessage, bool, error) {
		defer func() { data = data[:0] }()
		var probe struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if len(data) == 0 || json.Unmarshal(data, &probe) != nil {
			return nil, false, nil
		}
		switch {
		case probe.Method != "" && len(probe.ID) == 0:
			var n mcp.JSONRPCNotification
			if json.Unmarshal(data, &n) == nil {
				c.handleNotification(n)
			}
		case probe.Method == "" && len(probe.ID) > 0:
			res, err := answer(data, id)
			return res, true, err
		default:
			c.logger.Debug("upstream_request_ignored", "method", c.scrubber.String(probe.Method))
		}
		return nil, false, nil
	}
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0: // end of an event
			if res, done, err := event(); done {
				return res, err
			}
		case bytes.HasPrefix(line, []byte("data:")):
			if len(data)+len(line) > maxDirectResult {
				return nil, transport.NewError(errors.New("response event too large"))
			}
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))...)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, transport.NewError(err)
	}
	// A stream may end right after its last data line.
	if res, done, err := event(); done {
		return res, err
	}
	return nil, transport.NewError(errors.New("stream ended without a response"))
}

// withheldResult stands for a result that may hold a secret and is not
// JSON, which cannot be scrubbed string by string.
var withheldResult = json.RawMessage(`{"content":[{"type":"text","text":"[redacted]"}],"isError":true}`)

// scrubDirect returns a direct result without the conn's secrets: raw itself in
// the usual case (a few searches, no allocation), else rewritten.
func (c *Conn) scrubDirect(raw json.RawMessage) json.RawMessage {
	out, ok := c.scrubber.JSON(raw)
	if !ok {
		return withheldResult
	}
	return out
}
