package testenv

import (
	"os/exec"
	"strings"
	"testing"
)

// Promtool runs Prometheus's promtool with args in the repository and
// returns its output, failing tb with that output when it fails. A missing
// promtool fails tb too: `make promtool` (a dependency of `make test-deps`)
// installs Debian's prometheus package, which brings it.
func Promtool(tb testing.TB, args ...string) string {
	tb.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		tb.Fatalf("promtool is missing: run `make promtool` (make test-deps does this; as root it runs apt-get install prometheus)")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = Root()
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
