package exposition_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
)

// badUTF8 stands for invalid UTF-8 in a JSON string: encoding/json cannot
// write it, so it is put in the body afterwards.
const badUTF8 = "@@BAD-UTF8@@"

// Odd values, and what the exporter must show for each.
var (
	hostnames = []string{
		`quote"back\slash`,
		"new\nline and \\n literally",
		"Ünïcødé ☃ 日本 \u2028 \U0001F600",
		"tab\tcr\rnul\x00bell\x07",
		"bad" + badUTF8 + "byte",
	}
	localName    = "local \"manager\"\\\n☃"
	serviceNames = map[string]string{ // captured name → odd name
		"web":        "web\"\\\né",
		"agent":      "agent{le=\"0.5\"} 1",
		"pinned":     "# HELP pinned",
		"mgr-global": "mgr\tglobal\r",
		"zero":       "zéro" + badUTF8,
	}
	stack = "sh\"op\\\n☃ {}=,"
	image = "registry.example:5000/we\"ird\\img\n☃:1"
)

// shown is what a label value must parse back to: each invalid byte is shown
// as U+FFFD, as the decoders mangle it.
func shown(s string) string { return strings.ReplaceAll(s, badUTF8, "\uFFFD\uFFFD") }

// oddFixture is the healthy 3-manager, 2-worker swarm with odd names.
func oddFixture(t *testing.T) *fakedocker.Fixture {
	t.Helper()
	f := testkit.Fixture(t, "healthy-3m2w")
	edit := func(endpoint string, fn func(any)) {
		var v any
		if err := json.Unmarshal(f.Responses[endpoint].Body, &v); err != nil {
			t.Fatal(err)
		}
		fn(v)
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte(badUTF8), []byte{0xff, 0xfe})
		f.Responses[endpoint] = fakedocker.Response{Body: b}
	}
	edit("info", func(v any) { v.(map[string]any)["Name"] = localName })
	edit("nodes", func(v any) {
		for i, n := range v.([]any) {
			n := n.(map[string]any)
			desc := n["Description"].(map[string]any)
			desc["Hostname"] = hostnames[i]
			desc["Engine"].(map[string]any)["EngineVersion"] = "20.10\"\\\n" + badUTF8
			n["Spec"].(map[string]any)["Labels"] = map[string]any{"odd\"\\\nkey": "odd\"\\\nvalue ☃" + badUTF8}
		}
	})
	edit("services", func(v any) {
		for _, s := range v.([]any) {
			spec := s.(map[string]any)["Spec"].(map[string]any)
			name := spec["Name"].(string)
			if odd, ok := serviceNames[name]; ok {
				spec["Name"] = odd
			}
			spec["Labels"] = map[string]any{"com.docker.stack.namespace": stack}
			spec["TaskTemplate"].(map[string]any)["ContainerSpec"].(map[string]any)["Image"] =
				image + "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		}
	})
	return f
}

var exporterBin string // built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "exposition-test")
	if err != nil {
		panic(err)
	}
	exporterBin = filepath.Join(dir, "swarm_exporter")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildExporter builds the exporter's binary once per test run.
func buildExporter(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(exporterBin); err == nil {
		return exporterBin
	}
	cmd := exec.Command(testkit.GoTool(), "build", "-o", exporterBin, ".")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return exporterBin
}

