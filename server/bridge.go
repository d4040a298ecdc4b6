package server

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/tools"
)

// The era bridge, initialize-era agent → 2026-07-28 upstream. Such an
// upstream asks the agent for something (an elicitation, a sampling, its
// roots) by answering the call input_required, to be retried with the
// answers (tools.Conn hands the result over unanswered). A 2026-07-28
// agent is given the result as it is and retries itself; an agent of the
// initialize era has no such result: it is asked with requests of its own
// on the call's stream, as a 2025-11-25 upstream would ask it, and the
// gateway retries the call upstream with its answers and the upstream's
// requestState, round after round, until the upstream completes. What the
// agent did not declare it can answer is not put to it: the call ends with
// an error saying what the upstream wanted, rather than waiting for an
// answer that cannot come.

// maxInputRounds bounds the rounds of one call, as mcp-go's client and
// server bound theirs: an upstream that asks on for ever fails the call.
const maxInputRounds = 10

// errUpstreamBusy is an input_required that asks nothing: the upstream
// sheds load and wants the call again later, which an initialize-era agent
// cannot be told.
var errUpstreamBusy = errors.New("the upstream is busy: retry the call later")

// roundError is a call the bridge could not complete, in words the agent
// may read (what the upstream asked, what the agent answered).
type roundError struct{ err error }

func (e *roundError) Error() string {
	return "the upstream asked the agent for input, and the call could not go on: " + e.err.Error()
}
func (e *roundError) Unwrap() error { return e.err }

// answerRounds answers res's input rounds for an initialize-era agent:
// needs says what a result asks, retry sends the call again with the
// answers. A 2026-07-28 request's result is returned as it is.
func answerRounds[R any](ctx context.Context, r relay, res *R,
	needs func(*R) (mcp.InputRequests, string, bool),
	retry func(context.Context, mcp.MultiRoundTripParams) (*R, error),
) (*R, error) {
	if mcpserver.IsModernRequest(ctx) {
		return res, nil
	}
	for round := 0; ; round++ {
		requests, state, pending := needs(res)
		switch {
		case !pending:
			return res, nil
		case len(requests) == 0:
			return nil, &roundError{errUpstreamBusy}
		case round == maxInputRounds:
			return nil, &roundError{fmt.Errorf("it asked more than %d times", maxInputRounds)}
		}
		answers, err := r.answer(ctx, requests)
		if err != nil {
			return nil, &roundError{err}
		}
		if res, err = retry(ctx, mcp.MultiRoundTripParams{InputResponses: answers, RequestState: state}); err != nil {
			return nil, err
		}
	}
}

// answer puts requests to the agent, all at once (they are independent),
// and returns its answers by the upstream's keys. The first that fails
// ends the others.
func (r relay) answer(ctx context.Context, requests mcp.InputRequests) (mcp.InputResponses, error) {
	declared := sessionCapabilities(r.ctx)
	for _, req := range requests {
		if err := declares(declared, req); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		answers  = make(mcp.InputResponses, len(requests))
		firstErr error
	)
	for key, req := range requests {
		wg.Go(func() {
			answer, err := r.ask1(ctx, req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("the agent did not answer the upstream's %s: %w", req.Method, err)
					cancel()
				}
				return
			}
			answers[key] = answer
		})
	}
	wg.Wait()
	return answers, firstErr
}

// ask1 puts one request to the agent.
func (r relay) ask1(ctx context.Context, req mcp.InputRequest) (mcp.InputResponse, error) {
	switch req.Method {
	case mcp.MethodElicitationCreate:
		res, err := r.Elicit(ctx, mcp.ElicitationRequest{
			Request: mcp.Request{Method: string(mcp.MethodElicitationCreate)}, Params: *req.Elicitation,
		})
		if err != nil || res == nil {
			return mcp.InputResponse{}, cmpErr(err)
		}
		return mcp.NewElicitationInputResponse(*res), nil
	case mcp.MethodSamplingCreateMessage:
		res, err := r.CreateMessage(ctx, mcp.CreateMessageRequest{
			Request: mcp.Request{Method: string(mcp.MethodSamplingCreateMessage)}, CreateMessageParams: *req.Sampling,
		})
		if err != nil || res == nil {
			return mcp.InputResponse{}, cmpErr(err)
		}
		return mcp.NewSamplingInputResponse(*res), nil
	default: // roots/list: declares let nothing else through
		res, err := r.ListRoots(ctx, mcp.ListRootsRequest{})
		if err != nil || res == nil {
			return mcp.InputResponse{}, cmpErr(err)
		}
		return mcp.NewRootsInputResponse(*res), nil
	}
}

