package testenv

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// The viewport Screenshot lays a page out in, in CSS pixels at a device
// scale of 1: every image is ScreenshotWidth pixels wide, whatever machine
// takes it.
const (
	ScreenshotWidth  = 1280
	ScreenshotHeight = 800
)

// Screenshot saves the whole page of the chromedp context ctx, as laid out
// in a ScreenshotWidth × ScreenshotHeight viewport, as a PNG at path
// (creating its directory): ScreenshotWidth pixels wide and as tall as the
// page, at least ScreenshotHeight. The tab keeps that viewport afterwards,
// so that the pages of one test are all laid out alike. It waits for the
// page's fonts; Chromium's headless mode hides scroll bars.
//
// path should come from ScreenshotPath, so that screenshots reach the
// repository only when asked for.
func Screenshot(ctx context.Context, path string) error {
	png, err := chromedp.Run(ctx, fullPage)
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	return nil
}

// fullPage sets the viewport and captures the page from its top to the end
// of its content.
func fullPage(ctx context.Context, t *chromedp.Target) ([]byte, error) {
	if _, err := chromedp.EmulateViewport(ScreenshotWidth, ScreenshotHeight)(ctx, t); err != nil {
		return nil, err
	}
	if _, err := chromedp.Evaluate[chromedp.Void](`document.fonts.ready.then(() => {})`, chromedp.EvalAwaitPromise)(ctx, t); err != nil {
		return nil, err
	}
	m, err := cdp.Call(ctx, t, page.GetLayoutMetrics, cdp.Empty{})
	if err != nil {
		return nil, err
	}
	height := float64(ScreenshotHeight)
	if m.CSSContentSize != nil {
		height = max(height, math.Ceil(m.CSSContentSize.Height))
	}
	r, err := cdp.Call(ctx, t, page.CaptureScreenshot, page.CaptureScreenshotParams{
		Format:                page.CaptureScreenshotFormatPng,
		Clip:                  &page.Viewport{Width: ScreenshotWidth, Height: height, Scale: 1},
		CaptureBeyondViewport: new(true),
		FromSurface:           new(true),
	})
	if err != nil {
		return nil, err
	}
	return r.Data, nil
}

// ScreenshotEnv names the directory that screenshots meant for the
// repository go to, such as docs/screenshots (relative to the module's
// root): set only when they are to be made again, for example
//
//	CONNECTORS_SCREENSHOTS=docs/screenshots go test ./cmd/connectors -run Screenshots
const ScreenshotEnv = "CONNECTORS_SCREENSHOTS"

// ScreenshotDir returns the directory ScreenshotEnv names, made absolute
// against the module's root, or "" when it is unset: then a test writes
// its screenshots to a temporary directory instead (ScreenshotPath does
// this), so that `make test` never leaves git status dirty.
func ScreenshotDir() string {
	dir := os.Getenv(ScreenshotEnv)
	if dir == "" || filepath.IsAbs(dir) {
		return dir
	}
	return filepath.Join(Root(), dir)
}

// ScreenshotPath returns where a test saves the screenshot name (such as
// "consent.png"): in ScreenshotDir when ScreenshotEnv is set, otherwise in
// tb's temporary directory, removed when tb ends.
func ScreenshotPath(tb testing.TB, name string) string {
	tb.Helper()
	dir := ScreenshotDir()
	if dir == "" {
		dir = tb.TempDir()
	}
	return filepath.Join(dir, name)
}
