package server

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/limits"
	"github.com/connectors-gateway/connectors/metrics"
	"github.com/connectors-gateway/connectors/tools"
)

// The tasks extension of protocol 2026-07-28 (SEP-2663,
// io.modelcontextprotocol/tasks), passed through a single-integration view
// whose upstream advertises it. mcp-go v1.2.1 knows only the tasks of
// 2025-11-25 and takes no handler for a method it does not know, so the
// transport offers these requests to the gateway in front of mcp-go
// (taskshttp.go), and they go upstream as bytes on the tenant's own
// connection (tools/tasks.go), with the plan of every call (plan.go).
//
// The upstream's taskId never reaches the agent. A CreateTaskResult comes
// back with a gateway task ID in its place, which seals (AES-GCM, the key
// every replica shares) the tenant, the integration and the upstream's
// taskId: any replica serves tasks/get, tasks/update and tasks/cancel by
// opening it, nothing is kept between the requests, and a tenant cannot
// name another's task. An ID that does not open, or opens for another
// tenant or integration, is answered as an unknown task, and nothing is
// sent upstream for it.

const (
	// taskPurpose is what the gateway task IDs are sealed for.
	taskPurpose = "cgw-task-id/v1"
	// taskIDTTL bounds a gateway task ID of a task whose ttlMs is null
	// (unbounded) or longer; taskIDMargin outlives the upstream's ttlMs,
	// whose clock started a little before the gateway's.
	taskIDTTL    = 30 * 24 * time.Hour
	taskIDMargin = 5 * time.Minute
)

// The methods of the tasks extension.
const (
	methodTasksGet    = "tasks/get"
	methodTasksUpdate = "tasks/update"
	methodTasksCancel = "tasks/cancel"
)

// TaskRequest is a request of the tasks extension the transport parsed
// for a single-integration endpoint.
type TaskRequest struct {
	View   string // the integration of the /mcp/{integration} endpoint
	Method string // tools/call, tasks/get, tasks/update or tasks/cancel
	// Call is the tools/call (a tool that may answer with a task).
	Call DirectCall
	// TaskID is the gateway task ID of a tasks/* request, as sent.
	TaskID string
	// InputResponses answer a task's inputRequests (tasks/update).
	InputResponses json.RawMessage
	// Capabilities are the agent's declared client capabilities.
	Capabilities json.RawMessage
}

// TaskAnswer is the answer to a TaskRequest: Result, or Error (a JSON-RPC
// error object) whose code is Code. Both are nil when the agent went away.
type TaskAnswer struct {
	Result json.RawMessage
	Error  json.RawMessage
	Code   int
}

// sealedTask is what a gateway task ID holds.
type sealedTask struct {
	Tenant      string `json:"t"`
	Integration string `json:"i"`
	Upstream    string `json:"u"` // the upstream's taskId
}

// TasksExtension returns the settings of the tasks extension that the
// upstream of view advertises on the calling tenant's connection; ok is
// false when it advertises none, or the tenant cannot use view.
func (g *Gateway) TasksExtension(ctx context.Context, view string) (settings json.RawMessage, ok bool) {
	v, found := g.single[view]
	if !found {
		return nil, false
	}
	conn, err := v.allowedConn(ctx)
	if err != nil || !conn.Direct() {
		return nil, false
	}
	s, found := conn.Extensions()[tools.TasksExtension]
	if !found || s == nil {
		return nil, false
	}
	settings, err = json.Marshal(s)
	return settings, err == nil
}

// ServeTask serves r; ok is false when it does not, and nothing was sent
// upstream: serve it the usual way. It takes a tools/call of a tool the
// caller's catalogue says may answer with a task, and the tasks/* requests
// of an upstream that advertises the extension.
func (g *Gateway) ServeTask(ctx context.Context, r TaskRequest) (TaskAnswer, bool) {
	v, found := g.single[r.View]
	if !found {
		return TaskAnswer{}, false
	}
	if r.Method == string(mcp.MethodToolsCall) {
		return g.callTask(ctx, v, r.Call)
	}
	return g.taskMethod(ctx, v, r)
}

