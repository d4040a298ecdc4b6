package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"slices"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/internal/rawjson"
)

// An answer speaks the era of its request. A 2026-07-28 upstream puts
// resultType and its serverInfo (_meta) in every result, as that version
// requires; forwarded as they are to an initialize-era agent (2025-11-25
// and earlier), they are fields its protocol does not have. mcp-go adds
// them itself only to 2026-07-28 answers, so what an initialize-era answer
// must lose is what the upstream put there, on either lane.

// metaServerInfo is the _meta key of the 2026-07-28 serverInfo, quoted as
// it appears in JSON.
const metaServerInfo = `"` + mcp.MetaKeyServerInfo + `"`

// initializeEraResult is the views' mcp-go OnSuccess hook: on a request of
// the initialize era it takes the 2026-only fields out of the result before
// mcp-go encodes it (every result type holds mcp.Result, whose pointer
// methods reach them).
func initializeEraResult(ctx context.Context, _ any, _ mcp.MCPMethod, _ any, result any) {
	if mcpserver.IsModernRequest(ctx) {
		return
	}
	r, ok := result.(mcp.ResultMetadata)
	if !ok {
		return
	}
	if r.GetResultType() == mcp.ResultTypeComplete {
		r.SetResultType("") // absent means complete; input_required is resolved by mcp-go first
	}
	if meta := r.GetResultMeta(); meta != nil && meta.AdditionalFields[mcp.MetaKeyServerInfo] != nil {
		delete(meta.AdditionalFields, mcp.MetaKeyServerInfo)
		if meta.ProgressToken == nil && len(meta.AdditionalFields) == 0 {
			r.SetResultMeta(nil)
		}
	}
}

// initializeEraRaw is initializeEraResult for a raw result (the direct
// lane's, on a 2025-11-25 session): a top-level resultType "complete" and
// _meta's serverInfo are cut out of the bytes, and an _meta left empty
// with them. A result that holds neither (the byte search says so without
// a walk) is returned as it is; one that is not a JSON object, too. res
// must be valid JSON, as the raw client's results are (tools.Conn checks
// the answer before it hands the result on). One walk, one allocation.
func initializeEraRaw(res json.RawMessage) json.RawMessage {
	if !bytes.Contains(res, []byte(`"resultType"`)) && !bytes.Contains(res, []byte(metaServerInfo)) {
		return res
	}
	out := make([]byte, 0, len(res))
	out = append(out, '{')
	n := 0 // members written
	member := func(key []byte) {
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = append(out, '"')
		out = append(out, key...)
		out = append(out, '"', ':')
	}
	ok := rawjson.Members(res, func(key, value []byte) bool {
		switch {
		case string(key) == "resultType" && string(value) == `"`+string(mcp.ResultTypeComplete)+`"`:
		case string(key) == "_meta" && len(value) > 0 && value[0] == '{' && bytes.Contains(value, []byte(metaServerInfo)):
			mark, before := len(out), n
			member(key)
			out = append(out, '{')
			inner := 0
			if !rawjson.Members(value, func(k, v []byte) bool {
				if string(k) != mcp.MetaKeyServerInfo {
					if inner > 0 {
						out = append(out, ',')
					}
					inner++
					out = append(out, '"')
					out = append(out, k...)
					out = append(out, '"', ':')
					out = append(out, v...)
				}
				return true
			}) {
				return false
			}
			if inner == 0 { // nothing left of it
				out, n = out[:mark], before
				return true
			}
			out = append(out, '}')
		default:
			member(key)
			out = append(out, value...)
		}
		return true
	})
	if !ok {
		return res
	}
	return append(out, '}')
}

// StdioStreams wraps the agent's side of an MCP stdio connection, for an
// mcp-go v1.2.1 defect: its stdio session takes no notice of 2026-07-28's
// opt-in, so every broadcast (list_changed of tools, prompts, resources;
// resources/updated) reaches a client that never asked for it, when the
// protocol allows a server only the notifications of the client's own
// requests and those of a subscriptions/listen stream. Once the agent
// speaks 2026-07-28 (a request carrying the version in _meta, and no
// initialize), such a notification is written only while a
// subscriptions/listen request of the agent asks for it.
//
// Both sides are read without decoding but for the few lines that may
// matter (a byte search picks them): the agent's initialize,
// 2026-07-28 and subscriptions/listen requests, and the notifications in
// question. mcp-go writes each message in one Write, which is what the
// writer filters.
func StdioStreams(in io.Reader, out io.Writer) (io.Reader, io.Writer) {
	e := &stdioEra{listens: map[string]mcp.SubscriptionFilter{}}
	return &eraReader{r: in, era: e}, &eraWriter{w: out, era: e}
}

