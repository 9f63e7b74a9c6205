package monitoring

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Prometheus is a real Prometheus server started by a test on loopback.
type Prometheus struct {
	*Process
	URL string // http://127.0.0.1:port
}

// StartPrometheus runs Prometheus (the prometheus binary, see Tool) with the
// configuration file at configPath until the test ends, and waits until it
// is ready. Its storage is a temporary directory.
func StartPrometheus(t testing.TB, configPath string, extraArgs ...string) *Prometheus {
	t.Helper()
	bin := Tool(t, "prometheus")
	addr := FreeAddr(t)
	args := append([]string{
		"--config.file=" + configPath,
		"--storage.tsdb.path=" + t.TempDir(),
		"--web.listen-address=" + addr,
		"--log.level=warn",
	}, extraArgs...)
	p := start(t, addr, "/-/ready", bin, args...)
	return &Prometheus{Process: p, URL: "http://" + addr}
}

// StartPrometheusWithConfig writes config (YAML) to a temporary file and
// starts Prometheus with it.
func StartPrometheusWithConfig(t testing.TB, config string, extraArgs ...string) *Prometheus {
	t.Helper()
	path := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return StartPrometheus(t, path, extraArgs...)
}

type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func (p *Prometheus) get(ctx context.Context, path string, params url.Values) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path, nil)
	if err != nil {
		return nil, err
	}
	req.URL.RawQuery = params.Encode()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%s: HTTP %d: %s", path, resp.StatusCode, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s: %s", path, r.ErrorType, r.Error)
	}
	return r.Data, nil
}

// FormatQuery parses expr with Prometheus's own parser
// (/api/v1/format_query) and returns it formatted.
func (p *Prometheus) FormatQuery(ctx context.Context, expr string) (string, error) {
	data, err := p.get(ctx, "/api/v1/format_query", url.Values{"query": {expr}})
	if err != nil {
		return "", err
	}
	var s string
	err = json.Unmarshal(data, &s)
	return s, err
}

// Sample is one series of an instant query's result.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query runs an instant query now. A scalar result comes back as one sample
// without labels.
func (p *Prometheus) Query(ctx context.Context, expr string) ([]Sample, error) {
	return p.query(ctx, url.Values{"query": {expr}})
}

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

// Series is one series of a range query's result.
type Series struct {
	Metric map[string]string
	Points []Point
}

// Point is one sample of a Series.
type Point struct {
	T time.Time
	V float64
}

// QueryRange runs a range query from start to end with a resolution of
// step.
func (p *Prometheus) QueryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]Series, error) {
	data, err := p.get(ctx, "/api/v1/query_range", url.Values{"query": {expr}, "start": {formatTime(start)},
		"end": {formatTime(end)}, "step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}})
	if err != nil {
		return nil, err
	}
	var res struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, err
	}
	if res.ResultType != "matrix" {
		return nil, fmt.Errorf("unexpected result type %q", res.ResultType)
	}
	out := make([]Series, 0, len(res.Result))
	for _, r := range res.Result {
		s := Series{Metric: r.Metric}
		for _, v := range r.Values {
			ts, _ := v[0].(float64)
			f, _ := strconv.ParseFloat(fmt.Sprint(v[1]), 64)
			s.Points = append(s.Points, Point{T: time.UnixMilli(int64(ts * 1000)), V: f})
		}
		out = append(out, s)
	}
	return out, nil
}

func (p *Prometheus) query(ctx context.Context, params url.Values) ([]Sample, error) {
	data, err := p.get(ctx, "/api/v1/query", params)
	if err != nil {
		return nil, err
	}
	var res struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, err
	}
	switch res.ResultType {
	case "vector":
		var v []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(res.Result, &v); err != nil {
			return nil, err
		}
		out := make([]Sample, 0, len(v))
		for _, s := range v {
			f, _ := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
			out = append(out, Sample{Metric: s.Metric, Value: f})
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(res.Result, &v); err != nil {
			return nil, err
		}
		f, _ := strconv.ParseFloat(fmt.Sprint(v[1]), 64)
		return []Sample{{Metric: map[string]string{}, Value: f}}, nil
	default:
		return nil, fmt.Errorf("unexpected result type %q", res.ResultType)
	}
}

// WaitFor polls an instant query until it returns at least n series.
func (p *Prometheus) WaitFor(t testing.TB, expr string, n int, timeout time.Duration) []Sample {
	t.Helper()
	return p.WaitUntil(t, fmt.Sprintf("at least %d series", n), expr, timeout,
		func(res []Sample) bool { return len(res) >= n })
}

// WaitUntil polls an instant query until cond holds of its result, and
// fails t after timeout with the last result and Prometheus's output; what
// says what cond waits for.
func (p *Prometheus) WaitUntil(t testing.TB, what, expr string, timeout time.Duration, cond func([]Sample) bool) []Sample {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := p.Query(ctx, expr)
		cancel()
		if err == nil && cond(res) {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, waiting for %s: %s returns %s (err %v)\nPrometheus output:\n%s", timeout, what, expr, FormatSamples(res), err, p.Output())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// FormatSamples renders a query's result for messages: one "labels value"
// per series, sorted, or "nothing".
func FormatSamples(res []Sample) string {
	out := make([]string, 0, len(res))
	for _, s := range res {
		out = append(out, fmt.Sprintf("%s %g", LabelsKey(s.Metric), s.Value))
	}
	if len(out) == 0 {
		return "nothing"
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// Alert is an alert of Prometheus's /api/v1/alerts.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    time.Time         `json:"activeAt"`
}

// Alerts returns the pending and firing alerts.
func (p *Prometheus) Alerts(ctx context.Context) ([]Alert, error) {
	data, err := p.get(ctx, "/api/v1/alerts", nil)
	if err != nil {
		return nil, err
	}
	var res struct {
		Alerts []Alert `json:"alerts"`
	}
	err = json.Unmarshal(data, &res)
	return res.Alerts, err
}
