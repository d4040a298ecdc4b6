package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/connectors-gateway/connectors/internal/testidp"
)

// TestConsoleUsage: in a real browser, the Usage page of a tenant's
// person draws the calls its agent made today, one of them refused by the
// upstream, as SVG charts served with the page (its CSP holds): four
// images named by their titles, the integration in their legends, a bar
// of today's calls and one of its errors, each saying its value; another
// tenant's calls are not among them. axe-core finds no serious violation.
func TestConsoleUsage(t *testing.T) {
	browser := chromium(t)
	idp := testidp.Start(t)
	g, _, base := consoleGateway(t, idp)
	g.echo(t, "tenant-a", 3)
	if res, err := call(t.Context(), g.client("tenant-a"), "everything_echo", map[string]any{"message": 5}); err == nil && !res.IsError {
		t.Fatalf("a call with a number for the message succeeded: %+v", res)
	}
	g.echo(t, "tenant-b", 2)

	alice := consoleUser(t, browser, idp, base, map[string]any{"tenant_id": "tenant-a"})
	loc, text := alice.open(base + "/console/usage?days=7")
	if !strings.HasSuffix(loc, "/console/usage?days=7") || !strings.Contains(text, "everything") {
		t.Fatalf("the usage page: %s\n%s", loc, text)
	}
	ctx, cancel := context.WithTimeout(alice.ctx, 30*time.Second)
	defer cancel()
	charts, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('svg[role="img"]')].map(s =>
		s.querySelector('title').textContent + '|' +
		[...s.querySelectorAll('rect.bar > title, circle.point > title')].map(t => t.textContent).join(';') + '|' +
		[...s.querySelectorAll('.legend text')].map(t => t.textContent).join(','))`))
	if err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	want := []string{
		"Calls per day|everything, " + today + ": 4 calls|everything",
		"Errors per day|everything, " + today + ": 1 errors|everything",
	}
	if len(charts) != 4 || !slices.Equal(charts[:2], want) {
		t.Errorf("the charts (title|marks|legend):\n%s\nwant 4, the first two:\n%s", strings.Join(charts, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range charts[2:] {
		// No refresh was made: the rate has no point on any day.
		title, _, _ := strings.Cut(c, "|")
		if title == "Mean latency" && !strings.Contains(c, today+": ") || title == "Refresh success rate" && c != title+"||" ||
			title != "Mean latency" && title != "Refresh success rate" {
			t.Errorf("a line chart: %s", c)
		}
	}
	alice.checkPage("usage")
}
