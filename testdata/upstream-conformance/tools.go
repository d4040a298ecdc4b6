package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Fixed payloads: a 1x1 red PNG and a tiny (silent, 1-sample) 8 kHz mono WAV.
const (
	redPixelPNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
	silentWAV   = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQIAAAAAAA=="
)

const (
	// notificationGap is the pause between successive log / progress
	// notifications of the logging and progress tools.
	notificationGap = 50 * time.Millisecond
	// settleDelay is how long a notifying tool waits after its last
	// notification has been picked up before it returns; see settle.
	settleDelay = 50 * time.Millisecond
	// maxDrainWait bounds how long settle waits for the session's
	// notification queue to be picked up.
	maxDrainWait = time.Second
)

// jsonSchema202012 is the input schema of json_schema_2020_12_tool. It is
// passed through verbatim so $schema, $defs and additionalProperties survive
// (SEP-1613), and so do the $anchor, allOf/anyOf and if/then/else of the
// wider 2020-12 vocabulary (SEP-2106).
const jsonSchema202012 = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "$defs": {
    "address": {
      "$anchor": "addressDef",
      "type": "object",
      "properties": {
        "street": {"type": "string"},
        "city": {"type": "string"}
      }
    }
  },
  "properties": {
    "name": {"type": "string"},
    "address": {"$ref": "#/$defs/address"},
    "contactMethod": {"type": "string", "enum": ["phone", "email"]},
    "phone": {"type": "string"},
    "email": {"type": "string"}
  },
  "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
  "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
  "then": {"required": ["phone"]},
  "else": {"required": ["email"]},
  "additionalProperties": false
}`

func registerTools(s *server.MCPServer) {
	h := &toolHandlers{srv: s}

	s.AddTool(mcp.NewTool("test_simple_text",
		mcp.WithDescription("Returns a simple text response")), h.simpleText)
	s.AddTool(mcp.NewTool("test_image_content",
		mcp.WithDescription("Returns a 1x1 PNG image")), h.imageContent)
	s.AddTool(mcp.NewTool("test_audio_content",
		mcp.WithDescription("Returns a short WAV audio clip")), h.audioContent)
	s.AddTool(mcp.NewTool("test_embedded_resource",
		mcp.WithDescription("Returns an embedded text resource")), h.embeddedResource)
	s.AddTool(mcp.NewTool("test_multiple_content_types",
		mcp.WithDescription("Returns text, image and embedded resource content")), h.multipleContent)
	s.AddTool(mcp.NewTool("test_tool_with_logging",
		mcp.WithDescription("Sends three info log notifications while running")), h.withLogging)
	s.AddTool(mcp.NewTool("test_tool_with_progress",
		mcp.WithDescription("Reports progress 0/100, 50/100, 100/100 while running")), h.withProgress)
	s.AddTool(mcp.NewTool("test_error_handling",
		mcp.WithDescription("Always fails with isError=true")), h.errorHandling)
	s.AddTool(mcp.NewTool("test_sampling",
		mcp.WithDescription("Asks the client's LLM via sampling/createMessage"),
		mcp.WithString("prompt", mcp.Required(), mcp.Description("The prompt to send to the LLM"))), h.sampling)
	s.AddTool(mcp.NewTool("test_elicitation",
		mcp.WithDescription("Asks the user for input via elicitation/create"),
		mcp.WithString("message", mcp.Required(), mcp.Description("The message to show the user"))), h.elicitation)
	s.AddTool(mcp.NewTool("test_elicitation_sep1034_defaults",
		mcp.WithDescription("Elicitation whose schema carries defaults for every primitive type (SEP-1034)")), h.elicitationDefaults)
	s.AddTool(mcp.NewTool("test_elicitation_sep1330_enums",
		mcp.WithDescription("Elicitation whose schema uses all five enum variants (SEP-1330)")), h.elicitationEnums)
	s.AddTool(mcp.NewToolWithRawSchema("json_schema_2020_12_tool",
		"Tool with JSON Schema 2020-12 features", json.RawMessage(jsonSchema202012)), h.jsonSchemaTool)
	s.AddTool(mcp.NewTool("test_custom_header",
		mcp.WithDescription("Echoes its region, which also travels in the Mcp-Param-Region header (SEP-2243)"),
		mcp.WithString("region", mcp.Required(), mcp.Description("The region to echo"), paramHeader("Region"))), h.customHeader)
	s.AddTool(mcp.NewTool("test_reconnection",
		mcp.WithDescription("Waits briefly, then returns; used by the SSE polling scenario (SEP-1699)")), h.reconnection)
	registerDiagnostics(s, h)
}

type toolHandlers struct {
	srv *server.MCPServer
}

func textResult(text string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(text)}}
}

func (h *toolHandlers) simpleText(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return textResult("This is a simple text response for testing."), nil
}

func (h *toolHandlers) imageContent(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewImageContent(redPixelPNG, "image/png")}}, nil
}

func (h *toolHandlers) audioContent(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewAudioContent(silentWAV, "audio/wav")}}, nil
}

func (h *toolHandlers) embeddedResource(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return &mcp.CallToolResult{Content: []mcp.Content{
		mcp.NewEmbeddedResource(mcp.TextResourceContents{
			URI:      "test://embedded-resource",
			MIMEType: "text/plain",
			Text:     "This is an embedded resource content.",
		}),
	}}, nil
}

func (h *toolHandlers) multipleContent(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return &mcp.CallToolResult{Content: []mcp.Content{
		mcp.NewTextContent("Multiple content types test:"),
		mcp.NewImageContent(redPixelPNG, "image/png"),
		mcp.NewEmbeddedResource(mcp.TextResourceContents{
			URI:      "test://mixed-content-resource",
			MIMEType: "application/json",
			Text:     `{"test":"data","value":123}`,
		}),
	}}, nil
}

// sleep waits for d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// settle is called by a tool after its last notification and before it
// returns, so that the notification reaches the client ahead of the result.
//
// Why it is needed: in mcp-go v1.2.1 a streamable HTTP session has one
// notification queue, drained both by the tool call's own POST SSE stream
// and, once the client has opened the standalone GET stream, by that
// stream's pump (the GET stream cannot simply be refused: sampling requests
// are only ever sent on it). A notification taken by the GET pump races the
// result written on the POST stream, and a client such as the TypeScript SDK
// drops a progress notification that arrives after the result of its
// request. Waiting until the queue has been drained, plus a short grace
// period for the GET pump to write it out, keeps the order deterministic.
// Notifications taken by the POST stream are always written before the
// result, so for them this only costs the grace period.
func settle(ctx context.Context) error {
	if session := server.ClientSessionFromContext(ctx); session != nil {
		if ch := session.NotificationChannel(); ch != nil {
			deadline := time.Now().Add(maxDrainWait)
			for len(ch) > 0 && time.Now().Before(deadline) {
				if err := sleep(ctx, 2*time.Millisecond); err != nil {
					return err
				}
			}
		}
	}
	return sleep(ctx, settleDelay)
}

func (h *toolHandlers) withLogging(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	messages := []string{"Tool execution started", "Tool processing data", "Tool execution completed"}
	for i, msg := range messages {
		if i > 0 {
			if err := sleep(ctx, notificationGap); err != nil {
				return nil, err
			}
		}
		n := mcp.NewLoggingMessageNotification(mcp.LoggingLevelInfo, "conformance-fixture", msg)
		if err := h.srv.SendLogMessageToClient(ctx, n); err != nil {
			return nil, fmt.Errorf("send log message %q: %w", msg, err)
		}
	}
	if err := settle(ctx); err != nil {
		return nil, err
	}
	return textResult("Tool with logging executed successfully"), nil
}

func (h *toolHandlers) withProgress(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var token mcp.ProgressToken
	if req.Params.Meta != nil {
		token = req.Params.Meta.ProgressToken
	}
	for i, progress := range []int{0, 50, 100} {
		if i > 0 {
			if err := sleep(ctx, notificationGap); err != nil {
				return nil, err
			}
		}
		if token == nil {
			continue
		}
		err := h.srv.SendNotificationToClient(ctx, string(mcp.MethodNotificationProgress), map[string]any{
			"progressToken": token,
			"progress":      progress,
			"total":         100,
		})
		if err != nil {
			return nil, fmt.Errorf("send progress %d/100: %w", progress, err)
		}
	}
	if token != nil {
		if err := settle(ctx); err != nil {
			return nil, err
		}
	}
	return textResult("Tool with progress executed successfully"), nil
}

func (h *toolHandlers) errorHandling(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return mcp.NewToolResultError("This tool intentionally returns an error for testing"), nil
}

func (h *toolHandlers) sampling(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	prompt, err := req.RequireString("prompt")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	res := server.SamplingResponse(req.Params.InputResponses, "sampling")
	if res == nil {
		return server.NewInputRequestBuilder("").Sample("sampling", sample(prompt, 100)).ToolResult(), nil
	}
	return textResult("LLM response: " + samplingText(res.Content)), nil
}

// samplingText extracts the text of a sampling result's content, whatever Go
// shape the transport decoded it into.
func samplingText(content any) string {
	switch c := content.(type) {
	case mcp.TextContent:
		return c.Text
	case *mcp.TextContent:
		return c.Text
	case map[string]any:
		if t, ok := c["text"].(string); ok {
			return t
		}
	case []mcp.Content:
		for _, part := range c {
			if t := samplingText(part); t != "" {
				return t
			}
		}
	case []any:
		for _, part := range c {
			if t := samplingText(part); t != "" {
				return t
			}
		}
	}
	b, err := json.Marshal(content)
	if err != nil {
		return fmt.Sprint(content)
	}
	return string(b)
}

// elicit returns the answer to an elicitation of message and schema, or
// nil and the InputRequiredResult that asks it (on a retry without the
// answer, again).
func elicit(req mcp.CallToolRequest, message string, schema map[string]any) (*mcp.ElicitationResult, *mcp.CallToolResult) {
	if res := server.ElicitationResponse(req.Params.InputResponses, "elicitation"); res != nil {
		return res, nil
	}
	ask := mcp.ElicitationParams{Message: message, RequestedSchema: schema}
	return nil, server.NewInputRequestBuilder("").Elicit("elicitation", ask).ToolResult()
}

func contentJSON(content any) string {
	if content == nil {
		return "{}"
	}
	b, err := json.Marshal(content)
	if err != nil {
		return fmt.Sprint(content)
	}
	return string(b)
}

func (h *toolHandlers) elicitation(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	message, err := req.RequireString("message")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	res, ask := elicit(req, message, map[string]any{
		"type": "object",
		"properties": map[string]any{
			"username": map[string]any{"type": "string", "description": "User's response"},
			"email":    map[string]any{"type": "string", "description": "User's email address"},
		},
		"required": []string{"username", "email"},
	})
	if ask != nil {
		return ask, nil
	}
	return textResult(fmt.Sprintf("User response: action=%s, content=%s", res.Action, contentJSON(res.Content))), nil
}

func (h *toolHandlers) elicitationDefaults(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	res, ask := elicit(req, "Please review and update the form fields with defaults", map[string]any{
		"type": "object",
		"properties": map[string]any{
			"name":     map[string]any{"type": "string", "description": "User name", "default": "John Doe"},
			"age":      map[string]any{"type": "integer", "description": "User age", "default": 30},
			"score":    map[string]any{"type": "number", "description": "User score", "default": 95.5},
			"status":   map[string]any{"type": "string", "description": "User status", "enum": []string{"active", "inactive", "pending"}, "default": "active"},
			"verified": map[string]any{"type": "boolean", "description": "Verification status", "default": true},
		},
	})
	if ask != nil {
		return ask, nil
	}
	return textResult(fmt.Sprintf("Elicitation completed: action=%s, content=%s", res.Action, contentJSON(res.Content))), nil
}

func titled(pairs ...string) []any {
	out := make([]any, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, map[string]any{"const": pairs[i], "title": pairs[i+1]})
	}
	return out
}

func (h *toolHandlers) elicitationEnums(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	res, ask := elicit(req, "Please select options from the enum fields", map[string]any{
		"type": "object",
		"properties": map[string]any{
			"untitledSingle": map[string]any{
				"type":        "string",
				"description": "Select one option",
				"enum":        []string{"option1", "option2", "option3"},
			},
			"titledSingle": map[string]any{
				"type":        "string",
				"description": "Select one option with titles",
				"oneOf":       titled("value1", "First Option", "value2", "Second Option", "value3", "Third Option"),
			},
			"legacyEnum": map[string]any{
				"type":        "string",
				"description": "Select one option (legacy enumNames)",
				"enum":        []string{"opt1", "opt2", "opt3"},
				"enumNames":   []string{"Option One", "Option Two", "Option Three"},
			},
			"untitledMulti": map[string]any{
				"type":        "array",
				"description": "Select multiple options",
				"items":       map[string]any{"type": "string", "enum": []string{"option1", "option2", "option3"}},
			},
			"titledMulti": map[string]any{
				"type":        "array",
				"description": "Select multiple options with titles",
				"items": map[string]any{
					"anyOf": titled("value1", "First Choice", "value2", "Second Choice", "value3", "Third Choice"),
				},
			},
		},
	})
	if ask != nil {
		return ask, nil
	}
	return textResult(fmt.Sprintf("Elicitation completed: action=%s, content=%s", res.Action, contentJSON(res.Content))), nil
}

func (h *toolHandlers) jsonSchemaTool(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return textResult("JSON Schema 2020-12 tool called with arguments: " + contentJSON(req.GetArguments())), nil
}

// paramHeader annotates a parameter with x-mcp-header: a 2026-07-28 client
// sends its value in the Mcp-Param-<name> header as well, and mcp-go
// refuses the call when the header is missing, is not valid Base64 where it
// says it is, or does not match the body.
func paramHeader(name string) mcp.PropertyOption {
	return func(schema map[string]any) {
		schema["x-mcp-header"] = name
	}
}

func (h *toolHandlers) customHeader(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return textResult("Region: " + req.GetString("region", "")), nil
}

func (h *toolHandlers) reconnection(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if err := sleep(ctx, 100*time.Millisecond); err != nil {
		return nil, err
	}
	return textResult("Reconnection test completed"), nil
}