func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrapeBinary runs the exporter binary against docker and returns one
// /metrics answer.
func scrapeBinary(t *testing.T, docker string) []byte {
	t.Helper()
	bin := buildExporter(t)
	addr := freeAddress(t)
	var logs testkit.LockedBuffer // written by the process, read on a timeout
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--docker.host="+docker)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/metrics")
		if err == nil {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("/metrics: %d %v\n%s", resp.StatusCode, err, body)
			}
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("the exporter did not serve: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOddLabelValuesGiveAValidExposition(t *testing.T) {
	docker := fakedocker.New(oddFixture(t))
	defer docker.Close()
	body := scrapeBinary(t, docker.Host)
	if out := os.Getenv("EXPOSITION_OUT"); out != "" {
		// For a look by hand: EXPOSITION_OUT=/tmp/odd.prom go test ./internal/exposition
		if err := os.WriteFile(out, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, body)
	}
	if v := value(t, families, "docker_swarm_up", nil); v != 1 {
		t.Fatalf("docker_swarm_up = %v", v)
	}

	// Every odd value parses back to what the daemon sent.
	got := labelValues(families, "docker_swarm_node_info", "hostname")
	var want []string
	for _, h := range hostnames {
		want = append(want, shown(h))
	}
	sameSet(t, "node hostnames", got, want)
	sameSet(t, "engine versions", distinct(labelValues(families, "docker_swarm_node_info", "engine_version")), []string{shown("20.10\"\\\n" + badUTF8)})
	sameSet(t, "node_state hostnames", distinct(labelValues(families, "docker_swarm_node_state", "hostname")), want)
	sameSet(t, "local node", labelValues(families, "docker_swarm_local_node_info", "hostname"), []string{localName})

	names := distinct(labelValues(families, "docker_swarm_service_info", "service_name"))
	for captured, odd := range serviceNames {
		if !contains(names, shown(odd)) {
			t.Errorf("service %s shown as none of %q, want %q", captured, names, shown(odd))
		}
	}
	sameSet(t, "stacks", distinct(labelValues(families, "docker_swarm_service_info", "stack")), []string{stack})
	sameSet(t, "images (digest stripped)", distinct(labelValues(families, "docker_swarm_service_info", "image")), []string{image})
	sameSet(t, "service_status stacks", distinct(labelValues(families, "docker_swarm_service_status", "stack")), []string{stack})

	// The odd names change no count: the same statuses as the captured swarm.
	if v := value(t, families, "docker_swarm_cluster_status", map[string]string{"status": "ok"}); v != 1 {
		t.Errorf("cluster status ok = %v", v)
	}
	if v := value(t, families, "docker_swarm_service_replicas_running", map[string]string{"service_name": shown(serviceNames["web"])}); v != 6 {
		t.Errorf("web running = %v, want 6", v)
	}
	checkOneHot(t, families)

	checkWithPromtool(t, body)
}

// checkOneHot: every state set has exactly one series at 1 per object.
func checkOneHot(t *testing.T, families map[string]*dto.MetricFamily) {
	t.Helper()
	sets := map[string]string{
		"docker_swarm_cluster_status": "status", "docker_swarm_services_status": "status", "docker_swarm_status": "status",
		"docker_swarm_service_status": "status", "docker_swarm_node_state": "state",
		"docker_swarm_node_availability": "availability", "docker_swarm_node_manager_reachability": "reachability",
		"docker_swarm_local_node_state": "state",
	}
	for name, setLabel := range sets {
		mf := families[name]
		if mf == nil {
			t.Errorf("%s missing", name)
			continue
		}
		ones := map[string]int{}
		for _, m := range mf.Metric {
			var key []string
			for _, lp := range m.Label {
				if lp.GetName() != setLabel {
					key = append(key, lp.GetName()+"="+lp.GetValue())
				}
			}
			k := strings.Join(key, ",")
			ones[k] += int(m.GetGauge().GetValue())
			if v := m.GetGauge().GetValue(); v != 0 && v != 1 {
				t.Errorf("%s{%s}: %v in a state set", name, k, v)
			}
		}
		for k, n := range ones {
			if n != 1 {
				t.Errorf("%s{%s}: %d series at 1, want exactly one", name, k, n)
			}
		}
	}
}

// allowedLints are the only lints `promtool check metrics` may raise on the
// exposition, each a deliberate part of the metric contract, as
// node_exporter's checkmetrics allows its own; any other lint fails.
var allowedLints = map[string]string{
	// A gauge whose name is part of the metric contract: it counts the
	// nodes of a role whatever their state, the only node count known
	// while the swarm has no leader.
	`docker_swarm_nodes_total non-counter metrics should not have "_total" suffix`: "contract",
}

// checkWithPromtool pipes the exposition into `promtool check metrics`: it
// must find no error, and no lint but the allowed ones.
func checkWithPromtool(t *testing.T, body []byte) {
	t.Helper()
	promtool := monitoring.Tool(t, "promtool")
	lints, err := promtoolCheck(promtool, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range disallowedLints(lints) {
		t.Errorf("promtool check metrics: %s", l)
	}
}

// disallowedLints returns the lines of promtool's lint output that are not
// allowed.
func disallowedLints(lints string) []string {
	var out []string
	for _, l := range strings.Split(lints, "\n") {
		if l = strings.TrimSpace(l); l != "" && allowedLints[l] == "" {
			out = append(out, l)
		}
	}
	return out
}

// promtoolCheck runs `promtool check metrics` on body and returns its lint
// findings, or an error when the exposition is invalid.
func promtoolCheck(promtool string, body []byte) (string, error) {
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		return "", err
	}
	// promtool exits 1 when the exposition does not parse, 3 when it
	// parses but has lint findings.
	if code != 0 && code != 3 || bytes.Contains(out, []byte("error while linting")) {
		return "", fmt.Errorf("promtool check metrics: exit %d\n%s", code, out)
	}
	return string(out), nil
}