// cmpErr is err, or an error for an answer that came back empty.
func cmpErr(err error) error {
	if err != nil {
		return err
	}
	return errors.New("the agent's answer was empty")
}

// ListRoots asks the agent for its roots.
func (r relay) ListRoots(ctx context.Context, _ mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	if r.replay != nil {
		var res mcp.ListRootsResult
		return &res, r.replay.question(ctx, mcp.NewRootsInputRequest(), &res)
	}
	ctx, cancel := r.ask(ctx)
	defer cancel()
	if err := awaitListening(ctx, r.ctx); err != nil {
		return nil, err
	}
	return r.srv.RequestRoots(ctx, mcp.ListRootsRequest{Request: mcp.Request{Method: string(mcp.MethodListRoots)}})
}

// declares checks that the agent declared it can answer req: sampling,
// elicitation (of req's mode), roots.
func declares(caps mcp.ClientCapabilities, req mcp.InputRequest) error {
	ok := false
	switch req.Method {
	case mcp.MethodSamplingCreateMessage:
		ok = req.Sampling != nil && caps.Sampling != nil
	case mcp.MethodListRoots:
		ok = caps.Roots != nil
	case mcp.MethodElicitationCreate:
		ok = req.Elicitation != nil && caps.Elicitation != nil
		if ok && req.Elicitation.Mode == mcp.ElicitationModeURL {
			ok = caps.Elicitation.URL != nil
		}
	default:
		return fmt.Errorf("the upstream asked the agent for %q, which the gateway does not carry", req.Method)
	}
	if !ok {
		return fmt.Errorf("the upstream asked the agent for %s, which the agent did not declare it can answer", req.Method)
	}
	return nil
}

// sessionCapabilities returns the client capabilities an initialize-era
// agent declared on its session (none when ctx has no such session).
func sessionCapabilities(ctx context.Context) mcp.ClientCapabilities {
	if s, ok := mcpserver.ClientSessionFromContext(ctx).(mcpserver.SessionWithClientInfo); ok {
		return s.GetClientCapabilities()
	}
	return mcp.ClientCapabilities{}
}

// withAgent returns ctx telling the upstream what its agent declared it
// can answer (tools.WithAgentCapabilities): a 2026-07-28 request's own
// capabilities, or an initialize-era session's.
func withAgent(ctx context.Context) context.Context {
	if mcpserver.IsModernRequest(ctx) {
		var caps mcp.ClientCapabilities
		if info := mcpserver.RequestProtocolInfoFromContext(ctx); info.ClientCapabilities != nil {
			caps = *info.ClientCapabilities
		}
		return tools.WithAgentCapabilities(ctx, caps)
	}
	if mcpserver.ClientSessionFromContext(ctx) == nil {
		return ctx
	}
	return tools.WithAgentCapabilities(ctx, sessionCapabilities(ctx))
}

// retried reports whether a request answers an earlier input_required.
func retried(p mcp.MultiRoundTripParams) bool {
	return p.RequestState != "" || len(p.InputResponses) > 0
}

// toolNeeds, promptNeeds: what a result asks, for answerRounds.
func toolNeeds(res *mcp.CallToolResult) (mcp.InputRequests, string, bool) {
	if res == nil || !res.NeedsInput() {
		return nil, "", false
	}
	return res.InputRequests, res.RequestState, true
}

func promptNeeds(res *mcp.GetPromptResult) (mcp.InputRequests, string, bool) {
	if res == nil || !res.NeedsInput() {
		return nil, "", false
	}
	return res.InputRequests, res.RequestState, true
}
