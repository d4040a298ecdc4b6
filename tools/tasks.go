package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// The tasks extension of protocol 2026-07-28 (SEP-2663,
// io.modelcontextprotocol/tasks), upstream side. mcp-go v1.2.1's client
// knows only the tasks of 2025-11-25, so these requests go as bytes on the
// direct lane's legs (one POST over streamable HTTP, one line over stdio),
// with the integration's own headers and never the agent's, like direct
// calls: a tools/call of a tool that may answer with a task (CallTask), and
// tasks/get, tasks/update and tasks/cancel of the upstream's own task
// (Task). Unlike a direct call, the upstream's JSON-RPC error comes back as
// it was sent (an *RPCError), for the gateway to answer the agent with it.

// TasksExtension is the extension's identifier, under which an upstream
// advertises it (capabilities.extensions) and an agent declares it.
const TasksExtension = "io.modelcontextprotocol/tasks"

// RPCError is the JSON-RPC error an upstream answered a request of the
// tasks lane with, scrubbed of the connection's secrets.
type RPCError struct {
	Code   int
	Object json.RawMessage // the error object: code, message, data
}

func (e *RPCError) Error() string {
	return "upstream answered with JSON-RPC error " + strconv.Itoa(e.Code)
}

// TaskRequest is one tasks/get, tasks/update or tasks/cancel of the
// upstream's own task.
type TaskRequest struct {
	Method string // tasks/get, tasks/update or tasks/cancel
	TaskID string // the upstream's
	// InputResponses answers a task's inputRequests (tasks/update).
	InputResponses json.RawMessage
	// Capabilities are the agent's client capabilities (a JSON object).
	Capabilities json.RawMessage
}

// Extensions returns the extensions the upstream advertised, with their
// settings.
func (c *Conn) Extensions() map[string]any { return c.Capabilities().Extensions }

// CallTask is CallDirect for a tool that may answer with a task: the
// result as the upstream sent it (a CreateTaskResult, an input round or a
// tool result), and the upstream's JSON-RPC error as an *RPCError.
func (c *Conn) CallTask(ctx context.Context, call DirectCall) (json.RawMessage, error) {
	if !c.Direct() {
		return nil, ErrNoDirect
	}
	params, err := c.directParams(call)
	if err != nil {
		return nil, err
	}
	return c.request(ctx, string(mcp.MethodToolsCall), call.Name, params)
}

// Task sends r upstream and returns its result (a DetailedTask, or an
// acknowledgement), or the upstream's JSON-RPC error as an *RPCError.
func (c *Conn) Task(ctx context.Context, r TaskRequest) (json.RawMessage, error) {
	if !c.Direct() {
		return nil, ErrNoDirect
	}
	switch r.Method {
	case "tasks/get", "tasks/cancel":
		r.InputResponses = nil
	case "tasks/update":
	default:
		return nil, fmt.Errorf("tasks: %q is not a method of the tasks extension", r.Method)
	}
	caps := r.Capabilities
	if len(caps) == 0 {
		caps = json.RawMessage("{}")
	}
	// encoding/json checks that each raw value is one JSON value.
	params, err := json.Marshal(struct {
		Meta           map[string]json.RawMessage `json:"_meta"`
		TaskID         string                     `json:"taskId"`
		InputResponses json.RawMessage            `json:"inputResponses,omitempty"`
	}{
		Meta: map[string]json.RawMessage{
			mcp.MetaKeyClientCapabilities: caps,
			mcp.MetaKeyClientInfo:         c.clientInfoJSON,
			mcp.MetaKeyProtocolVersion:    appendJSONString(nil, c.version()),
		},
		TaskID: r.TaskID, InputResponses: r.InputResponses,
	})
	if err != nil {
		return nil, fmt.Errorf("tasks: %w", err)
	}
	return c.request(ctx, r.Method, r.TaskID, params)
}

