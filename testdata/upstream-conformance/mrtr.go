package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The tools and the prompt of the 2026-07-28 multi round-trip scenarios
// (SEP-2322, input-required-result-*): each asks for what it needs by
// returning an InputRequiredResult and finishes when the retry carries the
// answers. Written that way they serve both protocol eras: mcp-go puts the
// questions to an initialize-era client as server-to-client requests and
// calls the handler again with the answers, which is also how the
// sampling and elicitation tools of the 2025-11-25 scenarios are written
// (tools.go), so that the fixture asks the same questions whichever era
// its client negotiated.

func registerRoundTrips(s *server.MCPServer) {
	h := &roundTrips{key: make([]byte, 32)}
	_, _ = rand.Read(h.key)
	for _, t := range []struct {
		name, description string
		handler           server.ToolHandlerFunc
	}{
		{"test_input_required_result_elicitation", "Asks the user's name (elicitation), then greets them", h.elicitation},
		{"test_input_required_result_sampling", "Asks the client's LLM a question (sampling), then answers with its text", h.sampling},
		{"test_input_required_result_list_roots", "Asks the client's roots, then lists them", h.listRoots},
		{"test_input_required_result_request_state", "Asks for a confirmation with a requestState it checks on retry", h.requestState},
		{"test_input_required_result_multiple_inputs", "Asks for an elicitation, a sampling and the roots at once", h.multipleInputs},
		{"test_input_required_result_multi_round", "Asks two questions, one round after the other", h.multiRound},
		{"test_elicitation_then_sampling", "Asks the user's name (elicitation), then the client's LLM about it (sampling)", h.elicitThenSample},
		{"test_input_required_result_tampered_state", "Asks for a confirmation with a signed requestState; a tampered one is an error", h.tamperedState},
		{"test_input_required_result_capabilities", "Asks only for what the client declared it can answer", h.capabilities},
	} {
		s.AddTool(mcp.NewTool(t.name, mcp.WithDescription(t.description)), t.handler)
	}
	s.AddPrompt(mcp.NewPrompt("test_input_required_result_prompt",
		mcp.WithPromptDescription("A prompt that asks the user for its context first (elicitation)")), h.prompt)
}

// roundTrips holds the key that signs requestState.
type roundTrips struct {
	key []byte
}

var errTamperedState = errors.New("requestState failed its integrity check")

// seal signs state: "state.signature".
func (h *roundTrips) seal(state string) string {
	mac := hmac.New(sha256.New, h.key)
	mac.Write([]byte(state))
	return state + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// open returns the state sealed in s, or errTamperedState.
func (h *roundTrips) open(s string) (string, error) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return "", errTamperedState
	}
	if !hmac.Equal([]byte(h.seal(s[:i])), []byte(s)) {
		return "", errTamperedState
	}
	return s[:i], nil
}

func nameSchema(property string, typ string) map[string]any {
	return map[string]any{
		"type":       "object",
		"properties": map[string]any{property: map[string]any{"type": typ}},
		"required":   []string{property},
	}
}

func askName() mcp.ElicitationParams {
	return mcp.ElicitationParams{Message: "What is your name?", RequestedSchema: nameSchema("name", "string")}
}

func sample(text string, maxTokens int) mcp.CreateMessageParams {
	return mcp.CreateMessageParams{
		Messages:  []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: mcp.NewTextContent(text)}},
		MaxTokens: maxTokens,
	}
}

// accepted returns the content of an accepted elicitation answered under id.
func accepted(responses mcp.InputResponses, id string) (map[string]any, bool) {
	r := server.ElicitationResponse(responses, id)
	if r == nil || r.Action != mcp.ElicitationResponseActionAccept {
		return nil, false
	}
	content, _ := r.Content.(map[string]any)
	return content, true
}

func (h *roundTrips) elicitation(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	content, ok := accepted(req.Params.InputResponses, "user_name")
	if !ok {
		// No answer, or not under user_name: asked (again).
		return server.NewInputRequestBuilder("").Elicit("user_name", askName()).ToolResult(), nil
	}
	return textResult(fmt.Sprintf("Hello, %v!", content["name"])), nil
}

func (h *roundTrips) sampling(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	r := server.SamplingResponse(req.Params.InputResponses, "capital_question")
	if r == nil {
		return server.NewInputRequestBuilder("").Sample("capital_question", sample("What is the capital of France?", 100)).ToolResult(), nil
	}
	return textResult("LLM response: " + samplingText(r.Content)), nil
}

func rootNames(r *mcp.ListRootsResult) string {
	names := make([]string, 0, len(r.Roots))
	for _, root := range r.Roots {
		names = append(names, root.URI)
	}
	return strings.Join(names, ", ")
}

func (h *roundTrips) listRoots(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	r := server.RootsResponse(req.Params.InputResponses, "client_roots")
	if r == nil {
		return server.NewInputRequestBuilder("").Roots("client_roots").ToolResult(), nil
	}
	return textResult("Client roots: " + rootNames(r)), nil
}

func (h *roundTrips) confirm(state string) *mcp.CallToolResult {
	return server.NewInputRequestBuilder(h.seal(state)).
		Elicit("confirm", mcp.ElicitationParams{Message: "Please confirm", RequestedSchema: nameSchema("ok", "boolean")}).
		ToolResult()
}