// TestPromtoolCheckFails makes sure the promtool check can fail: a label
// value with a raw newline is no valid exposition, and a lint that is not
// allowed (a counter without _total, a gauge named like a counter) is
// reported, while the allowed one is not.
func TestPromtoolCheckFails(t *testing.T) {
	promtool := monitoring.Tool(t, "promtool")
	good := "# HELP x_up A test.\n# TYPE x_up gauge\nx_up{name=\"a\\nb\"} 1\n"
	if lints, err := promtoolCheck(promtool, []byte(good)); err != nil || lints != "" {
		t.Fatalf("a valid exposition without lint fails: %v %q", err, lints)
	}
	bad := strings.Replace(good, `a\nb`, "a\nb", 1)
	if _, err := promtoolCheck(promtool, []byte(bad)); err == nil {
		t.Fatalf("an invalid exposition passes:\n%s", bad)
	}
	linted := good +
		"# HELP docker_swarm_nodes_total Nodes.\n# TYPE docker_swarm_nodes_total gauge\ndocker_swarm_nodes_total{role=\"manager\"} 3\n" +
		"# HELP docker_swarm_restarts Restarts.\n# TYPE docker_swarm_restarts counter\ndocker_swarm_restarts 1\n" +
		"# HELP docker_swarm_tasks_total Tasks.\n# TYPE docker_swarm_tasks_total gauge\ndocker_swarm_tasks_total 1\n"
	lints, err := promtoolCheck(promtool, []byte(linted))
	if err != nil {
		t.Fatal(err)
	}
	got := disallowedLints(lints)
	if len(got) != 2 || !strings.HasPrefix(got[0], "docker_swarm_restarts ") || !strings.HasPrefix(got[1], "docker_swarm_tasks_total ") {
		t.Errorf("lints not allowed: %q, want one for docker_swarm_restarts and one for docker_swarm_tasks_total (promtool said %q)", got, lints)
	}
}

// TestEveryScenarioPassesPromtool: the exposition of every captured swarm
// (healthy, failing, locked, leaderless, not a swarm) is valid.
func TestEveryScenarioPassesPromtool(t *testing.T) {
	for _, scenario := range testkit.Scenarios(t) {
		t.Run(scenario, func(t *testing.T) {
			docker := testkit.FakeDocker(t, scenario)
			body := scrapeBinary(t, docker.Host)
			parser := expfmt.NewTextParser(model.UTF8Validation)
			families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("the exposition does not parse: %v", err)
			}
			if families["docker_swarm_up"] == nil {
				t.Fatal("docker_swarm_up missing")
			}
			checkWithPromtool(t, body)
		})
	}
}

func labelValues(families map[string]*dto.MetricFamily, metric, label string) []string {
	var out []string
	if mf := families[metric]; mf != nil {
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if lp.GetName() == label {
					out = append(out, lp.GetValue())
				}
			}
		}
	}
	return out
}

func value(t *testing.T, families map[string]*dto.MetricFamily, metric string, labels map[string]string) float64 {
	t.Helper()
	mf := families[metric]
	if mf == nil {
		t.Fatalf("%s missing", metric)
	}
next:
	for _, m := range mf.Metric {
		for k, v := range labels {
			found := false
			for _, lp := range m.Label {
				found = found || lp.GetName() == k && lp.GetValue() == v
			}
			if !found {
				continue next
			}
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("%s%v missing", metric, labels)
	return 0
}

func distinct(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func sameSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := append([]string(nil), got...), append([]string(nil), want...)
	sort.Strings(g)
	sort.Strings(w)
	if fmt.Sprintf("%q", g) != fmt.Sprintf("%q", w) {
		t.Errorf("%s: got %q, want %q", what, g, w)
	}
}