// stdioEra is what the agent's requests said of its era and its open
// subscriptions/listen requests.
type stdioEra struct {
	mu      sync.Mutex
	legacy  bool                              // it sent initialize
	modern  bool                              // it sent a 2026-07-28 request
	listens map[string]mcp.SubscriptionFilter // request ID (as JSON) → what it asked for
}

// maxInspected bounds the part of one input line kept for inspection:
// the members that matter come first in what clients write, and a
// longer line is passed on unread.
const maxInspected = 64 << 10

type eraReader struct {
	r       io.Reader
	era     *stdioEra
	line    []byte
	skipped bool // the current line outgrew maxInspected
}

func (r *eraReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	for rest := p[:n]; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		chunk := rest
		if i >= 0 {
			chunk = rest[:i]
		}
		if !r.skipped && len(r.line)+len(chunk) <= maxInspected {
			r.line = append(r.line, chunk...)
		} else {
			r.skipped, r.line = true, r.line[:0]
		}
		if i < 0 {
			break
		}
		if !r.skipped {
			r.era.request(r.line)
		}
		r.line, r.skipped, rest = r.line[:0], false, rest[i+1:]
	}
	return n, err
}

// request notes what one line of the agent says of its era and listens.
func (e *stdioEra) request(line []byte) {
	initialize := bytes.Contains(line, []byte(`"initialize"`))
	modern := bytes.Contains(line, []byte(`"`+mcp.MetaKeyProtocolVersion+`"`))
	listen := bytes.Contains(line, []byte(`"`+mcp.MethodSubscriptionsListen+`"`))
	if !initialize && !listen {
		e.mu.Lock()
		known := e.modern
		e.mu.Unlock()
		if !modern || known {
			return // nothing new: most lines, decoded by mcp-go alone
		}
	}
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method mcp.MCPMethod   `json:"method"`
		Params struct {
			Meta          map[string]json.RawMessage `json:"_meta"`
			Notifications mcp.SubscriptionFilter     `json:"notifications"`
		} `json:"params"`
	}
	if json.Unmarshal(line, &msg) != nil || msg.ID == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case msg.Method == mcp.MethodInitialize:
		e.legacy = true
	case string(msg.Params.Meta[mcp.MetaKeyProtocolVersion]) != "":
		var v string
		if json.Unmarshal(msg.Params.Meta[mcp.MetaKeyProtocolVersion], &v) == nil && mcp.IsModernProtocol(v) {
			e.modern = true
		}
	}
	if msg.Method == mcp.MethodSubscriptionsListen {
		e.listens[string(msg.ID)] = msg.Params.Notifications
	}
}

type eraWriter struct {
	w   io.Writer
	era *stdioEra
}

// broadcasts are the notifications that belong to no request.
var broadcasts = [][]byte{
	[]byte(`"` + mcp.MethodNotificationToolsListChanged + `"`),
	[]byte(`"` + mcp.MethodNotificationPromptsListChanged + `"`),
	[]byte(`"` + mcp.MethodNotificationResourcesListChanged + `"`),
	[]byte(`"` + mcp.MethodNotificationResourceUpdated + `"`),
}

func (w *eraWriter) Write(p []byte) (int, error) {
	if w.era.withheld(p) {
		return len(p), nil
	}
	return w.w.Write(p)
}

// withheld reports whether the message p must not reach a 2026-07-28
// agent, and forgets the listen request p answers.
func (e *stdioEra) withheld(p []byte) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.modern || e.legacy {
		return false
	}
	if len(e.listens) > 0 && (bytes.Contains(p, []byte(`"result"`)) || bytes.Contains(p, []byte(`"error"`))) {
		var r struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(p, &r) == nil && r.ID != nil {
			delete(e.listens, string(r.ID))
		}
	}
	broadcast := false
	for _, b := range broadcasts {
		if bytes.Contains(p, b) {
			broadcast = true
			break
		}
	}
	if !broadcast {
		return false
	}
	var n struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			URI string `json:"uri"`
		} `json:"params"`
	}
	if json.Unmarshal(p, &n) != nil || n.ID != nil {
		return false // a response that mentions one: not a broadcast
	}
	for _, f := range e.listens {
		switch n.Method {
		case mcp.MethodNotificationToolsListChanged:
			if f.ToolsListChanged {
				return false
			}
		case mcp.MethodNotificationPromptsListChanged:
			if f.PromptsListChanged {
				return false
			}
		case mcp.MethodNotificationResourcesListChanged:
			if f.ResourcesListChanged {
				return false
			}
		case mcp.MethodNotificationResourceUpdated:
			if slices.Contains(f.ResourceSubscriptions, n.Params.URI) {
				return false
			}
		default:
			return false // a method that only looks like one
		}
	}
	switch n.Method {
	case mcp.MethodNotificationToolsListChanged, mcp.MethodNotificationPromptsListChanged,
		mcp.MethodNotificationResourcesListChanged, mcp.MethodNotificationResourceUpdated:
		return true
	}
	return false
}
