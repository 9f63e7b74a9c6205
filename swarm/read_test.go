package swarm_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

func newReader(t testing.TB, host string, timeout time.Duration, reg prometheus.Registerer, logger log.Logger) *swarm.Reader {
	t.Helper()
	r, err := swarm.NewReader(swarm.Config{Host: host, Timeout: timeout, Registerer: reg, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestReadHealthy(t *testing.T) {
	srv := fakedocker.New(testkit.Fixture(t, "healthy-3m2w"))
	defer srv.Close()
	r := newReader(t, srv.Host, 5*time.Second, nil, nil)

	snap := r.Read(context.Background())
	if snap.Err != nil || snap.NoLeader {
		t.Fatalf("read: %v (no leader %v)", snap.Err, snap.NoLeader)
	}
	if len(snap.Nodes) != 5 || len(snap.Services) != 7 || len(snap.Tasks.List) == 0 || snap.Info == nil || snap.APIVersion != "1.41" {
		t.Errorf("snapshot: %d nodes, %d services, %d tasks, info %v, API %s", len(snap.Nodes), len(snap.Services), len(snap.Tasks.List), snap.Info, snap.APIVersion)
	}

	// One ping and one request per endpoint; only GET and HEAD; the task
	// list is filtered to the current tasks.
	want := map[string]int{"ping": 1, "info": 1, "nodes": 1, "services": 1, "tasks": 1}
	if got := srv.Requests(); !equalCounts(got, want) {
		t.Errorf("requests = %v, want %v", got, want)
	}
	for _, m := range srv.Methods() {
		method, uri, _ := strings.Cut(m, " ")
		if method != http.MethodGet && method != http.MethodHead {
			t.Errorf("request %s is neither GET nor HEAD", m)
		}
		u, _ := url.Parse(uri)
		switch {
		case strings.HasSuffix(u.Path, "/tasks"):
			if f := u.Query().Get("filters"); f != fakedocker.CurrentTasksFilter {
				t.Errorf("tasks filter = %s, want %s", f, fakedocker.CurrentTasksFilter)
			}
		case strings.HasSuffix(u.Path, "/services"):
			if u.Query().Get("status") != "true" {
				t.Errorf("services request %s lacks status=true", uri)
			}
		}
		if u.Path != "/_ping" && !strings.HasPrefix(u.Path, "/v1.41/") {
			t.Errorf("request %s does not use the negotiated API version", uri)
		}
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestReadFailures(t *testing.T) {
	tests := []struct {
		scenario string
		kind     swarm.Kind
		state    swarm.LocalNodeState
		hint     string
	}{
		{"worker-node", swarm.KindNotManager, swarm.LocalActive, "deploy the exporter on a manager node"},
		{"no-swarm", swarm.KindNotInSwarm, swarm.LocalInactive, "docker swarm init"},
		{"locked", swarm.KindLocked, swarm.LocalLocked, "docker swarm unlock"},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			srv := fakedocker.New(testkit.Fixture(t, tt.scenario))
			defer srv.Close()
			snap := newReader(t, srv.Host, 5*time.Second, nil, nil).Read(context.Background())
			var e *swarm.Error
			if !errors.As(snap.Err, &e) || e.Kind != tt.kind {
				t.Fatalf("err = %v, want kind %s", snap.Err, tt.kind)
			}
			if !strings.Contains(e.Hint, tt.hint) {
				t.Errorf("hint %q does not say %q", e.Hint, tt.hint)
			}
			if snap.Info == nil || snap.Info.LocalNodeState != tt.state {
				t.Errorf("info = %+v, want local node state %v", snap.Info, tt.state)
			}
		})
	}
}

func TestReadQuorumLost(t *testing.T) {
	srv := fakedocker.New(testkit.Fixture(t, "quorum-lost"))
	defer srv.Close()
	snap := newReader(t, srv.Host, 5*time.Second, nil, nil).Read(context.Background())
	if snap.Err != nil || !snap.NoLeader {
		t.Fatalf("err = %v, no leader = %v; want a read without leader", snap.Err, snap.NoLeader)
	}
	if snap.Info == nil || snap.Info.ManagersTotal() != 3 || len(snap.Nodes) != 0 || len(snap.Services) != 0 {
		t.Errorf("snapshot: info %+v, %d nodes, %d services", snap.Info, len(snap.Nodes), len(snap.Services))
	}
}

func TestReadUnreachable(t *testing.T) {
	snap := newReader(t, "unix://"+filepath.Join(t.TempDir(), "missing.sock"), 2*time.Second, nil, nil).Read(context.Background())
	var e *swarm.Error
	if !errors.As(snap.Err, &e) || e.Kind != swarm.KindUnreachable || !strings.Contains(e.Hint, "no Docker socket") {
		t.Fatalf("err = %v (%+v), want an unreachable error about the socket", snap.Err, e)
	}
	if snap.Info != nil {
		t.Error("no /info can have answered")
	}
}

func TestReadOldAPI(t *testing.T) {
	f := testkit.Fixture(t, "healthy-3m2w")
	f.Ping = http.Header{"Api-Version": {"1.40"}}
	srv := fakedocker.New(f)
	defer srv.Close()
	snap := newReader(t, srv.Host, 5*time.Second, nil, nil).Read(context.Background())
	var e *swarm.Error
	if !errors.As(snap.Err, &e) || e.Kind != swarm.KindAPIVersion || !strings.Contains(e.Hint, "1.41") {
		t.Fatalf("err = %v, want an API version error naming 1.41", snap.Err)
	}
	if n := srv.Requests()["nodes"]; n != 0 {
		t.Errorf("%d requests for nodes after the version check failed", n)
	}
}

func TestReadMalformed(t *testing.T) {
	f := testkit.Fixture(t, "healthy-3m2w")
	f.Responses["nodes"] = fakedocker.Response{Body: []byte(`[{"ID":"x","Status":{"State":`)}
	srv := fakedocker.New(f)
	defer srv.Close()
	snap := newReader(t, srv.Host, 5*time.Second, nil, nil).Read(context.Background())
	var e *swarm.Error
	if !errors.As(snap.Err, &e) || e.Kind != swarm.KindDecode || e.Endpoint != "nodes" {
		t.Fatalf("err = %v, want a decode error on nodes", snap.Err)
	}
}

func TestReadTimeouts(t *testing.T) {
	srv := fakedocker.New(testkit.Fixture(t, "healthy-3m2w"))
	defer srv.Close()
	srv.Hang("tasks")
	r := newReader(t, srv.Host, 300*time.Millisecond, nil, nil)

	// The caller's deadline, shorter than the read's, bounds the call.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	snap := r.Read(ctx)
	if took := time.Since(start); took > 250*time.Millisecond {
		t.Errorf("Read took %v with a 100ms deadline", took)
	}
	var e *swarm.Error
	if !errors.As(snap.Err, &e) || e.Kind != swarm.KindTimeout {
		t.Errorf("err = %v, want a timeout", snap.Err)
	}

	// The read's own deadline bounds it when the caller has none.
	start = time.Now()
	snap = r.Read(context.Background())
	if took := time.Since(start); took > time.Second {
		t.Errorf("Read took %v with a 300ms read timeout", took)
	}
	if !errors.As(snap.Err, &e) || e.Kind != swarm.KindTimeout || e.Endpoint != "tasks" {
		t.Errorf("err = %v, want a timeout on tasks", snap.Err)
	}
}

func TestConcurrentReadsShareOneRead(t *testing.T) {
	srv := fakedocker.New(testkit.Fixture(t, "healthy-3m2w"))
	defer srv.Close()
	srv.Delay("tasks", 200*time.Millisecond) // keep the read in flight while the callers arrive
	reg := prometheus.NewRegistry()
	r := newReader(t, srv.Host, 5*time.Second, reg, nil)

	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			if snap := r.Read(context.Background()); snap.Err != nil || len(snap.Nodes) != 5 {
				errs <- snap.Err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a concurrent read failed: %v", err)
	}
	if got := srv.TotalRequests(); got != 5 {
		t.Errorf("10 concurrent reads made %d requests (%v), want the 5 of one read", got, srv.Requests())
	}
	if got := testutil.ToFloat64(collectorFor(t, reg, "swarm_exporter_reads_total")); got != 1 {
		t.Errorf("swarm_exporter_reads_total = %v, want 1", got)
	}
}

func TestCallerGivingUpDoesNotCancelTheSharedRead(t *testing.T) {
	srv := fakedocker.New(testkit.Fixture(t, "healthy-3m2w"))
	defer srv.Close()
	srv.Delay("tasks", 300*time.Millisecond)
	r := newReader(t, srv.Host, 5*time.Second, nil, nil)

	impatient, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan *swarm.Snapshot)
	go func() { done <- r.Read(context.Background()) }()
	time.Sleep(20 * time.Millisecond) // let the patient caller start the read
	if snap := r.Read(impatient); snap.Err == nil {
		t.Error("the impatient caller got a snapshot before the read finished")
	}
	if snap := <-done; snap.Err != nil || len(snap.Tasks.List) == 0 {
		t.Errorf("the patient caller's read was cancelled: %v", snap.Err)
	}
	if got := srv.Requests()["tasks"]; got != 1 {
		t.Errorf("%d task requests, want 1", got)
	}
}

func TestLogsOncePerChangeOfState(t *testing.T) {
	srv := fakedocker.New(testkit.Fixture(t, "worker-node"))
	defer srv.Close()
	var lines logLines
	r := newReader(t, srv.Host, 5*time.Second, nil, &lines)
	for range 3 {
		r.Read(context.Background())
	}
	srv.SetFixture(testkit.Fixture(t, "healthy-3m2w"))
	for range 3 {
		r.Read(context.Background())
	}
	srv.SetFixture(testkit.Fixture(t, "quorum-lost"))
	r.Read(context.Background())
	r.Read(context.Background())

	got := lines.messages()
	want := []string{"cannot read the swarm", "reading the swarm again", "the swarm has no leader: quorum is lost, cluster status is KO"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("log lines = %q, want %q", got, want)
	}
	if !strings.Contains(lines.all(), "deploy the exporter on a manager node") {
		t.Errorf("the worker error does not say what to do: %s", lines.all())
	}
}

type logLines struct {
	mu    sync.Mutex
	lines [][]any
}

func (l *logLines) Log(kv ...any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, kv)
	return nil
}

func (l *logLines) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, kv := range l.lines {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == "msg" {
				out = append(out, kv[i+1].(string))
			}
		}
	}
	return out
}

