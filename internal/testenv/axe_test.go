package testenv

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
)

// No script of any kind, as on the gateway's own pages (default-src
// 'none'), and a stylesheet only from the page's origin.
const strictCSP = "default-src 'none'; style-src 'self'"

// goodPage has what axe asks of a page: a language, a title, a heading, a
// main landmark, alternative text and a labelled field. Its inline script
// must not run under strictCSP; it is taller than the viewport, for the
// full-page screenshot.
const goodPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Link your account</title>
<link rel="stylesheet" href="/style.css">
<script>document.documentElement.dataset.ran = "yes"</script>
</head>
<body>
<main>
<h1>Link your account</h1>
<img src="/logo.png" alt="Connectors Gateway" width="64" height="64">
<form action="/link" method="post">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="email">
<button type="submit">Link</button>
</form>
<p class="tall">The agent asked to use your account.</p>
</main>
</body>
</html>`

// badPage has no language, an image without alternative text and a field
// without a label.
const badPage = `<!doctype html>
<html>
<head><meta charset="utf-8"><title>Bad</title></head>
<body>
<img src="/logo.png">
<form><input name="email" type="text"></form>
</body>
</html>`

const style = `body { font-family: sans-serif; margin: 2rem; color: #111; background: #fff }
.tall { min-height: 1500px }`

func pages(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	serve := func(path, contentType, body string) {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Security-Policy", strictCSP)
			w.Header().Set("Content-Type", contentType)
			io.WriteString(w, body)
		})
	}
	serve("/good", "text/html; charset=utf-8", goodPage)
	serve("/bad", "text/html; charset=utf-8", badPage)
	serve("/style.css", "text/css", style)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// tab opens a tab of browser and loads u in it.
func tab(t *testing.T, browser context.Context, u string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	nav, cancelNav := context.WithTimeout(ctx, 30*time.Second)
	defer cancelNav()
	if err := chromedp.Do(nav, chromedp.Navigate(u)); err != nil {
		t.Fatal(err)
	}
	return ctx
}

func axe(t *testing.T, ctx context.Context) []AxeViolation {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	vs, err := Axe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func ids(vs []AxeViolation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.ID)
	}
	return out
}

func TestAxe(t *testing.T) {
	if _, err := AxeScript(); err != nil {
		t.Fatal(err)
	}
	browser := Chromium(t)
	base := pages(t)

	t.Run("good page", func(t *testing.T) {
		ctx := tab(t, browser, base+"/good")
		// The policy holds: the page's own script did not run, and
		// the stylesheet from its origin applies.
		ran, err := chromedp.Run(ctx, chromedp.Evaluate[*string](`document.documentElement.dataset.ran ?? null`))
		if err != nil || ran != nil {
			t.Fatalf("the inline script ran (%v, %v): the page is not under %q", ran, err, strictCSP)
		}
		font, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.body).fontFamily`))
		if err != nil || font != "sans-serif" {
			t.Fatalf("body font %q, %v: /style.css did not apply", font, err)
		}
		vs := axe(t, ctx)
		t.Logf("axe on the good page: %s", FormatAxe(vs))
		if s := Serious(vs); len(s) > 0 {
			t.Errorf("serious violations on the good page:\n%s", FormatAxe(s))
		}
		// A second run in the same page (axe already there) agrees.
		if again := axe(t, ctx); !cmp.Equal(ids(again), ids(vs)) {
			t.Errorf("a second run found %v, the first %v", ids(again), ids(vs))
		}
	})

	t.Run("bad page", func(t *testing.T) {
		ctx := tab(t, browser, base+"/bad")
		vs := axe(t, ctx)
		t.Logf("axe on the bad page:\n%s", FormatAxe(vs))
		serious := ids(Serious(vs))
		for _, id := range []string{"image-alt", "label", "html-has-lang"} {
			if !slices.Contains(serious, id) {
				t.Errorf("axe did not find %s among the serious violations %v", id, serious)
			}
		}
		for _, v := range vs {
			if v.ID != "image-alt" {
				continue
			}
			want := []AxeNode{{Target: []string{"img"}, HTML: `<img src="/logo.png">`}}
			if diff := cmp.Diff(want, v.Nodes); diff != "" {
				t.Errorf("image-alt nodes (-want +got):\n%s", diff)
			}
			if !strings.Contains(v.HelpURL, "image-alt") || v.Help == "" {
				t.Errorf("image-alt without help: %+v", v)
			}
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		ctx := tab(t, browser, base+"/good")
		// Not ScreenshotPath: this page is no picture for the docs.
		path := filepath.Join(t.TempDir(), "good.png")
		shot, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := Screenshot(shot, path); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if sig := []byte("\x89PNG\r\n\x1a\n"); !bytes.HasPrefix(b, sig) {
			t.Fatalf("%s starts %q, not with the PNG signature", path, b[:min(len(b), 8)])
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d×%d, %d bytes", path, cfg.Width, cfg.Height, len(b))
		if cfg.Width != ScreenshotWidth {
			t.Errorf("screenshot %d pixels wide, want %d", cfg.Width, ScreenshotWidth)
		}
		// The whole page, beyond the viewport: its paragraph alone is
		// 1500 pixels tall.
		if cfg.Height < 1500 {
			t.Errorf("screenshot %d pixels tall, want the whole page (over 1500)", cfg.Height)
		}
	})
}

func TestSerious(t *testing.T) {
	vs := []AxeViolation{{ID: "a", Impact: "minor"}, {ID: "b", Impact: "moderate"}, {ID: "c", Impact: "serious"}, {ID: "d", Impact: "critical"}, {ID: "e"}}
	if diff := cmp.Diff([]string{"c", "d"}, ids(Serious(vs))); diff != "" {
		t.Errorf("Serious (-want +got):\n%s", diff)
	}
	if got := Serious(nil); got != nil {
		t.Errorf("Serious(nil) = %v", got)
	}
}

func TestFormatAxe(t *testing.T) {
	vs := []AxeViolation{{
		ID: "image-alt", Impact: "critical", Help: "Images must have alternative text",
		HelpURL: "https://dequeuniversity.com/rules/axe/4.14/image-alt",
		Nodes:   []AxeNode{{Target: []string{"img"}, HTML: `<img src="/logo.png">`}, {Target: []string{"#f", "img"}, HTML: `<img>`}},
	}}
	want := "image-alt (critical): Images must have alternative text <https://dequeuniversity.com/rules/axe/4.14/image-alt>\n" +
		"\timg: <img src=\"/logo.png\">\n" +
		"\t#f, img: <img>"
	if diff := cmp.Diff(want, FormatAxe(vs)); diff != "" {
		t.Errorf("FormatAxe (-want +got):\n%s", diff)
	}
	if got := FormatAxe(nil); got != "no violations" {
		t.Errorf("FormatAxe(nil) = %q", got)
	}
}

func TestScreenshotDir(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "shots")
	for _, c := range []struct{ env, want string }{
		{"", ""},
		{"docs/screenshots", filepath.Join(Root(), "docs", "screenshots")},
		{abs, abs},
	} {
		t.Setenv(ScreenshotEnv, c.env)
		if got := ScreenshotDir(); got != c.want {
			t.Errorf("%s=%q: ScreenshotDir() = %q, want %q", ScreenshotEnv, c.env, got, c.want)
		}
	}
	// Unset, screenshots go to the test's own temporary directory,
	// never into the repository.
	t.Setenv(ScreenshotEnv, "")
	if p := ScreenshotPath(t, "x.png"); strings.HasPrefix(p, Root()+string(filepath.Separator)) || filepath.Base(p) != "x.png" {
		t.Errorf("ScreenshotPath with %s unset = %q, want a temporary file outside %s", ScreenshotEnv, p, Root())
	}
	t.Setenv(ScreenshotEnv, abs)
	if p, want := ScreenshotPath(t, "x.png"), filepath.Join(abs, "x.png"); p != want {
		t.Errorf("ScreenshotPath = %q, want %q", p, want)
	}
}
