package tools

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// asking is a recorder that also takes an upstream's questions to the
// agent, keeping them and declining.
type asking struct {
	recorder
	mu    sync.Mutex
	asked []any
}

func (a *asking) CreateMessage(_ context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	a.mu.Lock()
	a.asked = append(a.asked, req.Params)
	a.mu.Unlock()
	return nil, fmt.Errorf("declined")
}

func (a *asking) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	a.mu.Lock()
	a.asked = append(a.asked, req.Params)
	a.mu.Unlock()
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionDecline}}, nil
}

func (a *asking) ListRoots(context.Context, mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	return nil, fmt.Errorf("declined")
}

// TestConnScrubsEverything: a connection to upstream-hostile over stdio,
// negotiating 2026-07-28 and pinned to 2025-11-25, hands on nothing of
// the credential (access and refresh token, the client secret given as a
// further secret) from any method, notification or request: catalogues,
// prompts, resources, completion, tool results on both the usual and the
// direct path, progress and log notifications, elicitation.
func TestConnScrubsEverything(t *testing.T) {
	const (
		token   = "xtok_conn_secret_5f3a9c1d"
		refresh = "xref_conn_refresh_77aa01"
		client  = "client-secret-conn-0c4b2e"
	)
	forms := []string{token, refresh, client,
		base64.StdEncoding.EncodeToString([]byte("Bearer " + token)),
		base64.RawURLEncoding.EncodeToString([]byte("ab" + token + "?")),
		base64.StdEncoding.EncodeToString([]byte(refresh)),
	}
	var pct strings.Builder
	for _, c := range []byte(token) {
		fmt.Fprintf(&pct, "%%%02X", c)
	}
	forms = append(forms, pct.String())

	bin := testenv.Build(t, "./testdata/upstream-hostile")
	logs := &lockedBuffer{}
	p := newTestPool(t, &PoolOptions{Secrets: func(string) []string { return []string{client} }}, logs)
	for _, protocol := range []string{"", mcp.ProtocolVersion20251125} {
		t.Run("protocol "+protocol, func(t *testing.T) {
			in := Integration{Name: "hostile", Category: "test", Protocol: protocol, Upstream: Upstream{
				Command: bin, Args: []string{"--also", client},
				Env: map[string]string{"HOSTILE_TOKEN": "{{access_token}}", "HOSTILE_REFRESH": "{{refresh_token}}"},
			}}
			c := mustConn(t, p, "tenant-a", in, map[string]string{VarAccessToken: token, VarRefreshToken: refresh})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			check := func(what string, v any, err error) {
				t.Helper()
				b, _ := json.Marshal(v)
				text := string(b)
				if err != nil {
					text += " " + err.Error()
				}
				for _, f := range forms {
					if strings.Contains(text, f) {
						t.Errorf("%s holds a secret (%.12s…): %.1500s", what, f, text)
					}
				}
				if !strings.Contains(text, Redacted) && !strings.Contains(text, redactedBase64) {
					t.Errorf("%s: no [redacted] in it, the upstream's answer did not come through: %.1500s", what, text)
				}
			}
			tools, err := c.Tools(ctx)
			check("Tools", tools, err)
			prompts, err := c.Prompts(ctx)
			check("Prompts", prompts, err)
			resources, err := c.Resources(ctx)
			check("Resources", resources, err)
			templates, err := c.ResourceTemplates(ctx)
			check("ResourceTemplates", templates, err)
			read, err := c.ReadResource(ctx, mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: "x://tmpl/1/@@PCT@@"}})
			check("ReadResource", read, err)
			got, err := c.GetPrompt(ctx, mcp.GetPromptRequest{Params: mcp.GetPromptParams{Name: "leaky"}}, nil)
			check("GetPrompt", got, err)
			done, err := c.Complete(ctx, mcp.CompleteRequest{Params: mcp.CompleteParams{
				Ref: mcp.PromptReference{Type: "ref/prompt", Name: "leaky"}, Argument: mcp.CompleteArgument{Name: "what", Value: "x"}}})
			check("Complete", done, err)
			for _, tool := range []string{"leak", "fail", "boom"} {
				rec := &recorder{}
				res, err := c.CallTool(ctx, callReq(tool, nil, "p-1"), rec)
				check("CallTool "+tool, res, err)
				if tool == "leak" {
					progress, logs := rec.got()
					check("progress", progress, nil)
					check("log messages", logs, nil)
				}
			}
			if c.Direct() {
				raw, err := c.CallDirect(ctx, DirectCall{Name: "leak"})
				check("CallDirect", raw, err)
				raw, err = c.CallDirect(ctx, DirectCall{Name: "ask"})
				check("CallDirect ask", raw, err)
			}
			if protocol != "" {
				a := &asking{}
				res, err := c.CallTool(ctx, callReq("ask_old", nil, nil), a)
				check("CallTool ask_old", res, err)
				a.mu.Lock()
				check("elicitation", a.asked, nil)
				if len(a.asked) == 0 {
					t.Error("the upstream's elicitation did not reach the relay")
				}
				a.mu.Unlock()
			}
		})
	}
	for _, f := range forms {
		if strings.Contains(logs.String(), f) {
			t.Errorf("the pool's logs hold a secret (%.12s…)", f)
		}
	}
}