func (l *logLines) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, kv := range l.lines {
		for _, v := range kv {
			b.WriteString(strings.TrimSpace(strings.ReplaceAll(toString(v), "\n", " ")))
			b.WriteByte(' ')
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case error:
		return v.Error()
	}
	return ""
}

func collectorFor(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name})
			g.Set(mf.GetMetric()[0].GetCounter().GetValue())
			return g
		}
	}
	t.Fatalf("metric %s not found", name)
	return nil
}

// Shortly after a read that saw a leader, "no leader" is an election under
// way: a failed read, not a KO. After the grace, the quorum is lost.
func TestElectionGrace(t *testing.T) {
	srv := fakedocker.New(testkit.Fixture(t, "healthy-3m2w"))
	defer srv.Close()
	r, err := swarm.NewReader(swarm.Config{Host: srv.Host, Timeout: 5 * time.Second, ElectionGrace: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	// Without any read that saw a leader, no leader is a lost quorum.
	srv.SetFixture(testkit.Fixture(t, "quorum-lost"))
	if snap := r.Read(context.Background()); snap.Err != nil || !snap.NoLeader {
		t.Fatalf("first read without leader: err %v, no leader %v; want a lost quorum", snap.Err, snap.NoLeader)
	}

	srv.SetFixture(testkit.Fixture(t, "healthy-3m2w"))
	if snap := r.Read(context.Background()); snap.Err != nil || snap.NoLeader {
		t.Fatalf("healthy read: %v", snap.Err)
	}
	srv.SetFixture(testkit.Fixture(t, "quorum-lost"))
	snap := r.Read(context.Background())
	var e *swarm.Error
	if !errors.As(snap.Err, &e) || e.Kind != swarm.KindElection || snap.NoLeader || snap.Info == nil {
		t.Fatalf("no leader right after a leader: err %v, no leader %v; want an election under way", snap.Err, snap.NoLeader)
	}
	time.Sleep(350 * time.Millisecond)
	if snap := r.Read(context.Background()); snap.Err != nil || !snap.NoLeader {
		t.Fatalf("no leader after the grace: err %v, no leader %v; want a lost quorum", snap.Err, snap.NoLeader)
	}
}
