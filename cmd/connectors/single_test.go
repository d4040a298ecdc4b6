package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// singleClient connects as tenant to /mcp/{integration}.
func (g *gateway) singleClient(tenant, integration string) *client.Client {
	g.t.Helper()
	return g.dialPath(tenant, "/mcp/"+integration, nil)
}

// TestSingleIntegration: /mcp/{integration} is the upstream alone under
// its own names, with its resources and prompts, for a tenant that has
// connected it, and shows nothing to a tenant that has not.
func TestSingleIntegration(t *testing.T) {
	g := newGateway(t)
	g.mustRun("", "credential", "delete", "--tenant", "tenant-b", "--integration", "everything")
	g.serve()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	a := g.singleClient("tenant-a", "everything")
	res, err := a.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "plain name"}}})
	if err != nil || res.IsError || !strings.Contains(toolText(t, res), "plain name") {
		t.Fatalf("echo under its own name: %v %v", res, err)
	}
	resources, err := a.ListResources(ctx, mcp.ListResourcesRequest{})
	if err != nil || len(resources.Resources) == 0 {
		t.Fatalf("tenant-a resources/list: %v, %v", resources, err)
	}
	read, err := a.ReadResource(ctx, mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: resources.Resources[0].URI}})
	if err != nil || len(read.Contents) == 0 {
		t.Fatalf("tenant-a resources/read %s: %v, %v", resources.Resources[0].URI, read, err)
	}
	prompts, err := a.ListPrompts(ctx, mcp.ListPromptsRequest{})
	if err != nil || len(prompts.Prompts) == 0 {
		t.Fatalf("tenant-a prompts/list: %v, %v", prompts, err)
	}

	// tenant-b has no credential for everything: nothing to list or use.
	b := g.singleClient("tenant-b", "everything")
	if tools, err := b.ListTools(ctx, mcp.ListToolsRequest{}); err != nil || len(tools.Tools) != 0 {
		t.Errorf("tenant-b tools/list = %d tools, %v; want none", len(tools.Tools), err)
	}
	if r, err := b.ListResources(ctx, mcp.ListResourcesRequest{}); err != nil || len(r.Resources) != 0 {
		t.Errorf("tenant-b resources/list = %v, %v; want none", r, err)
	}
	if _, err := b.ReadResource(ctx, mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: resources.Resources[0].URI}}); err == nil {
		t.Error("tenant-b read a resource of an integration it has not connected")
	}
	if p, err := b.ListPrompts(ctx, mcp.ListPromptsRequest{}); err != nil || len(p.Prompts) != 0 {
		t.Errorf("tenant-b prompts/list = %v, %v; want none", p, err)
	}
	if _, err := b.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "x"}}}); err == nil {
		t.Error("tenant-b called echo on an integration it has not connected")
	}

	for key, want := range map[string]int{"": http.StatusUnauthorized, g.keys["tenant-a"]: http.StatusNotFound} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+g.addr+"/mcp/no-such-integration", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("/mcp/no-such-integration (key %v): %d, want %d", key != "", resp.StatusCode, want)
		}
	}
}

// TestResourceSubscription: an agent subscribed to a resource at
// /mcp/{integration} gets the upstream's notifications/resources/updated
// for it, and only for it (server-everything sends them every 5 s once
// toggle-subscriber-updates is on).
func TestResourceSubscription(t *testing.T) {
	g := newGateway(t)
	g.serve()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	c, err := client.NewStreamableHttpClient("http://"+g.addr+"/mcp/everything",
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + g.keys["tenant-a"]}),
		transport.WithContinuousListening())
	if err != nil {
		t.Fatal(err)
	}
	client.WithLegacyProtocolOnly()(c) // resources/subscribe is initialize-era
	updated := make(chan string, 16)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == string(mcp.MethodNotificationResourceUpdated) {
			uri, _ := n.Params.AdditionalFields["uri"].(string)
			updated <- uri
		}
	})
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: "2025-11-25", ClientInfo: mcp.Implementation{Name: "t", Version: "1"}}}); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListResources(ctx, mcp.ListResourcesRequest{})
	if err != nil || len(list.Resources) < 2 {
		t.Fatalf("resources/list: %v, %v", list, err)
	}
	watched, other := list.Resources[0].URI, list.Resources[1].URI
	if err := c.Subscribe(ctx, mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: watched}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "toggle-subscriber-updates"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case uri := <-updated:
		if uri != watched {
			t.Errorf("resources/updated for %s, want only %s (not %s)", uri, watched, other)
		}
	case <-ctx.Done():
		t.Fatal("no notifications/resources/updated reached the agent")
	}
}

// TestUpstreamToolsChange: when an upstream's tool list changes, the
// tenant's agents are told, and the next tools/list shows the new tool.
func TestUpstreamToolsChange(t *testing.T) {
	g := newGatewayWith(t, envIntegration(t, "envtest", "tools-change", ""))
	g.serve()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	changed := make(chan struct{}, 4)
	c := g.client("tenant-a", client.WithLegacyProtocolOnly())
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == string(mcp.MethodNotificationToolsListChanged) {
			select { // never block the client's reader
			case changed <- struct{}{}:
			default:
			}
		}
	})
	has := func(name string) bool {
		res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tool := range res.Tools {
			if tool.Name == name {
				return true
			}
		}
		return false
	}
	if has("envtest_grown") {
		t.Fatal("envtest_grown listed before the upstream added it")
	}
	for len(changed) > 0 { // discovery itself announces the catalogue
		<-changed
	}
	if _, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "envtest_grow"}}); err != nil {
		t.Fatal(err)
	}
	// The gateway forgets the catalogue and tells the tenant's sessions.
	// Delivery of a notification outside any request is mcp-go's, best
	// effort for a session without a GET stream, so the test waits for the
	// catalogue itself, which only the upstream's list_changed refreshes.
	for !has("envtest_grown") {
		select {
		case <-ctx.Done():
			t.Fatal("tools/list never showed envtest_grown after the upstream's list_changed")
		case <-changed:
		case <-time.After(100 * time.Millisecond):
		}
	}
}
