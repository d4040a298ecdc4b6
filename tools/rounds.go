package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/rawjson"
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

// roundTrip is the agent's answers to an earlier input_required, which a
// request carries upstream besides what mcp-go's client sends.
type roundTrip struct {
	params mcp.MultiRoundTripParams
}

type roundTripKey struct{}

func withRoundTrip(ctx context.Context, rt roundTrip) context.Context {
	if len(rt.params.InputResponses) == 0 && rt.params.RequestState == "" {
		return ctx
	}
	return context.WithValue(ctx, roundTripKey{}, rt)
}

type agentCapsKey struct{}

// WithAgentCapabilities returns ctx telling the requests made with it
// (CallTool, GetPrompt, ReadResource) which client capabilities their agent
// declared: a 2026-07-28 upstream is told those the gateway carries to the
// agent (sampling, elicitation, roots) in place of the gateway's own, so
// that it asks only what the agent can answer.
func WithAgentCapabilities(ctx context.Context, caps mcp.ClientCapabilities) context.Context {
	b, err := json.Marshal(mcp.ClientCapabilities{Sampling: caps.Sampling, Elicitation: caps.Elicitation, Roots: caps.Roots})
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, agentCapsKey{}, json.RawMessage(b))
}

// withAgentRound puts ctx's round trip and agent capabilities into the
// params of a request to a 2026-07-28 upstream: mcp-go's client has made
// them a JSON object of its own by then (it added the _meta of the
// version), which is changed in place.
func withAgentRound(ctx context.Context, params any) any {
	rt, answers := ctx.Value(roundTripKey{}).(roundTrip)
	caps, _ := ctx.Value(agentCapsKey{}).(json.RawMessage)
	fields, isObject := params.(map[string]json.RawMessage)
	if !isObject || (!answers && caps == nil) {
		return params
	}
	if len(rt.params.InputResponses) > 0 {
		if b, err := json.Marshal(rt.params.InputResponses); err == nil {
			fields["inputResponses"] = b
		}
	}
	if rt.params.RequestState != "" {
		fields["requestState"], _ = json.Marshal(rt.params.RequestState)
	}
	if caps != nil {
		if meta, ok := withMember(fields["_meta"], mcp.MetaKeyClientCapabilities, caps); ok {
			fields["_meta"] = meta
		}
	}
	return fields
}

// withMember returns the JSON object obj with key's value set to value,
// in one pass over its members.
func withMember(obj json.RawMessage, key string, value json.RawMessage) (json.RawMessage, bool) {
	out := make([]byte, 0, len(obj)+len(value)+len(key)+4)
	out = append(out, '{')
	ok := rawjson.Members(obj, func(k, v []byte) bool {
		if string(k) != key {
			out = append(out, '"')
			out = append(out, k...)
			out = append(out, '"', ':')
			out = append(out, v...)
			out = append(out, ',')
		}
		return true
	})
	if !ok {
		return nil, false
	}
	out = append(out, '"')
	out = append(out, key...)
	out = append(out, '"', ':')
	out = append(out, value...)
	return append(out, '}'), true
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
