package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

const (
	templateURI    = "test://template/{id}/data"
	templatePrefix = "test://template/"
	templateSuffix = "/data"
)

func registerResources(s *server.MCPServer) {
	s.AddResource(mcp.NewResource("test://static-text", "static-text",
		mcp.WithResourceDescription("A static text resource for testing"),
		mcp.WithMIMEType("text/plain")),
		func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{
				URI:      "test://static-text",
				MIMEType: "text/plain",
				Text:     "This is the content of the static text resource.",
			}}, nil
		})

	s.AddResource(mcp.NewResource("test://static-binary", "static-binary",
		mcp.WithResourceDescription("A static binary resource (1x1 PNG) for testing"),
		mcp.WithMIMEType("image/png")),
		func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.BlobResourceContents{
				URI:      "test://static-binary",
				MIMEType: "image/png",
				Blob:     redPixelPNG,
			}}, nil
		})

	// The resource the subscribe / unsubscribe scenarios watch.
	s.AddResource(mcp.NewResource("test://watched-resource", "watched-resource",
		mcp.WithResourceDescription("A resource that can be subscribed to"),
		mcp.WithMIMEType("text/plain")),
		func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{
				URI:      "test://watched-resource",
				MIMEType: "text/plain",
				Text:     "Watched resource content",
			}}, nil
		})

	s.AddResourceTemplate(mcp.NewResourceTemplate(templateURI, "template-data",
		mcp.WithTemplateDescription("A resource template whose {id} is substituted into the data"),
		mcp.WithTemplateMIMEType("application/json")),
		func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			uri := req.Params.URI
			id, ok := templateID(uri)
			if !ok {
				return nil, fmt.Errorf("uri %q does not match %s", uri, templateURI)
			}
			// Field order matters to byte-exact comparisons, so marshal a struct.
			body, err := json.Marshal(struct {
				ID           string `json:"id"`
				TemplateTest bool   `json:"templateTest"`
				Data         string `json:"data"`
			}{id, true, "Data for ID: " + id})
			if err != nil {
				return nil, err
			}
			return []mcp.ResourceContents{mcp.TextResourceContents{
				URI:      uri,
				MIMEType: "application/json",
				Text:     string(body),
			}}, nil
		})
}

// templateID extracts {id} from test://template/{id}/data.
func templateID(uri string) (string, bool) {
	if !strings.HasPrefix(uri, templatePrefix) || !strings.HasSuffix(uri, templateSuffix) {
		return "", false
	}
	id := strings.TrimSuffix(strings.TrimPrefix(uri, templatePrefix), templateSuffix)
	if id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return id, true
}

func registerPrompts(s *server.MCPServer) {
	s.AddPrompt(mcp.NewPrompt("test_simple_prompt",
		mcp.WithPromptDescription("A simple prompt without arguments")),
		func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{
				Description: "A simple prompt without arguments",
				Messages: []mcp.PromptMessage{
					mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("This is a simple prompt for testing.")),
				},
			}, nil
		})

	s.AddPrompt(mcp.NewPrompt("test_prompt_with_arguments",
		mcp.WithPromptDescription("A prompt with required arguments"),
		mcp.WithArgument("arg1", mcp.ArgumentDescription("First test argument"), mcp.RequiredArgument()),
		mcp.WithArgument("arg2", mcp.ArgumentDescription("Second test argument"), mcp.RequiredArgument())),
		func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			text := fmt.Sprintf("Prompt with arguments: arg1='%s', arg2='%s'",
				req.Params.Arguments["arg1"], req.Params.Arguments["arg2"])
			return &mcp.GetPromptResult{
				Description: "A prompt with required arguments",
				Messages:    []mcp.PromptMessage{mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(text))},
			}, nil
		})

	s.AddPrompt(mcp.NewPrompt("test_prompt_with_embedded_resource",
		mcp.WithPromptDescription("A prompt that includes an embedded resource"),
		mcp.WithArgument("resourceUri", mcp.ArgumentDescription("URI of the resource to embed"), mcp.RequiredArgument())),
		func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			uri := req.Params.Arguments["resourceUri"]
			if uri == "" {
				return nil, fmt.Errorf("missing required argument resourceUri")
			}
			return &mcp.GetPromptResult{
				Description: "A prompt that includes an embedded resource",
				Messages: []mcp.PromptMessage{
					mcp.NewPromptMessage(mcp.RoleUser, mcp.NewEmbeddedResource(mcp.TextResourceContents{
						URI:      uri,
						MIMEType: "text/plain",
						Text:     "Embedded resource content for testing.",
					})),
					mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("Please process the embedded resource above.")),
				},
			}, nil
		})

	s.AddPrompt(mcp.NewPrompt("test_prompt_with_image",
		mcp.WithPromptDescription("A prompt that includes image content")),
		func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{
				Description: "A prompt that includes image content",
				Messages: []mcp.PromptMessage{
					mcp.NewPromptMessage(mcp.RoleUser, mcp.NewImageContent(redPixelPNG, "image/png")),
					mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("Please analyze the image above.")),
				},
			}, nil
		})
}

// completionProvider answers completion/complete for prompt arguments and
// resource template variables with prefix-filtered suggestions.
type completionProvider struct{}

var promptSuggestions = map[string]map[string][]string{
	"test_prompt_with_arguments": {
		"arg1": {"paris", "park", "party", "test", "test-value", "testing"},
		"arg2": {"hello", "help", "world", "test", "test-value"},
	},
	"test_prompt_with_embedded_resource": {
		"resourceUri": {"test://static-text", "test://static-binary", "test://watched-resource", "test://template/123/data"},
	},
}

var resourceSuggestions = map[string]map[string][]string{
	templateURI: {"id": {"1", "2", "3", "42", "123", "456"}},
}

func complete(candidates []string, prefix string) *mcp.Completion {
	values := []string{}
	for _, c := range candidates {
		if strings.HasPrefix(strings.ToLower(c), strings.ToLower(prefix)) {
			values = append(values, c)
		}
	}
	sort.Strings(values)
	return &mcp.Completion{Values: values, Total: len(values), HasMore: false}
}

func (completionProvider) CompletePromptArgument(_ context.Context, promptName string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	return complete(promptSuggestions[promptName][arg.Name], arg.Value), nil
}

func (completionProvider) CompleteResourceArgument(_ context.Context, uri string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	return complete(resourceSuggestions[uri][arg.Name], arg.Value), nil
}
