package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The tasks extension of protocol version 2026-07-28 (SEP-2663,
// io.modelcontextprotocol/tasks) and the tools of its tasks-* scenarios.
//
// mcp-go v1.2.1 implements only the tasks of 2025-11-25 (a task asked for
// with a task parameter, its result fetched with tasks/result), and its
// server takes no handler for a method it does not know. So the extension
// lives here, as routes of the interceptor (intercept.go): a tools/call of a
// task tool from a client that declared the extension creates a task, and
// tasks/get, tasks/update and tasks/cancel act on it. The tools themselves
// are ordinary mcp-go tools, so tools/list shows them, and a client that did
// not declare the extension calls one synchronously through mcp-go, as
// SEP-2663 asks of a tool whose task support is optional.
//
// The server decides alone which calls become tasks: every call of a task
// tool does, and a task parameter a 2025-11-25 client may still send is
// ignored. A task asks for input the way a multi round-trip tool does
// (SEP-2322): its handler returns an InputRequiredResult; the task waits in
// input_required until tasks/update has answered every request, and the
// handler is then called again with the answers.

const (
	tasksExtension = "io.modelcontextprotocol/tasks"
	// taskTTL is how long a task stays readable after it was created.
	taskTTL          = 10 * time.Minute
	taskPollInterval = 250 * time.Millisecond
	// maxComputeSeconds bounds slow_compute, whose duration the client picks.
	maxComputeSeconds = 120
)

// Task statuses (SEP-2663).
const (
	taskWorking       = "working"
	taskInputRequired = "input_required"
	taskCompleted     = "completed"
	taskFailed        = "failed"
	taskCancelled     = "cancelled"
)

func terminal(status string) bool {
	return status == taskCompleted || status == taskFailed || status == taskCancelled
}

// taskTool is a tool whose calls become tasks.
type taskTool struct {
	handler server.ToolHandlerFunc
	// required: the tool cannot be called without the extension, so a
	// client that did not declare it is refused (-32021) instead of served
	// synchronously.
	required bool
	// admit, when set, gathers input before the task is created: while it
	// returns an InputRequiredResult, the call is answered with it
	// synchronously, as a multi round-trip call.
	admit func(mcp.CallToolRequest) *mcp.CallToolResult
}

type task struct {
	id   string
	tool *taskTool
	// call is the tools/call the task was created for.
	call             mcp.CallToolRequest
	status           string
	created, updated time.Time
	result           *mcp.CallToolResult // completed
	err              *rpcError           // failed
	// While input_required: the requests still unanswered, the answers
	// given so far, and the requestState to call the handler again with.
	pending mcp.InputRequests
	answers mcp.InputResponses
	state   string
	// cancel stops the handler while it runs.
	cancel context.CancelFunc
}

type taskStore struct {
	mu    sync.Mutex
	tools map[string]*taskTool
	tasks map[string]*task
}

func newTaskStore() *taskStore {
	return &taskStore{tools: make(map[string]*taskTool), tasks: make(map[string]*task)}
}

func registerTaskTools(s *server.MCPServer, store *taskStore) {
	optional := mcp.WithTaskSupport(mcp.TaskSupportOptional)
	required := mcp.WithTaskSupport(mcp.TaskSupportRequired)
	s.AddTool(mcp.NewTool("greet",
		mcp.WithDescription("Greets someone; never a task"),
		mcp.WithString("name", mcp.Description("Who to greet"))), greet)
	for _, t := range []struct {
		tool mcp.Tool
		task *taskTool
	}{
		{mcp.NewTool("slow_compute", optional,
			mcp.WithDescription("Computes for the given number of seconds, then answers"),
			mcp.WithNumber("seconds", mcp.Description("How long to compute (at most 120)")),
			mcp.WithString("label", mcp.Description("Named in the answer"))),
			&taskTool{handler: slowCompute}},
		{mcp.NewTool("failing_job", required,
			mcp.WithDescription("Runs for a second, then fails (a tool execution error)")),
			&taskTool{handler: failingJob, required: true}},
		{mcp.NewTool("protocol_error_job", optional,
			mcp.WithDescription("Fails below the tool (a protocol error)")),
			&taskTool{handler: protocolErrorJob}},
		{mcp.NewTool("confirm_delete", optional,
			mcp.WithDescription("Asks the user to confirm, then deletes the file (pretends to)"),
			mcp.WithString("filename", mcp.Description("The file to delete"))),
			&taskTool{handler: confirmDelete}},
		{mcp.NewTool("multi_input", optional,
			mcp.WithDescription("Asks the user two questions at once, then answers with both answers")),
			&taskTool{handler: multiInput}},
		{mcp.NewTool("test_tool_with_task", required,
			mcp.WithDescription("Asks the user's name (multi round-trip), then greets them from a task")),
			&taskTool{handler: greetFromTask, required: true, admit: askUserName}},
	} {
		s.AddTool(t.tool, t.task.handler)
		store.tools[t.tool.Name] = t.task
	}
}

func greet(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return textResult(fmt.Sprintf("Hello, %s!", req.GetString("name", "World"))), nil
}

func slowCompute(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	seconds := min(max(req.GetFloat("seconds", 0), 0), maxComputeSeconds)
	if err := sleep(ctx, time.Duration(seconds*float64(time.Second))); err != nil {
		return nil, err
	}
	return textResult(fmt.Sprintf("Computed %q in %gs", req.GetString("label", ""), seconds)), nil
}

func failingJob(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if err := sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	return mcp.NewToolResultError("failing_job failed, as it always does"), nil
}

func protocolErrorJob(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	panic("protocol_error_job fails below the tool, as it always does")
}

func confirmDelete(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	filename := req.GetString("filename", "")
	answer := server.ElicitationResponse(req.Params.InputResponses, "confirm")
	if answer == nil {
		return server.NewInputRequestBuilder("").
			Elicit("confirm", mcp.ElicitationParams{
				Message:         fmt.Sprintf("Delete %s?", filename),
				RequestedSchema: nameSchema("confirm", "boolean"),
			}).ToolResult(), nil
	}
	content, _ := answer.Content.(map[string]any)
	if answer.Action != mcp.ElicitationResponseActionAccept || content["confirm"] != true {
		return textResult(fmt.Sprintf("Kept %s", filename)), nil
	}
	return textResult(fmt.Sprintf("Deleted %s", filename)), nil
}

func multiInput(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	first, ok1 := accepted(req.Params.InputResponses, "first")
	second, ok2 := accepted(req.Params.InputResponses, "second")
	if !ok1 || !ok2 {
		return server.NewInputRequestBuilder("").
			Elicit("first", mcp.ElicitationParams{Message: "First: what is your name?", RequestedSchema: nameSchema("name", "string")}).
			Elicit("second", mcp.ElicitationParams{Message: "Second: what is your friend's name?", RequestedSchema: nameSchema("name", "string")}).
			ToolResult(), nil
	}
	return textResult(fmt.Sprintf("First: %v; second: %v", first["name"], second["name"])), nil
}

func askUserName(req mcp.CallToolRequest) *mcp.CallToolResult {
	if _, ok := accepted(req.Params.InputResponses, "user_name"); ok {
		return nil
	}
	return server.NewInputRequestBuilder("").Elicit("user_name", askName()).ToolResult()
}

func greetFromTask(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if ask := askUserName(req); ask != nil {
		return ask, nil
	}
	content, _ := accepted(req.Params.InputResponses, "user_name")
	return textResult(fmt.Sprintf("Hello, %v! (from a task)", content["name"])), nil
}

func newTaskID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func stamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// envelope is the Task every task-shaped answer carries.
func (t *task) envelope() map[string]any {
	return map[string]any{
		"taskId":         t.id,
		"status":         t.status,
		"createdAt":      stamp(t.created),
		"lastUpdatedAt":  stamp(t.updated),
		"ttlMs":          taskTTL.Milliseconds(),
		"pollIntervalMs": taskPollInterval.Milliseconds(),
	}
}

// detailed is the DetailedTask of tasks/get: the envelope plus what the
// status has to show.
func (t *task) detailed() map[string]any {
	d := t.envelope()
	d["resultType"] = mcp.ResultTypeComplete
	switch t.status {
	case taskCompleted:
		d["result"] = t.result
	case taskFailed:
		d["error"] = t.err
	case taskInputRequired:
		d["inputRequests"] = t.pending
	}
	return d
}

// ack is the answer to tasks/update and tasks/cancel: the task's new state
// is for the next tasks/get to show.
func ack() map[string]any {
	return map[string]any{"resultType": mcp.ResultTypeComplete}
}

// create stores a task for the call and starts it. The task is stored
// before its CreateTaskResult is returned, so a tasks/get sent the moment
// the client reads it finds the task.
func (s *taskStore) create(tool *taskTool, call mcp.CallToolRequest) map[string]any {
	now := time.Now()
	t := &task{id: newTaskID(), tool: tool, call: call, status: taskWorking, created: now, updated: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, old := range s.tasks {
		if now.Sub(old.created) > taskTTL {
			if old.cancel != nil {
				old.cancel()
			}
			delete(s.tasks, id)
		}
	}
	s.tasks[t.id] = t
	s.start(t, call)
	created := t.envelope()
	created["resultType"] = "task"
	return created
}

// start calls the task's handler with call in the background. s.mu is held.
func (s *taskStore) start(t *task, call mcp.CallToolRequest) {
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	go func() {
		defer cancel()
		result, err := invoke(ctx, t.tool.handler, call)
		s.settle(t, result, err)
	}()
}

var errNoResult = errors.New("the tool returned no result")

// invoke calls handler, turning a panic into an error: below the tool, it
// fails the task (a protocol error) rather than the fixture.
func invoke(ctx context.Context, handler server.ToolHandlerFunc, call mcp.CallToolRequest) (result *mcp.CallToolResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			result, err = nil, fmt.Errorf("tool panicked: %v", p)
		}
	}()
	result, err = handler(ctx, call)
	if err == nil && result == nil {
		err = errNoResult
	}
	return result, err
}

