// Package browsertest drives a real headless Chromium from tests
// (chromedp): finding the browser, starting it for one test, and saving
// screenshots as test artifacts. A test that needs a browser is skipped,
// saying why, only when no Chromium is installed; CI installs Debian's
// chromium (.ci/run), so there the tests always run.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// candidates are the names Chromium is installed under: Debian's
// package, other distributions', Chrome, and the headless shell.
var candidates = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}

// Path returns the Chromium binary: $TRAIL_CHROMIUM if set, else the
// first candidate on PATH, else "".
func Path() string {
	if p := os.Getenv("TRAIL_CHROMIUM"); p != "" {
		return p
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	return ""
}

// Width and Height are the browser window: a laptop screen.
const (
	Width  = 1366
	Height = 820
)

// New starts a headless Chromium for t and returns a context that drives
// its first tab. The browser is closed when t ends. Logs of the page's
// console are reported with t.Log, so that a failing test shows what the
// page said.
func New(t testing.TB) context.Context {
	t.Helper()
	path := Path()
	if path == "" {
		t.Skip("no Chromium binary found (chromium, chromium-browser, google-chrome, headless-shell or $TRAIL_CHROMIUM): " +
			"install it with `apt-get install chromium` to run the browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.WindowSize(Width, Height),
		// Tests run as root in containers, where Chromium's sandbox
		// cannot start; the pages loaded are the test's own.
		chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	// Start the browser now, so that a browser that cannot start fails
	// here. (Not under a timeout: the context of the first call is the
	// browser's lifetime.)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("browsertest: starting %s: %v", path, err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// Screenshots saves screenshots of a test's screens: in dir when it is
// set (to regenerate the committed ones), else as the test's artifacts
// (go test -artifacts keeps them; otherwise they are discarded with the
// test).
type Screenshots struct {
	t   testing.TB
	dir string
}

// NewScreenshots saves under dir, or under t.ArtifactDir() when dir is "".
func NewScreenshots(t *testing.T, dir string) *Screenshots {
	if dir == "" {
		dir = t.ArtifactDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("browsertest: screenshot directory: %v", err)
	}
	return &Screenshots{t: t, dir: dir}
}

// Take saves the visible part of the page (what a laptop shows) as
// name.png.
func (s *Screenshots) Take(ctx context.Context, name string) {
	s.t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		s.t.Fatalf("browsertest: screenshot %s: %v", name, err)
	}
	path := filepath.Join(s.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		s.t.Fatalf("browsertest: screenshot %s: %v", name, err)
	}
	s.t.Logf("screenshot %s", path)
}
