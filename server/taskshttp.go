package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/tools"
)

// Tasker serves the tasks extension (SEP-2663) on the single-integration
// endpoints (Gateway.ServeTask): the requests mcp-go cannot serve.
type Tasker interface {
	// TasksExtension returns the extension's settings when the upstream of
	// view advertises it to the caller.
	TasksExtension(ctx context.Context, view string) (settings json.RawMessage, ok bool)
	// ServeTask answers r; ok false means it did not, and nothing was sent
	// upstream: r is to be served the usual way.
	ServeTask(ctx context.Context, r TaskRequest) (TaskAnswer, bool)
}

// tasks serves the tasks extension of 2026-07-28 requests to
// /mcp/{integration} in front of mcp-go: it adds the extension to the
// server/discover answer when the integration's upstream advertises it,
// and offers Tasks the tools/call requests the direct lane declined (it
// declines every tool that may answer with a task, see takesDirect) and
// the tasks/get, tasks/update and tasks/cancel requests. Those of an
// upstream that advertises the extension are checked as the upstream
// checks them (the Mcp-Method and Mcp-Name headers, then the agent's
// declaration of the extension). Anything else, and anything Tasks
// declines, goes to next as it came.
func (h *Handler) tasks(next http.Handler) http.Handler {
	if h.opts.Tasks == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.Header.Get(mcp.HeaderMethod)
		switch {
		case !taskShape(r):
			next.ServeHTTP(w, r)
			return
		case method == string(mcp.MethodServerDiscover):
			h.discoverTasks(w, r, next)
			return
		case method != string(mcp.MethodToolsCall) && !isTaskMethod(method):
			next.ServeHTTP(w, r)
			return
		}
		body, err := httpwire.ReadAll(r.Body)
		if err != nil { // too large, or cut: mcp-go answers it
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
			next.ServeHTTP(w, r)
			return
		}
		r.Body = httpwire.NewBody(body)
		ctx := withRequestMemo(r.Context())
		req, id, ok := parseTaskRequest(r, body)
		if !ok {
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		answer, ok := h.serveTask(ctx, r, req)
		if !ok {
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		writeAnswer(w, id, answer)
	})
}

// taskShape reports whether r may be a request of the tasks extension: a
// 2026-07-28 POST of JSON, without a session, to /mcp/{integration}.
func taskShape(r *http.Request) bool {
	if r.Method != http.MethodPost || r.PathValue("integration") == "" || r.Header.Get(mcp.HeaderSessionID) != "" ||
		r.Header.Get(mcp.HeaderProtocolVersion) != mcp.ProtocolVersion20260728 || r.Header.Get(mcp.HeaderLastEventID) != "" {
		return false
	}
	media, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && media == "application/json"
}

func isTaskMethod(method string) bool {
	return method == methodTasksGet || method == methodTasksUpdate || method == methodTasksCancel
}

// serveTask offers req to Tasks. A tasks/* request of an upstream that
// advertises the extension is first checked: its routing headers, then
// the agent's declaration of the extension.
func (h *Handler) serveTask(ctx context.Context, r *http.Request, req TaskRequest) (TaskAnswer, bool) {
	if req.Method == string(mcp.MethodToolsCall) {
		return h.opts.Tasks.ServeTask(ctx, req)
	}
	if _, ok := h.opts.Tasks.TasksExtension(ctx, req.View); !ok {
		return TaskAnswer{}, false
	}
	if a, bad := taskHeaders(r, req); bad {
		return a, true
	}
	if !declaresTasks(req.Capabilities) {
		return missingTasksExtension(), true
	}
	return h.opts.Tasks.ServeTask(ctx, req)
}