// callTask forwards the tools/call c of a task-supporting tool, and gives
// a CreateTaskResult a gateway task ID. The gateway's own requestState (a
// link offer's, a replayed call's) is the usual path's to take out.
func (g *Gateway) callTask(ctx context.Context, v *view, c DirectCall) (TaskAnswer, bool) {
	begin := time.Now()
	if bytes.HasPrefix(c.RequestState, []byte(`"`+linkStatePrefix)) || bytes.HasPrefix(c.RequestState, []byte(`"`+replayStatePrefix)) {
		return TaskAnswer{}, false
	}
	// The connection first: for an upstream without tasks, declining
	// costs a look into the pool and no catalogue.
	p, conn, ok := g.taskConn(ctx, v.only)
	if !ok {
		return TaskAnswer{}, false
	}
	upstream, ok := v.taskTool(ctx, c.Name)
	if !ok {
		return TaskAnswer{}, false
	}
	ticket, refusal := g.admit(ctx, v.only) // limits.go
	if refusal != nil {
		g.count(ctx, v.only, metrics.OutcomeDenied, begin)
		return TaskAnswer{Result: v.complete(encodeResult(limitResult(refusal)))}, true
	}
	defer ticket.Release()
	call := tools.DirectCall{
		Name: upstream, Arguments: c.Arguments, Capabilities: c.Capabilities, Meta: c.Meta,
		InputResponses: c.InputResponses, RequestState: c.RequestState,
	}
	res, err := run(ctx, p, conn, func(ctx context.Context, conn *tools.Conn) (json.RawMessage, error) {
		return conn.CallTask(ctx, call)
	}, refusedDirect)
	if errors.Is(err, errNeedsLink) {
		linked, lerr := g.linkResult(withDirectCapabilities(ctx, c), v.only)
		res, err = encodeResult(linked), lerr
	}
	if err == nil {
		res, err = g.namedTask(p.tenant, v.only, res)
	}
	a := g.taskAnswer(ctx, v, string(mcp.MethodToolsCall), res, err)
	outcome := metrics.OutcomeOK
	switch {
	case a.Error != nil || a.Result == nil:
		outcome = metrics.OutcomeError
	case isError(a.Result):
		outcome = metrics.OutcomeToolError
	}
	g.count(ctx, v.only, outcome, begin)
	return a, true
}

// taskMethod forwards the tasks/get, tasks/update or tasks/cancel r of a
// task the gateway task ID r.TaskID names, with the upstream's taskId, and
// puts the gateway's back in the answer.
func (g *Gateway) taskMethod(ctx context.Context, v *view, r TaskRequest) (TaskAnswer, bool) {
	p, conn, ok := g.taskConn(ctx, v.only)
	if !ok {
		return TaskAnswer{}, false
	}
	upstream, ok := g.openTask(p.tenant, v.only, r.TaskID)
	if !ok {
		return unknownTask(r.TaskID), true
	}
	req := tools.TaskRequest{Method: r.Method, TaskID: upstream, InputResponses: r.InputResponses, Capabilities: r.Capabilities}
	res, err := run(ctx, p, conn, func(ctx context.Context, conn *tools.Conn) (json.RawMessage, error) {
		return conn.Task(ctx, req)
	}, refusedDirect)
	if rpc, isRPC := errors.AsType[*tools.RPCError](err); isRPC {
		// The upstream's own answer (an unknown task, most likely), as it
		// would be for an ID that did not open.
		return TaskAnswer{Error: renameTask(rpc.Object, upstream, r.TaskID), Code: rpc.Code}, true
	}
	return g.taskAnswer(ctx, v, r.Method, renameTask(res, upstream, r.TaskID), err), true
}

// taskConn returns the plan and the connection of a request of the tasks
// extension to integration: the tenant's connection, with a credential
// to call with, to an upstream that speaks 2026-07-28 and advertises the
// extension. ok is false otherwise.
func (g *Gateway) taskConn(ctx context.Context, integration string) (*plan, *tools.Conn, bool) {
	acc, err := g.access(ctx)
	if err != nil || acc(integration) != accessLinked {
		return nil, nil, false
	}
	p, err := g.newPlan(ctx, integration)
	if err != nil {
		return nil, nil, false
	}
	conn, err := p.connect(ctx)
	if err != nil || !conn.Direct() {
		return nil, nil, false
	}
	if s, ok := conn.Extensions()[tools.TasksExtension]; !ok || s == nil {
		return nil, nil, false
	}
	return p, conn, true
}

// taskTool returns the upstream's name of the tool exposed as name in the
// caller's catalogue of v's integration when the caller may call it (the
// rule of tools/list) and it may answer with a task (its taskSupport is
// optional or required).
func (v *view) taskTool(ctx context.Context, name string) (upstream string, ok bool) {
	t, ok := v.tenantTool(ctx, v.only, name)
	if !ok {
		return "", false
	}
	cat := v.callerCatalogue(ctx, v.only)
	if cat == nil {
		return "", false
	}
	i, found := slices.BinarySearchFunc(cat.tools, name, func(t mcp.Tool, name string) int { return cmp.Compare(t.Name, name) })
	if !found || cat.tools[i].Execution == nil {
		return "", false
	}
	switch cat.tools[i].Execution.TaskSupport {
	case mcp.TaskSupportOptional, mcp.TaskSupportRequired:
		return t.upstream, true
	}
	return "", false
}

