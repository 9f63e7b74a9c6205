// Package testkit holds what the tests of several packages share: the
// captured Docker API answers of testdata/docker, loaded by scenario name
// from any test's working directory, the go command, and a buffer that
// goroutines can write to while a test reads it.
package testkit

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
)

// Root returns the repository's root directory, the one holding go.mod,
// found from this source file's location, else from the working directory.
func Root() string {
	if _, file, _, ok := runtime.Caller(0); ok {
		if root, err := findRoot(filepath.Dir(file)); err == nil {
			return root
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	root, err := findRoot(wd)
	if err != nil {
		panic(err)
	}
	return root
}

func findRoot(dir string) (string, error) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above " + dir)
		}
		dir = parent
	}
}

// GoTool returns the go command: the one on PATH (go test puts its own
// first), else /usr/local/go/bin/go.
func GoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// ScenarioDir returns the directory of a captured scenario,
// testdata/docker/<scenario>.
func ScenarioDir(scenario string) string {
	return filepath.Join(Root(), "testdata", "docker", scenario)
}

// ScenarioNames returns the names of every captured scenario, sorted: the
// directories of testdata/docker that hold an /info answer.
func ScenarioNames() ([]string, error) {
	infos, err := filepath.Glob(filepath.Join(Root(), "testdata", "docker", "*", "info.json"))
	if err == nil && len(infos) == 0 {
		err = errors.New("no captured scenario in testdata/docker")
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, info := range infos {
		out = append(out, filepath.Base(filepath.Dir(info)))
	}
	return out, nil
}

// Scenarios returns ScenarioNames, failing the test when there is none.
func Scenarios(t testing.TB) []string {
	t.Helper()
	names, err := ScenarioNames()
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// Fixture loads the captured answers of a scenario.
func Fixture(t testing.TB, scenario string) *fakedocker.Fixture {
	t.Helper()
	f, err := fakedocker.LoadFixture(ScenarioDir(scenario))
	if err != nil {
		t.Fatalf("loading scenario %s: %v", scenario, err)
	}
	return f
}

// FakeDocker serves the captured answers of a scenario on loopback until
// the test ends.
func FakeDocker(t testing.TB, scenario string) *fakedocker.Server {
	t.Helper()
	s := fakedocker.New(Fixture(t, scenario))
	t.Cleanup(s.Close)
	return s
}

// Body returns the captured body of one endpoint of a scenario
// (testdata/docker/<scenario>/<endpoint>.json), whatever its status.
func Body(t testing.TB, scenario, endpoint string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ScenarioDir(scenario), endpoint+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// LockedBuffer is a bytes.Buffer that several goroutines may write to (a
// process's stdout and stderr, a server's logger) while a test reads it.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
