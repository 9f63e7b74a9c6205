package monitoring

import (
	"os"
	"os/exec"
	"testing"
)

// Tool returns the path of an external program the tests need (promtool,
// prometheus, amtool, prometheus-alertmanager). When it is missing the test
// is skipped with a message saying how to install it, unless CI=true: in CI
// a missing tool fails the test, so that a check cannot silently vanish.
func Tool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := name + " is not installed (Debian: apt-get install prometheus prometheus-alertmanager)"
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI=true, so this check cannot be skipped", msg)
	}
	t.Skipf("skipping: %s; set CI=true to make this a failure", msg)
	return ""
}

// Alertmanager returns the path of Alertmanager's binary: Debian names it
// prometheus-alertmanager, upstream alertmanager.
func Alertmanager(t testing.TB) string {
	t.Helper()
	if path, err := exec.LookPath("alertmanager"); err == nil {
		return path
	}
	return Tool(t, "prometheus-alertmanager")
}

// execOutput runs a program and returns its combined output.
func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// Run runs an external program (such as promtool) and fails the test with
// its output when it fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := execOutput(name, args...)
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}
