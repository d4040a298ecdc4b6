package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// Multi round-trip requests (2026-07-28, SEP-2322): an upstream of that
// version that needs something of the agent (an elicitation, a sampling,
// its roots) answers a tools/call, prompts/get or resources/read with an
// input_required result, and the agent retries the request with the
// answers and the upstream's requestState. Those rounds are the caller's:
// a 2026-07-28 agent is handed the result; an initialize-era agent is
// asked with requests of its own on the call's stream (the server
// package's bridge). mcp-go's client would answer them itself, with the
// connection's sampling and elicitation handlers, and retry, so tracked
// stops its loop at the first input_required (errInputRequired) and puts
// the agent's answers, which mcp-go's client leaves out of a first
// attempt, into the request.

// roundTripMethods are the requests that may be answered input_required.
var roundTripMethods = map[string]bool{
	string(mcp.MethodToolsCall):     true,
	string(mcp.MethodPromptsGet):    true,
	string(mcp.MethodResourcesRead): true,
}

// errInputRequired carries an upstream's input_required result out of
// mcp-go's client, unanswered.
type errInputRequired struct{ result json.RawMessage }

func (e *errInputRequired) Error() string { return "the upstream asks the agent for input" }

// inputRequiredResult returns the input_required result err carries.
func inputRequiredResult(err error) (*json.RawMessage, bool) {
	if e, ok := errors.AsType[*errInputRequired](err); ok {
		return &e.result, true
	}
	return nil, false
}

// roundTrip is what a request carries for the upstream besides what
// mcp-go's client sends: the agent's answers to an earlier input_required,
// and the client capabilities the agent declared (what the upstream may
// ask it), in place of the gateway's own.
type roundTrip struct {
	params       mcp.MultiRoundTripParams
	capabilities json.RawMessage // empty: the gateway's own
}

type roundTripKey struct{}

func withRoundTrip(ctx context.Context, rt roundTrip) context.Context {
	if len(rt.params.InputResponses) == 0 && rt.params.RequestState == "" && len(rt.capabilities) == 0 {
		return ctx
	}
	return context.WithValue(ctx, roundTripKey{}, rt)
}

// agentCapabilities takes the agent's declared client capabilities out of
// a request's _meta (a 2026-07-28 agent's own; the server package puts an
// initialize-era agent's there), as what a 2026-07-28 upstream is told the
// gateway can ask of the agent: sampling, elicitation and roots, the
// requests the gateway carries to it. Empty when meta holds none.
func agentCapabilities(meta *mcp.Meta) json.RawMessage {
	if meta == nil {
		return nil
	}
	declared, ok := meta.AdditionalFields[mcp.MetaKeyClientCapabilities]
	if !ok {
		return nil
	}
	raw, err := json.Marshal(declared)
	if err != nil {
		return nil
	}
	var caps mcp.ClientCapabilities
	if json.Unmarshal(raw, &caps) != nil {
		return nil
	}
	b, err := json.Marshal(mcp.ClientCapabilities{Sampling: caps.Sampling, Elicitation: caps.Elicitation, Roots: caps.Roots})
	if err != nil {
		return nil
	}
	return b
}

// withAgentRound puts ctx's round trip into the params of a request to a
// 2026-07-28 upstream: mcp-go's client has made them a JSON object by then
// (it added the _meta of the version).
func withAgentRound(ctx context.Context, params any) any {
	rt, ok := ctx.Value(roundTripKey{}).(roundTrip)
	fields, isObject := params.(map[string]json.RawMessage)
	if !ok || !isObject {
		return params
	}
	fields = maps.Clone(fields)
	if len(rt.params.InputResponses) > 0 {
		if b, err := json.Marshal(rt.params.InputResponses); err == nil {
			fields["inputResponses"] = b
		}
	}
	if rt.params.RequestState != "" {
		fields["requestState"], _ = json.Marshal(rt.params.RequestState)
	}
	if len(rt.capabilities) > 0 {
		var meta map[string]json.RawMessage
		if json.Unmarshal(fields["_meta"], &meta) == nil && meta != nil {
			meta[mcp.MetaKeyClientCapabilities] = rt.capabilities
			fields["_meta"], _ = json.Marshal(meta)
		}
	}
	return fields
}

// asksInput reports whether a result is input_required.
func asksInput(result json.RawMessage) bool {
	if !bytes.Contains(result, []byte(mcp.ResultTypeInputRequired)) {
		return false
	}
	var r struct {
		ResultType mcp.ResultType `json:"resultType"`
	}
	return json.Unmarshal(result, &r) == nil && r.ResultType == mcp.ResultTypeInputRequired
}

// hopMeta returns a request's _meta for the upstream: without the
// protocol's own keys (protocolVersion, clientInfo, clientCapabilities of
// 2026-07-28), which describe the agent's hop, not this one: the upstream
// client sets its own, and an agent's 2026-07-28 version beside a pinned
// 2025-11-25 header is refused. nil stays nil.
func hopMeta(m *mcp.Meta) *mcp.Meta {
	if m == nil {
		return nil
	}
	meta := &mcp.Meta{ProgressToken: m.ProgressToken, AdditionalFields: maps.Clone(m.AdditionalFields)}
	maps.DeleteFunc(meta.AdditionalFields, func(k string, _ any) bool {
		return strings.HasPrefix(k, "io.modelcontextprotocol/")
	})
	return meta
}
