package monitoring

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
)

// Scenarios are the captured swarms in testdata/docker that a scrape can be
// taken from.
func Scenarios() ([]string, error) { return testkit.ScenarioNames() }

// FakeDocker serves the captured Docker API answers of a scenario
// (testdata/docker/<scenario>) on loopback until the test ends.
func FakeDocker(t testing.TB, scenario string) *fakedocker.Server {
	t.Helper()
	return testkit.FakeDocker(t, scenario)
}

var (
	buildMu    sync.Mutex
	builtPaths = map[string]string{}
)

// BuildExporter builds the exporter's binary (the repository's main
// package) once per test binary and returns its path.
func BuildExporter(t testing.TB) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	root := Root()
	if p, ok := builtPaths[root]; ok {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	dir, err := os.MkdirTemp("", "swarm_exporter-build-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "swarm_exporter")
	cmd := exec.Command(testkit.GoTool(), "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the exporter: %v\n%s", err, out)
	}
	builtPaths[root] = bin
	return bin
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Process is a program started by a test, stopped when the test ends.
type Process struct {
	Addr string // host:port it listens on
	cmd  *exec.Cmd
	out  *testkit.LockedBuffer
}

// Output returns what the process printed so far.
func (p *Process) Output() string { return p.out.String() }

// start runs a program and waits until GET http://addr+readyPath answers
// 200, stopping it (by its own process id) when the test ends.
func start(t testing.TB, addr, readyPath, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{Addr: addr, out: &testkit.LockedBuffer{}}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	dieWithTest(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { p.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("%s exited before it was ready:\n%s", filepath.Base(bin), p.Output())
		default:
		}
		resp, err := http.Get("http://" + addr + readyPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s after 30s:\n%s", filepath.Base(bin), addr, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartExporter runs the exporter binary on a loopback port, reading the
// Docker API at dockerHost, with any extra flags.
func StartExporter(t testing.TB, bin, dockerHost string, args ...string) *Process {
	t.Helper()
	addr := FreeAddr(t)
	args = append([]string{"--docker.host=" + dockerHost, "--web.listen-address=" + addr, "--docker.timeout=5s"}, args...)
	return start(t, addr, "/-/healthy", bin, args...)
}

// Scrape fetches a /metrics page.
func Scrape(t testing.TB, addr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scraping %s: %v", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: HTTP %d, %v", addr, resp.StatusCode, err)
	}
	return string(body)
}

// SeriesNames returns the names of the series in a text exposition (so a
// histogram contributes its _bucket, _sum and _count series).
func SeriesNames(exposition string) map[string]bool {
	names := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end <= 0 {
			continue
		}
		names[line[:end]] = true
	}
	return names
}

// ExportedSeriesNames scrapes the real exporter binary against every
// captured scenario and returns the union of the series names it exposed:
// what dashboards and rules may use.
func ExportedSeriesNames(t testing.TB) map[string]bool {
	t.Helper()
	bin := BuildExporter(t)
	scenarios, err := Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	if len(scenarios) == 0 {
		t.Fatal("no scenario in testdata/docker")
	}
	names := map[string]bool{}
	for _, sc := range scenarios {
		fake := FakeDocker(t, sc)
		exp := StartExporter(t, bin, fake.Host)
		for n := range SeriesNames(Scrape(t, exp.Addr)) {
			names[n] = true
		}
	}
	return names
}