// request sends one request of method with params, and returns the
// result of the upstream's answer, or its error as an *RPCError. name is
// the Mcp-Name header's value. Bounds, cancellation and failures are
// those of CallDirect.
func (c *Conn) request(ctx context.Context, method, name string, params []byte) (json.RawMessage, error) {
	id := "gw-" + strconv.FormatUint(ownSeq.Add(1), 36)
	frame := make([]byte, 0, len(params)+len(method)+64)
	frame = append(frame, `{"jsonrpc":"2.0","id":"`...)
	frame = append(frame, id...)
	frame = append(frame, `","method":`...)
	frame = appendJSONString(frame, method)
	frame = append(frame, `,"params":`...)
	frame = append(frame, params...)
	frame = append(frame, '}')
	var msg []byte // the upstream's answer, a JSON-RPC response
	var sse json.RawMessage
	err := c.do(ctx, nil, func(ctx context.Context, cli *client.Client) error {
		if c.direct != nil {
			var err error
			msg, sse, err = c.post(ctx, method, name, frame, id)
			return err
		}
		line, err := c.pipe.call(ctx, id, append(frame, '\n'))
		if err != nil && ctx.Err() != nil {
			if t, ok := cli.GetTransport().(*tracked); ok {
				t.sendCancelled(ctx, mcp.NewRequestId(id))
			}
		}
		if err != nil {
			return transport.NewError(err)
		}
		msg = line
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case sse != nil:
		return c.scrubDirect(sse), nil
	}
	return c.rpcAnswer(msg, id)
}

// post sends body over streamable HTTP, with the integration's headers
// (the credential injected) and the routing headers of method. It returns
// the answer as sent when it is JSON (whatever the status: an upstream
// answers an unknown task with 400 and a JSON-RPC error), or the result
// read from an event stream.
func (c *Conn) post(ctx context.Context, method, name string, body []byte, id string) (msg, result json.RawMessage, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.direct.url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header = c.direct.headers.Clone()
	req.Header["Content-Type"] = []string{"application/json"}
	req.Header["Accept"] = []string{"application/json, text/event-stream"}
	req.Header[mcp.HeaderProtocolVersion] = []string{c.version()}
	req.Header[mcp.HeaderMethod] = []string{method}
	if v, ok := mcp.EncodeHeaderValue(name); ok {
		req.Header[mcp.HeaderName] = []string{v}
	}
	resp, err := c.direct.send(req)
	if err != nil {
		return nil, nil, transport.NewError(err)
	}
	c.heard.Add(1)
	noteThrottle(&c.throttled, resp)
	defer resp.Body.Close()
	media, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, nil, transport.NewError(transport.ErrAuthorizationRequired)
	case media == "text/event-stream" && resp.StatusCode == http.StatusOK:
		// An error on a stream is told as mcp-go's client tells it.
		result, err = c.readEvents(resp.Body, id)
		return nil, result, err
	case media == "application/json":
		msg, err = io.ReadAll(io.LimitReader(resp.Body, maxDirectResult))
		if err != nil {
			return nil, nil, transport.NewError(err)
		}
		return msg, nil, nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return nil, nil, transport.NewError(fmt.Errorf("request failed with status %d: %s", resp.StatusCode, b))
}

// rpcAnswer returns the result of raw, the response to the request id,
// scrubbed; or its error as an *RPCError.
func (c *Conn) rpcAnswer(raw []byte, id string) (json.RawMessage, error) {
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		return nil, c.fail(answered(c.integration, transport.NewError(fmt.Errorf("malformed response: %w", err))), err)
	}
	var got string
	if json.Unmarshal(msg.ID, &got) != nil || got != id {
		err := fmt.Errorf("response to another request (id %s)", msg.ID)
		return nil, c.fail(answered(c.integration, transport.NewError(err)), err)
	}
	if len(msg.Error) > 0 && string(msg.Error) != "null" {
		var e struct {
			Code *int `json:"code"`
		}
		object, ok := c.scrubber.JSON(msg.Error)
		if json.Unmarshal(msg.Error, &e) != nil || e.Code == nil || !ok {
			err := errors.New("malformed error in the response")
			return nil, c.fail(answered(c.integration, transport.NewError(err)), err)
		}
		return nil, &RPCError{Code: *e.Code, Object: object}
	}
	if len(msg.Result) == 0 || msg.Result[0] != '{' {
		err := errors.New("response without a result object")
		return nil, c.fail(answered(c.integration, transport.NewError(err)), err)
	}
	return c.scrubDirect(msg.Result), nil
}
