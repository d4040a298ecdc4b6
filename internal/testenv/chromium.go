package testenv

import (
	"context"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium starts a headless Chromium for tb and returns its chromedp
// context: one process, its first tab ready. Open more tabs, or browser
// contexts with cookies of their own, with chromedp.NewContext on it. The
// browser ends with tb (its process is waited for). A missing Chromium
// fails tb: `make test-deps` installs Debian's chromium package.
//
// It starts Chromium as cmd/connectors' tests do (Debian's chromium on
// PATH, no sandbox since tests run as root in containers).
func Chromium(tb testing.TB) context.Context {
	tb.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if path, err = exec.LookPath("chromium-browser"); err != nil {
			tb.Fatal("headless Chromium: no chromium on PATH: run `make test-deps` as root, or install Debian's chromium package (apt-get install chromium)")
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tb.Cleanup(cancelAlloc)
	browser, cancel := chromedp.NewContext(alloc)
	tb.Cleanup(func() {
		// Closes the browser and waits for its process to end.
		_ = chromedp.Cancel(browser)
		cancel()
	})
	// No timeout on the first run: it would stop the browser.
	if err := chromedp.Do(browser); err != nil {
		tb.Fatalf("headless Chromium: %v", err)
	}
	return browser
}