// parseTaskRequest reads a tools/call as the direct lane does (any other
// shape is mcp-go's), or a tasks/get, tasks/update or tasks/cancel with
// its taskId and the agent's declared capabilities.
func parseTaskRequest(r *http.Request, body []byte) (req TaskRequest, id json.RawMessage, ok bool) {
	req.View = r.PathValue("integration")
	if r.Header.Get(mcp.HeaderMethod) == string(mcp.MethodToolsCall) {
		if req.Call, id, ok = parseDirect(body, r.Header.Get(mcp.HeaderName)); !ok {
			return req, nil, false
		}
		req.Method, req.Call.View, req.Capabilities = string(mcp.MethodToolsCall), req.View, req.Call.Capabilities
		return req, id, true
	}
	var msg struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Method  string          `json:"method"`
		Params  struct {
			Meta           map[string]json.RawMessage `json:"_meta"`
			TaskID         *string                    `json:"taskId"`
			InputResponses json.RawMessage            `json:"inputResponses"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &msg) != nil || msg.JSONRPC != mcp.JSONRPC_VERSION || !isTaskMethod(msg.Method) ||
		len(msg.ID) == 0 || !(msg.ID[0] == '"' || msg.ID[0] == '-' || msg.ID[0] >= '0' && msg.ID[0] <= '9') ||
		msg.Params.TaskID == nil || string(msg.Params.Meta[mcp.MetaKeyProtocolVersion]) != `"`+mcp.ProtocolVersion20260728+`"` {
		return req, nil, false
	}
	caps := msg.Params.Meta[mcp.MetaKeyClientCapabilities]
	if len(caps) == 0 || caps[0] != '{' {
		return req, nil, false // mcp-go refuses it
	}
	req.Method, req.TaskID, req.Capabilities = msg.Method, *msg.Params.TaskID, caps
	if msg.Method == methodTasksUpdate {
		req.InputResponses = msg.Params.InputResponses
	}
	return req, msg.ID, true
}

// taskHeaders checks the routing headers of a tasks/* request (SEP-2243,
// SEP-2663): Mcp-Method names its method, Mcp-Name its taskId. bad is
// true with the answer to a request whose headers do not agree.
func taskHeaders(r *http.Request, req TaskRequest) (a TaskAnswer, bad bool) {
	mismatch := func(format string, args ...any) (TaskAnswer, bool) {
		b, _ := json.Marshal(map[string]any{"code": mcp.HEADER_MISMATCH, "message": fmt.Sprintf(format, args...)})
		return TaskAnswer{Error: b, Code: mcp.HEADER_MISMATCH}, true
	}
	if m := r.Header.Get(mcp.HeaderMethod); m != req.Method {
		return mismatch("%s: header value %q does not match body method %q", mcp.HeaderMethod, m, req.Method)
	}
	raw := r.Header.Get(mcp.HeaderName)
	name, ok := mcp.DecodeHeaderValue(raw)
	switch {
	case raw == "":
		return mismatch("%s: missing required header for method %q", mcp.HeaderName, req.Method)
	case !ok:
		return mismatch("%s: invalid Base64 encoding", mcp.HeaderName)
	case name != req.TaskID:
		return mismatch("%s: header value %q does not match body taskId %q", mcp.HeaderName, name, req.TaskID)
	}
	return TaskAnswer{}, false
}

// declaresTasks reports whether the client capabilities caps declare the
// tasks extension.
func declaresTasks(caps json.RawMessage) bool {
	var c struct {
		Extensions map[string]json.RawMessage `json:"extensions"`
	}
	if json.Unmarshal(caps, &c) != nil {
		return false
	}
	s, ok := c.Extensions[tools.TasksExtension]
	return ok && string(s) != "null"
}

// writeAnswer answers the request of id with a (of the tasks lane, or the
// direct lane's refusal), at the HTTP status 2026-07-28 gives an error's
// code. An empty answer (the agent went away) writes nothing.
func writeAnswer(w http.ResponseWriter, id json.RawMessage, a TaskAnswer) {
	member, value, status := `,"result":`, a.Result, http.StatusOK
	switch {
	case a.Error != nil:
		member, value, status = `,"error":`, a.Error, rpcStatus(a.Code)
	case a.Result == nil:
		return
	}
	out := make([]byte, 0, len(value)+len(id)+40)
	out = append(out, `{"jsonrpc":"2.0","id":`...)
	out = append(out, id...)
	out = append(out, member...)
	out = append(out, value...)
	out = append(out, '}')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// rpcStatus is the HTTP status protocol 2026-07-28 prescribes for a
// JSON-RPC error code.
func rpcStatus(code int) int {
	switch code {
	case mcp.METHOD_NOT_FOUND:
		return http.StatusNotFound
	case mcp.HEADER_MISMATCH, mcp.MISSING_REQUIRED_CLIENT_CAPABILITY, mcp.UNSUPPORTED_PROTOCOL_VERSION,
		mcp.INVALID_REQUEST, mcp.INVALID_PARAMS, mcp.PARSE_ERROR:
		return http.StatusBadRequest
	}
	return http.StatusOK
}

// discoverTasks serves a server/discover through next, and adds the tasks
// extension to the capabilities of its answer when the upstream of the
// endpoint's integration advertises it to the caller.
func (h *Handler) discoverTasks(w http.ResponseWriter, r *http.Request, next http.Handler) {
	ctx := withRequestMemo(r.Context())
	r = r.WithContext(ctx)
	settings, ok := h.opts.Tasks.TasksExtension(ctx, r.PathValue("integration"))
	if !ok {
		next.ServeHTTP(w, r)
		return
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	next.ServeHTTP(rec, r)
	body := rec.body.Bytes()
	if media, _, _ := mime.ParseMediaType(rec.header.Get("Content-Type")); rec.status == http.StatusOK && media == "application/json" {
		if b, ok := withTasksExtension(body, settings); ok {
			body = b
			rec.header.Del("Content-Length")
		}
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(body)
}

// withTasksExtension returns the server/discover answer msg with the tasks
// extension (its settings) among the result's capabilities.
func withTasksExtension(msg []byte, settings json.RawMessage) ([]byte, bool) {
	var m, result, caps map[string]json.RawMessage
	var extensions map[string]json.RawMessage
	if json.Unmarshal(msg, &m) != nil || json.Unmarshal(m["result"], &result) != nil ||
		json.Unmarshal(result["capabilities"], &caps) != nil {
		return nil, false
	}
	if raw, ok := caps["extensions"]; ok && json.Unmarshal(raw, &extensions) != nil {
		return nil, false
	}
	if extensions == nil {
		extensions = map[string]json.RawMessage{}
	}
	extensions[tools.TasksExtension] = settings
	var err error
	if caps["extensions"], err = json.Marshal(extensions); err != nil {
		return nil, false
	}
	if result["capabilities"], err = json.Marshal(caps); err != nil {
		return nil, false
	}
	if m["result"], err = json.Marshal(result); err != nil {
		return nil, false
	}
	out, err := json.Marshal(m)
	return out, err == nil
}

// recorder holds the answer of a handler, for discoverTasks to complete.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

func (r *recorder) Flush() {}