// settle records what a run of the handler came to. A task cancelled while
// the handler ran stays cancelled.
func (s *taskStore) settle(t *task, result *mcp.CallToolResult, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if terminal(t.status) {
		return
	}
	t.updated, t.cancel = time.Now(), nil
	switch {
	case err != nil:
		t.status, t.err = taskFailed, &rpcError{Code: mcp.INTERNAL_ERROR, Message: err.Error()}
	case result.NeedsInput() && len(result.InputRequests) > 0:
		t.status, t.state = taskInputRequired, result.RequestState
		t.pending, t.answers = maps.Clone(result.InputRequests), make(mcp.InputResponses)
	case result.NeedsInput():
		t.status, t.err = taskFailed, &rpcError{Code: mcp.INTERNAL_ERROR, Message: "the tool asked for input but named none"}
	default:
		result.ResultType = mcp.ResultTypeComplete
		t.status, t.result = taskCompleted, result
	}
}

// update takes the answers to the requests the task waits on, ignoring any
// other, and calls the handler again once none is left unanswered.
func (s *taskStore) update(t *task, responses mcp.InputResponses) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.status != taskInputRequired {
		return
	}
	for id, response := range responses {
		if _, ok := t.pending[id]; ok {
			t.answers[id] = response
			delete(t.pending, id)
		}
	}
	t.updated = time.Now()
	if len(t.pending) > 0 {
		return
	}
	call := t.call
	call.Params.InputResponses, call.Params.RequestState = t.answers, t.state
	t.status, t.pending, t.answers, t.state = taskWorking, nil, nil, ""
	s.start(t, call)
}