// taskAnswer is the answer of a forwarded request: its result, completed
// as the view's results are (resultType, serverInfo); the upstream's
// JSON-RPC error as it is; and a failure below the protocol as the direct
// lane answers one for tools/call (a tool execution error, which the model
// sees), and as an internal error for tasks/*.
func (g *Gateway) taskAnswer(ctx context.Context, v *view, method string, res json.RawMessage, err error) TaskAnswer {
	if rpc, ok := errors.AsType[*tools.RPCError](err); ok {
		return TaskAnswer{Error: rpc.Object, Code: rpc.Code}
	}
	r, limited := errors.AsType[*limits.Refusal](err) // the upstream's own limit
	switch {
	case err != nil && ctx.Err() != nil:
		return TaskAnswer{}
	case limited && method == string(mcp.MethodToolsCall):
		res = encodeResult(limitResult(r))
	case err != nil && method == string(mcp.MethodToolsCall):
		res = encodeResult(mcp.NewToolResultError(g.agentText(ctx, v.only, err)))
	case err != nil:
		b, _ := json.Marshal(map[string]any{"code": mcp.INTERNAL_ERROR, "message": g.agentText(ctx, v.only, err)})
		return TaskAnswer{Error: b, Code: mcp.INTERNAL_ERROR}
	}
	return TaskAnswer{Result: v.complete(res)}
}

// namedTask gives a CreateTaskResult res a gateway task ID in place of the
// upstream's taskId; any other result is returned as it is.
func (g *Gateway) namedTask(tenant, integration string, res json.RawMessage) (json.RawMessage, error) {
	if !bytes.Contains(res, []byte(`"task"`)) {
		return res, nil
	}
	var created struct {
		ResultType mcp.ResultType `json:"resultType"`
		TaskID     string         `json:"taskId"`
		TTL        *int64         `json:"ttlMs"`
	}
	if json.Unmarshal(res, &created) != nil || created.ResultType != "task" {
		return res, nil
	}
	if created.TaskID == "" {
		return nil, errors.New("the upstream created a task without a taskId")
	}
	ttl := taskIDTTL
	if created.TTL != nil && *created.TTL >= 0 && *created.TTL < taskIDTTL.Milliseconds() {
		ttl = time.Duration(*created.TTL)*time.Millisecond + taskIDMargin
	}
	data, err := json.Marshal(sealedTask{Tenant: tenant, Integration: integration, Upstream: created.TaskID})
	if err != nil {
		return nil, err
	}
	id, err := g.sealer.SealData(taskPurpose, data, ttl)
	if err != nil {
		return nil, fmt.Errorf("naming the task: %w", err)
	}
	return renameTask(res, created.TaskID, id), nil
}

// openTask returns the upstream's taskId the gateway task ID id names, if
// it opens and was made for tenant and integration.
func (g *Gateway) openTask(tenant, integration, id string) (upstream string, ok bool) {
	data, err := g.sealer.OpenData(taskPurpose, id)
	if err != nil {
		return "", false
	}
	var t sealedTask
	if json.Unmarshal(data, &t) != nil || t.Upstream == "" {
		return "", false
	}
	if t.Tenant != tenant || t.Integration != integration {
		// Sealed by the gateway, for someone else: a leaked or probed ID.
		g.log.Warn("task_id_refused", "tenantId", tenant, "integration", integration,
			"reason", "the gateway task ID was issued for another tenant or integration")
		return "", false
	}
	return t.Upstream, true
}

// renameTask returns raw with the task ID from in place of to: its
// taskId member and, when from is long enough not to be found by chance
// and written plainly, wherever else the answer names it (an error's
// message, a result's text).
func renameTask(raw json.RawMessage, from, to string) json.RawMessage {
	if len(raw) == 0 || from == to {
		return raw
	}
	quoted, _ := json.Marshal(from)
	if len(from) >= 8 && string(quoted) == `"`+from+`"` {
		return bytes.ReplaceAll(raw, []byte(from), []byte(to))
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return raw
	}
	if _, ok := fields["taskId"]; !ok {
		return raw
	}
	fields["taskId"], _ = json.Marshal(to)
	out, err := json.Marshal(fields)
	if err != nil {
		return raw
	}
	return out
}

// unknownTask is the answer to a request for a task the gateway task ID
// does not name: what an upstream answers for an unknown taskId.
func unknownTask(id string) TaskAnswer {
	b, _ := json.Marshal(map[string]any{"code": mcp.INVALID_PARAMS, "message": fmt.Sprintf("unknown taskId %q", id)})
	return TaskAnswer{Error: b, Code: mcp.INVALID_PARAMS}
}

// missingTasksExtension answers a tasks/* request of an agent that did not
// declare the extension (SEP-2575 MissingRequiredClientCapability).
func missingTasksExtension() TaskAnswer {
	b, _ := json.Marshal(map[string]any{
		"code":    mcp.MISSING_REQUIRED_CLIENT_CAPABILITY,
		"message": "missing required client capability: " + tools.TasksExtension,
		"data": map[string]any{"requiredCapabilities": map[string]any{
			"extensions": map[string]any{tools.TasksExtension: map[string]any{}},
		}},
	})
	return TaskAnswer{Error: b, Code: mcp.MISSING_REQUIRED_CLIENT_CAPABILITY}
}
