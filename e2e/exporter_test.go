package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Exporter is a swarm_exporter process under test.
type Exporter struct {
	URL   string // http://127.0.0.1:PORT
	Proxy *Proxy // nil when started without the filtering proxy

	cmd *exec.Cmd
	// logPath is the file the process writes its log to, directly: what it
	// logged before answering a request is there when the answer arrives
	// (a pipe would be copied by a goroutine of the test, maybe later).
	logPath string
}

// StartExporter starts the exporter against a daemon (through the filtering
// proxy for unix sockets) with extra flags, and waits until it serves.
func StartExporter(t *testing.T, dockerHost string, flags ...string) *Exporter {
	t.Helper()
	e := &Exporter{}
	host := dockerHost
	if strings.HasPrefix(dockerHost, "unix://") {
		e.Proxy = StartProxy(t, dockerHost)
		host = e.Proxy.Host
	}
	return startExporter(t, e, append([]string{"--docker.host=" + host}, flags...), nil)
}

// StartExporterEnv starts the exporter with environment variables (e.g.
// DOCKER_HOST and TLS settings) instead of --docker.host, without proxy.
func StartExporterEnv(t *testing.T, env []string, flags ...string) *Exporter {
	t.Helper()
	return startExporter(t, &Exporter{}, flags, env)
}

func startExporter(t *testing.T, e *Exporter, flags, env []string) *Exporter {
	t.Helper()
	addr := freeAddr(t)
	e.URL = "http://" + addr
	e.cmd = exec.Command(exporterBin, append([]string{"--web.listen-address=" + addr}, flags...)...)
	logFile, err := os.CreateTemp(t.TempDir(), "exporter-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the process has its own descriptor
	e.logPath = logFile.Name()
	e.cmd.Stdout, e.cmd.Stderr = logFile, logFile
	// Killed with the test process, should it die without cleanups.
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if env != nil {
		e.cmd.Env = env
	}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { e.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		e.cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("exporter logs:\n%s", e.Logs())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp, err := http.Get(e.URL + "/-/healthy"); err == nil {
			resp.Body.Close()
			return e
		}
		select {
		case <-exited:
			t.Fatalf("the exporter exited at start:\n%s", e.Logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the exporter did not serve within 10s:\n%s", e.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Running reports whether the process is still alive (it must never crash).
func (e *Exporter) Running() bool {
	return e.cmd.ProcessState == nil
}

// Logs returns what the exporter logged so far.
func (e *Exporter) Logs() string {
	if e.logPath == "" {
		return ""
	}
	b, err := os.ReadFile(e.logPath)
	if err != nil {
		return fmt.Sprintf("(the log cannot be read: %v)", err)
	}
	return string(b)
}

// Metrics is one parsed scrape.
type Metrics map[string]*dto.MetricFamily

// Scrape fetches /metrics as Prometheus does, with a scrape timeout header,
// and returns the parsed families and how long it took.
func (e *Exporter) Scrape(timeout time.Duration) (Metrics, time.Duration, error) {
	req, _ := http.NewRequest(http.MethodGet, e.URL+"/metrics", nil)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", fmt.Sprintf("%.3f", timeout.Seconds()))
	client := http.Client{Timeout: timeout + 5*time.Second}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return nil, time.Since(start), err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		return nil, took, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, took, fmt.Errorf("scrape: HTTP %d: %s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, took, fmt.Errorf("parsing the exposition: %w", err)
	}
	return Metrics(mfs), took, nil
}

// WaitFor scrapes every second until cond holds, and fails the test with
// what the last scrape said after timeout. It returns the scrape that held.
func (e *Exporter) WaitFor(t *testing.T, timeout time.Duration, what string, cond func(Metrics) bool) Metrics {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last Metrics
	var lastErr error
	for {
		m, _, err := e.Scrape(10 * time.Second)
		if err == nil && cond(m) {
			return m
		}
		last, lastErr = m, err
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s did not happen; last scrape error %v:\n%s", timeout, what, lastErr, last.Summary())
		}
		time.Sleep(time.Second)
	}
}

// Value returns the value of the series of a family whose labels include
// the given name/value pairs, and whether exactly one such series exists.
func (m Metrics) Value(name string, labels ...string) (float64, bool) {
	var found []float64
	for _, s := range m[name].GetMetric() {
		if hasLabels(s, labels) {
			found = append(found, sampleValue(s))
		}
	}
	if len(found) != 1 {
		return 0, false
	}
	return found[0], true
}

// Is reports whether the series exists and has the value.
func (m Metrics) Is(want float64, name string, labels ...string) bool {
	v, ok := m.Value(name, labels...)
	return ok && v == want
}

// Has reports whether the family has a series with the labels.
func (m Metrics) Has(name string, labels ...string) bool {
	for _, s := range m[name].GetMetric() {
		if hasLabels(s, labels) {
			return true
		}
	}
	return false
}

// OneHot returns the label value (of the given label) of the series at 1
// among those matching labels, "" when none or several are at 1.
func (m Metrics) OneHot(name, label string, labels ...string) string {
	found := ""
	for _, s := range m[name].GetMetric() {
		if !hasLabels(s, labels) || sampleValue(s) != 1 {
			continue
		}
		if found != "" {
			return ""
		}
		for _, lp := range s.GetLabel() {
			if lp.GetName() == label {
				found = lp.GetValue()
			}
		}
	}
	return found
}

// Summary renders the swarm families for failure messages.
func (m Metrics) Summary() string {
	var lines []string
	for name, mf := range m {
		if !strings.HasPrefix(name, "docker_swarm_") {
			continue
		}
		for _, s := range mf.GetMetric() {
			var ls []string
			for _, lp := range s.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			lines = append(lines, fmt.Sprintf("%s{%s} %g", name, strings.Join(ls, ","), sampleValue(s)))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// hasLabels reports whether the series has every name/value pair; an
// empty value matches an absent label, as in Prometheus.
func hasLabels(s *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		value := ""
		for _, lp := range s.GetLabel() {
			if lp.GetName() == labels[i] {
				value = lp.GetValue()
			}
		}
		if value != labels[i+1] {
			return false
		}
	}
	return true
}

func sampleValue(s *dto.Metric) float64 {
	switch {
	case s.Gauge != nil:
		return s.GetGauge().GetValue()
	case s.Counter != nil:
		return s.GetCounter().GetValue()
	case s.Untyped != nil:
		return s.GetUntyped().GetValue()
	}
	return 0
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
