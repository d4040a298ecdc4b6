package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromium starts a headless Chromium for t and its subtests: one
// process, one browser context (its own cookies) per person a test plays.
// It ends with t (the package's TestMain fails on processes left behind).
// A missing Chromium fails the test: `make test-deps` installs Debian's
// chromium package.
func chromium(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if path, err = exec.LookPath("chromium-browser"); err != nil {
			t.Fatal("headless Chromium: no chromium on PATH: run `make test-deps` as root, or install Debian's chromium package (apt-get install chromium)")
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root in containers
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browser, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		// Closes the browser and waits for its process to end.
		_ = chromedp.Cancel(browser)
		cancel()
	})
	// No timeout on the first run: it would stop the browser.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("headless Chromium: %v", err)
	}
	return browser
}

// person is one person's browser: a fresh browser context of the shared
// Chromium (no cookies in common with any other), closed when t ends.
type person struct {
	t   *testing.T
	ctx context.Context
}

func newPerson(t *testing.T, browser context.Context) *person {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	return &person{t: t, ctx: ctx}
}

// do runs steps, bounded.
func (p *person) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatal(err)
	}
}

// open navigates to u and returns where the browser ends up and the
// page's text.
func (p *person) open(u string) (string, string) {
	p.t.Helper()
	p.do(chromedp.Navigate(u))
	return p.page()
}

// page returns the current location and text of the page.
func (p *person) page() (string, string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		p.t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		p.t.Fatal(err)
	}
	return loc, text
}

// waitFor waits until the browser is at a location containing at, and
// returns that location and the page's text.
func (p *person) waitFor(at string) (string, string) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err == nil && strings.Contains(loc, at) {
			if text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body"))); err == nil {
				cancel()
				return loc, text
			}
		}
		cancel()
		if time.Now().After(deadline) {
			p.t.Fatalf("the browser did not get to %q (at %q)", at, loc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// confirm clicks the consent page's confirm button.
func (p *person) confirm() {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.ID("confirm")))
}

// signIn fills in and submits the OpenID provider's login form.
func (p *person) signIn(username, password string) {
	p.t.Helper()
	p.do(
		chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), username),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password),
		chromedp.Submit(chromedp.CSS(`input[name="password"]`)),
	)
}

// holdCallbacks makes the browser stop at the gateway's OAuth callback
// instead of loading it, and returns the callback URLs it was sent to:
// the provider's approval, captured as an attacker on the wire would.
func (p *person) holdCallbacks() <-chan string {
	p.t.Helper()
	held := make(chan string, 4)
	paused := chromedp.Events(p.ctx, fetch.RequestPaused)
	go func() {
		for e, err := range paused {
			if err != nil {
				return
			}
			// Failed before it is handed over: the test must not release
			// interception (which would let a paused request through)
			// before the browser has given it up.
			_, err := chromedp.Call(p.ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: e.RequestID, ErrorReason: network.ErrorReasonAborted})
			if err != nil {
				p.t.Errorf("failing the held callback: %v", err)
			}
			held <- e.Request.URL
		}
	}()
	if _, err := chromedp.Call(p.ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*/oauth/callback/*"}}}); err != nil {
		p.t.Fatal(err)
	}
	return held
}

func (p *person) releaseCallbacks() {
	p.t.Helper()
	if _, err := chromedp.Call(p.ctx, fetch.Disable, cdp.Empty{}); err != nil {
		p.t.Fatal(err)
	}
}

// freeAddr returns a loopback address nothing listens on, so that a
// gateway's public URL can be known before it starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// agentLink asks, as tenant's agent, for a link of integration that lands
// on the gateway's own page, and returns its authorizationUrl.
func (g *gateway) agentLink(base, tenant, integration string) string {
	g.t.Helper()
	resp, body := g.getAs(tenant, base+"/oauth/authorize/"+integration)
	var out struct {
		AuthorizationURL string `json:"authorizationUrl"`
	}
	if err := json.Unmarshal([]byte(body), &out); resp.StatusCode != http.StatusOK || err != nil || out.AuthorizationURL == "" {
		g.t.Fatalf("GET /oauth/authorize/%s as %s: %s %s", integration, tenant, resp.Status, body)
	}
	return out.AuthorizationURL
}

// linked reports whether tenant has a credential for integration, asked
// through the gateway's API (the store itself is the gateway's while it
// serves).
func (g *gateway) linked(tenant, integration string) bool {
	g.t.Helper()
	code, out, raw := g.api(tenant, "GET", fmt.Sprintf("/tenants/%s/integrations/%s", tenant, integration), "")
	if code != http.StatusOK {
		g.t.Fatalf("GET /tenants/%s/integrations/%s: %d %s", tenant, integration, code, raw)
	}
	return out["hasCredentials"] == true
}