func (h *roundTrips) requestState(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if _, ok := accepted(req.Params.InputResponses, "confirm"); !ok || req.Params.RequestState == "" {
		return h.confirm("confirm"), nil
	}
	if state, err := h.open(req.Params.RequestState); err != nil || state != "confirm" {
		return mcp.NewToolResultError("requestState was not the one this tool issued"), nil
	}
	return textResult("Confirmed: state-ok"), nil
}

func (h *roundTrips) tamperedState(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if req.Params.RequestState == "" {
		return h.confirm("tampered-check"), nil
	}
	if state, err := h.open(req.Params.RequestState); err != nil || state != "tampered-check" {
		return nil, errTamperedState // a JSON-RPC error
	}
	if _, ok := accepted(req.Params.InputResponses, "confirm"); !ok {
		return h.confirm("tampered-check"), nil
	}
	return textResult("Confirmed: state verified"), nil
}

func (h *roundTrips) multipleInputs(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	in := req.Params.InputResponses
	content, named := accepted(in, "user_name")
	greeting, roots := server.SamplingResponse(in, "greeting"), server.RootsResponse(in, "client_roots")
	if _, err := h.open(req.Params.RequestState); err != nil || !named || greeting == nil || roots == nil {
		return server.NewInputRequestBuilder(h.seal("multiple")).
			Elicit("user_name", askName()).
			Sample("greeting", sample("Generate a greeting", 50)).
			Roots("client_roots").
			ToolResult(), nil
	}
	return textResult(fmt.Sprintf("Name: %v; greeting: %s; roots: %s", content["name"], samplingText(greeting.Content), rootNames(roots))), nil
}

func (h *roundTrips) multiRound(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	in := req.Params.InputResponses
	state, _ := h.open(req.Params.RequestState)
	if strings.HasPrefix(state, "round-2:") {
		if color, ok := accepted(in, "step2"); ok {
			return textResult(fmt.Sprintf("%s likes %v", strings.TrimPrefix(state, "round-2:"), color["color"])), nil
		}
	}
	if step1, ok := accepted(in, "step1"); ok && state == "round-1" {
		return server.NewInputRequestBuilder(h.seal(fmt.Sprintf("round-2:%v", step1["name"]))).
			Elicit("step2", mcp.ElicitationParams{Message: "Step 2: What is your favorite color?", RequestedSchema: nameSchema("color", "string")}).
			ToolResult(), nil
	}
	return server.NewInputRequestBuilder(h.seal("round-1")).
		Elicit("step1", mcp.ElicitationParams{Message: "Step 1: What is your name?", RequestedSchema: nameSchema("name", "string")}).
		ToolResult(), nil
}

// elicitThenSample asks the user's name, and in a second round the LLM
// for a greeting of it: on an initialize-era session, a request on the
// call's own stream (mcp-go sends elicitation there) and then one on the
// session's GET stream (where it sends sampling).
func (h *roundTrips) elicitThenSample(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	in := req.Params.InputResponses
	state, _ := h.open(req.Params.RequestState)
	if name, ok := strings.CutPrefix(state, "greet:"); ok {
		if r := server.SamplingResponse(in, "greeting"); r != nil {
			return textResult(name + ": " + samplingText(r.Content)), nil
		}
	}
	if content, ok := accepted(in, "user_name"); ok {
		name := fmt.Sprint(content["name"])
		return server.NewInputRequestBuilder(h.seal("greet:"+name)).
			Sample("greeting", sample("Greet "+name, 50)).ToolResult(), nil
	}
	return server.NewInputRequestBuilder("").Elicit("user_name", askName()).ToolResult(), nil
}

// declared returns the client capabilities of the request: its own
// (2026-07-28) or its session's (initialize era).
func declared(ctx context.Context) mcp.ClientCapabilities {
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.ClientCapabilities != nil {
		return *info.ClientCapabilities
	}
	if s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo); ok {
		return s.GetClientCapabilities()
	}
	return mcp.ClientCapabilities{}
}

func (h *roundTrips) capabilities(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	in := req.Params.InputResponses
	if len(in) > 0 {
		return textResult(fmt.Sprintf("Answered %d input request(s)", len(in))), nil
	}
	caps := declared(ctx)
	b := server.NewInputRequestBuilder("")
	asked := false
	if caps.Elicitation != nil {
		b.Elicit("user_name", askName())
		asked = true
	}
	if caps.Sampling != nil {
		b.Sample("capital_question", sample("What is the capital of France?", 100))
		asked = true
	}
	if caps.Roots != nil {
		b.Roots("client_roots")
		asked = true
	}
	if !asked {
		return textResult("The client declared nothing it could be asked"), nil
	}
	return b.ToolResult(), nil
}

func (h *roundTrips) prompt(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	content, ok := accepted(req.Params.InputResponses, "user_context")
	if !ok {
		return server.NewInputRequestBuilder("").
			Elicit("user_context", mcp.ElicitationParams{Message: "What context should the prompt use?", RequestedSchema: nameSchema("context", "string")}).
			PromptResult(), nil
	}
	return &mcp.GetPromptResult{
		Description: "A prompt built from the user's context",
		Messages: []mcp.PromptMessage{{
			Role:    mcp.RoleUser,
			Content: mcp.NewTextContent(fmt.Sprintf("Context: %v", content["context"])),
		}},
	}, nil
}