// cancel cancels a task that has not ended; for one that has, it does
// nothing, so that cancelling is idempotent.
func (s *taskStore) cancel(t *task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if terminal(t.status) {
		return
	}
	t.status, t.updated = taskCancelled, time.Now()
	t.pending, t.answers = nil, nil
	if t.cancel != nil {
		t.cancel()
		t.cancel = nil
	}
}

func (s *taskStore) lookup(id string) (*task, *rpcError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	if !ok || time.Since(t.created) > taskTTL {
		return nil, &rpcError{Code: mcp.INVALID_PARAMS, Message: fmt.Sprintf("unknown taskId %q", id)}
	}
	return t, nil
}

func (s *taskStore) get(t *task) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return t.detailed()
}

func missingTasksExtension() *rpcError {
	return missingCapability(tasksExtension, map[string]any{"extensions": map[string]any{tasksExtension: map[string]any{}}})
}

// toolRoute answers a tools/call of a task tool from a client that
// declared the extension, and refuses a tool that requires it to one that
// did not. Other calls of task tools are mcp-go's: synchronous.
func (s *taskStore) toolRoute() route {
	return route{
		claims: func(c *call) bool {
			tool, ok := s.tools[c.tool]
			return c.Method == string(mcp.MethodToolsCall) && ok &&
				(tool.required || c.caps.hasExtension(tasksExtension))
		},
		serve: func(c *call) (any, *rpcError) {
			if err := c.standardHeaders(); err != nil {
				return nil, err
			}
			if !c.caps.hasExtension(tasksExtension) {
				return nil, missingTasksExtension()
			}
			var req mcp.CallToolRequest
			if err := json.Unmarshal(c.Params, &req.Params); err != nil {
				return nil, &rpcError{Code: mcp.INVALID_PARAMS, Message: "invalid tools/call params: " + err.Error()}
			}
			req.Method, req.Header, req.Params.Task = c.Method, c.header, nil
			tool := s.tools[c.tool]
			if tool.admit != nil {
				if ask := tool.admit(req); ask != nil {
					return ask, nil
				}
			}
			return s.create(tool, req), nil
		},
	}
}

type taskParams struct {
	TaskID         string             `json:"taskId"`
	InputResponses mcp.InputResponses `json:"inputResponses"`
}

// methodRoute answers tasks/get, tasks/update and tasks/cancel.
func (s *taskStore) methodRoute() route {
	return route{
		claims: func(c *call) bool {
			switch c.Method {
			case "tasks/get", "tasks/update", "tasks/cancel":
				return true
			}
			return false
		},
		serve: func(c *call) (any, *rpcError) {
			var p taskParams
			if err := json.Unmarshal(c.Params, &p); err != nil {
				return nil, &rpcError{Code: mcp.INVALID_PARAMS, Message: fmt.Sprintf("invalid %s params: %v", c.Method, err)}
			}
			if err := taskHeaders(c, p.TaskID); err != nil {
				return nil, err
			}
			if !c.caps.hasExtension(tasksExtension) {
				return nil, missingTasksExtension()
			}
			t, err := s.lookup(p.TaskID)
			if err != nil {
				return nil, err
			}
			switch c.Method {
			case "tasks/get":
				return s.get(t), nil
			case "tasks/update":
				s.update(t, p.InputResponses)
			default:
				s.cancel(t)
			}
			return ack(), nil
		},
	}
}

// taskHeaders checks the routing headers of a tasks method: Mcp-Method,
// and Mcp-Name, which carries the taskId (SEP-2663 "Streamable HTTP:
// Routing Headers") and which mcp-go does not know to check.
func taskHeaders(c *call, taskID string) *rpcError {
	if err := c.standardHeaders(); err != nil {
		return err
	}
	name, ok := mcp.DecodeHeaderValue(c.header.Get(mcp.HeaderName))
	switch {
	case c.header.Get(mcp.HeaderName) == "":
		return &rpcError{Code: mcp.HEADER_MISMATCH, Message: fmt.Sprintf("%s: missing required header for method %q", mcp.HeaderName, c.Method)}
	case !ok:
		return &rpcError{Code: mcp.HEADER_MISMATCH, Message: mcp.HeaderName + ": invalid Base64 encoding"}
	case name != taskID:
		return &rpcError{Code: mcp.HEADER_MISMATCH, Message: fmt.Sprintf("%s: header value %q does not match body taskId %q", mcp.HeaderName, name, taskID)}
	}
	return nil
}
