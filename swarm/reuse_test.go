package swarm_test

import (
	"context"
	"fmt"
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

// In testdata/docker/healthy-3m2w, /info answers as m1, the leader.
const (
	leaderID   = "7hadt61hzp9pmvjfqivudybqd" // swx-m1
	followerID = "06xes3fqfninbivpzrwaqhhbu" // swx-m2
)

// follower is the healthy swarm read through m2, which is not the leader.
func follower(t testing.TB) *fakedocker.Fixture {
	t.Helper()
	f, err := testkit.Fixture(t, "healthy-3m2w").AsNode(followerID)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func newReaderWith(t testing.TB, srv *fakedocker.Server, cfg swarm.Config) *swarm.Reader {
	t.Helper()
	cfg.Host = srv.Host
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	r, err := swarm.NewReader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

var (
	oneFullRead    = map[string]int{"ping": 1, "info": 1, "nodes": 1, "services": 1, "tasks": 1}
	oneClusterRead = map[string]int{"ping": 1, "info": 1, "nodes": 1}
)

// times multiplies the requests of one read.
func times(n int, read map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range read {
		out[k] = v * n
	}
	return out
}

func checkRequests(t *testing.T, srv *fakedocker.Server, what string, want map[string]int) {
	t.Helper()
	if got := srv.Requests(); !equalCounts(got, want) {
		t.Errorf("%s: requests %v, want %v", what, got, want)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// With --read.services=leader, an instance whose manager is not the leader
// reads /_ping, /info and /nodes only; the leader's reads everything.
func TestServicesLeaderFollowerReadsTheClusterOnly(t *testing.T) {
	srv := fakedocker.New(follower(t))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	r := newReaderWith(t, srv, swarm.Config{Services: swarm.ServicesLeader, Registerer: reg})
	for i := 1; i <= 3; i++ {
		snap := r.Read(context.Background())
		if snap.Err != nil || snap.NoLeader || !snap.NoServices {
			t.Fatalf("read %d: err %v, no leader %v, no services %v; want a read without services", i, snap.Err, snap.NoLeader, snap.NoServices)
		}
		if len(snap.Nodes) != 5 || len(snap.Services) != 0 || len(snap.Tasks.List) != 0 || snap.LocalLeader() {
			t.Errorf("read %d: %d nodes, %d services, %d tasks, leader %v", i, len(snap.Nodes), len(snap.Services), len(snap.Tasks.List), snap.LocalLeader())
		}
		checkRequests(t, srv, "follower", times(i, oneClusterRead))
	}
	if v := gauge(t, reg, "swarm_exporter_last_read_fetched_services"); v != 0 {
		t.Errorf("swarm_exporter_last_read_fetched_services = %v on a follower, want 0", v)
	}
}

func TestServicesLeaderLeaderReadsEverything(t *testing.T) {
	srv := fakedocker.New(testkit.Fixture(t, "healthy-3m2w"))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	r := newReaderWith(t, srv, swarm.Config{Services: swarm.ServicesLeader, Registerer: reg})
	for i := 1; i <= 3; i++ {
		snap := r.Read(context.Background())
		if snap.Err != nil || snap.NoServices || len(snap.Services) != 7 || len(snap.Tasks.List) == 0 || !snap.LocalLeader() {
			t.Fatalf("read %d: err %v, no services %v, %d services, %d tasks, leader %v", i, snap.Err, snap.NoServices, len(snap.Services), len(snap.Tasks.List), snap.LocalLeader())
		}
		checkRequests(t, srv, "leader", times(i, oneFullRead))
	}
	if v := gauge(t, reg, "swarm_exporter_last_read_fetched_services"); v != 1 {
		t.Errorf("swarm_exporter_last_read_fetched_services = %v on the leader, want 1", v)
	}
}

// The default reads everything through a follower too.
func TestServicesAlwaysFollowerReadsEverything(t *testing.T) {
	srv := fakedocker.New(follower(t))
	defer srv.Close()
	r := newReaderWith(t, srv, swarm.Config{})
	snap := r.Read(context.Background())
	if snap.Err != nil || snap.NoServices || len(snap.Services) != 7 {
		t.Fatalf("err %v, no services %v, %d services", snap.Err, snap.NoServices, len(snap.Services))
	}
	checkRequests(t, srv, "always", oneFullRead)
}

// When a read's /nodes shows that the manager has become the leader, the
// same read fetches the services and tasks; when it is no longer the
// leader, the next read leaves them out. Each change is logged once.
func TestServicesLeaderFollowsLeadership(t *testing.T) {
	srv := fakedocker.New(follower(t))
	defer srv.Close()
	var lines logLines
	r := newReaderWith(t, srv, swarm.Config{Services: swarm.ServicesLeader, Logger: &lines})
	r.Read(context.Background())
	r.Read(context.Background())
	checkRequests(t, srv, "as a follower", times(2, oneClusterRead))

	// An election makes m2 the leader: its /nodes says so.
	srv.Reset()
	srv.SetFixture(leaderAs(t, followerID))
	snap := r.Read(context.Background())
	if snap.Err != nil || snap.NoServices || len(snap.Services) != 7 || len(snap.Tasks.List) == 0 {
		t.Fatalf("first read as the leader: err %v, no services %v, %d services, %d tasks; want the services read at once",
			snap.Err, snap.NoServices, len(snap.Services), len(snap.Tasks.List))
	}
	checkRequests(t, srv, "the read that finds itself leader", oneFullRead)
	// /services and /tasks came after /nodes, in the same read.
	order := requestOrder(srv)
	if !(order["nodes"] < order["services"] && order["nodes"] < order["tasks"]) {
		t.Errorf("request order %v: want /services and /tasks after /nodes", srv.Methods())
	}
	// From then on every read asks for them together with /nodes: while
	// /nodes is held back, they are asked for already.
	srv.Reset()
	srv.Delay("nodes", 600*time.Millisecond)
	done := make(chan struct{})
	go func() {
		r.Read(context.Background())
		close(done)
	}()
	time.Sleep(300 * time.Millisecond)
	if got := srv.Requests(); got["services"] != 1 || got["tasks"] != 1 {
		t.Errorf("requests while /nodes is held back: %v; the leader's reads should ask for everything at once", got)
	}
	<-done
	srv.Delay("nodes", 0)

	// Leadership moves back to m1: m2's next read still fetches the
	// services (it was the leader), the one after leaves them out.
	srv.Reset()
	srv.SetFixture(follower(t))
	if snap := r.Read(context.Background()); snap.NoServices || snap.LocalLeader() {
		t.Errorf("the read that finds leadership gone: no services %v, leader %v", snap.NoServices, snap.LocalLeader())
	}
	if snap := r.Read(context.Background()); !snap.NoServices {
		t.Error("the read after leadership moved away fetched the services")
	}
	checkRequests(t, srv, "after leadership moved away", map[string]int{"ping": 2, "info": 2, "nodes": 2, "services": 1, "tasks": 1})

	got := lines.messages()
	want := []string{
		"reading the swarm",
		"this manager is not the swarm's leader: reading the cluster and the nodes only, the exporter on the leader reads the services and tasks (--read.services=leader)",
		"this manager is the swarm's leader: reading the services and tasks too",
		"this manager is no longer the swarm's leader: reading the cluster and the nodes only from now on, the exporter on the new leader reads the services and tasks (--read.services=leader)",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("log lines:\n%q\nwant\n%q", got, want)
	}
	for _, kv := range lines.lines {
		if lvl := fmt.Sprint(value(kv, "level")); lvl != "info" {
			t.Errorf("log line %v is at level %s, want info", kv, lvl)
		}
	}
}

// value returns the value of key in a log line's key-value pairs.
func value(kv []any, key string) any {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == key {
			return kv[i+1]
		}
	}
	return nil
}

// leaderAs returns the healthy swarm read through node id, with id the
// leader instead of m1.
func leaderAs(t *testing.T, id string) *fakedocker.Fixture {
	t.Helper()
	f, err := testkit.Fixture(t, "healthy-3m2w").AsNode(id)
	if err != nil {
		t.Fatal(err)
	}
	nodes := f.Responses["nodes"]
	body := string(nodes.Body)
	// The captured /nodes marks m1 "Leader": true; move the mark to id.
	i := strings.Index(body, `"Leader":true`)
	if i < 0 {
		i = strings.Index(body, `"Leader": true`)
	}
	if i < 0 {
		t.Fatal("no leader in the fixture's /nodes")
	}
	body = strings.Replace(body, body[i:i+strings.Index(body[i:], "true")+4], `"Leader":false`, 1)
	j := strings.Index(body, `"ID":"`+id+`"`)
	if j < 0 {
		j = strings.Index(body, `"ID": "`+id+`"`)
	}
	k := strings.Index(body[j:], `"ManagerStatus":{`)
	if j < 0 || k < 0 {
		t.Fatalf("no manager status for %s in the fixture's /nodes", id)
	}
	at := j + k + len(`"ManagerStatus":{`)
	body = body[:at] + `"Leader":true,` + body[at:]
	nodes.Body = []byte(body)
	f.Responses["nodes"] = nodes
	return f
}

// requestOrder returns the position of each endpoint's first request.
func requestOrder(srv *fakedocker.Server) map[string]int {
	order := map[string]int{}
	for i, m := range srv.Methods() {
		_, uri, _ := strings.Cut(m, " ")
		path, _, _ := strings.Cut(uri, "?")
		ep := path[strings.LastIndex(path, "/")+1:]
		if ep == "_ping" {
			ep = "ping"
		}
		if _, ok := order[ep]; !ok {
			order[ep] = i
		}
	}
	return order
}

// --read.max-age: the scrapes within max-age of a successful read's start
// reuse its snapshot (the same value); the first one after reads again.
func TestMaxAgeReusesTheLastRead(t *testing.T) {
	srv := fakedocker.New(testkit.Fixture(t, "healthy-3m2w"))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	const maxAge = 400 * time.Millisecond
	r := newReaderWith(t, srv, swarm.Config{MaxAge: maxAge, Registerer: reg})
	first := r.Read(context.Background())
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	for range 5 {
		if snap := r.Read(context.Background()); snap != first {
			t.Fatalf("a scrape %v after the read's start got another snapshot", time.Since(first.ReadAt))
		}
	}
	if time.Since(first.ReadAt) >= maxAge {
		t.Fatalf("the machine is too slow for this test: 6 reads took %v", time.Since(first.ReadAt))
	}
	checkRequests(t, srv, "6 scrapes within max-age", oneFullRead)
	if got := testutil.ToFloat64(collectorFor(t, reg, "swarm_exporter_read_cache_hits_total")); got != 5 {
		t.Errorf("swarm_exporter_read_cache_hits_total = %v, want 5", got)
	}
	time.Sleep(time.Until(first.ReadAt.Add(maxAge)))
	second := r.Read(context.Background())
	if second == first || second.Err != nil {
		t.Fatalf("the scrape after max-age reused the read (err %v)", second.Err)
	}
	checkRequests(t, srv, "a scrape after max-age", times(2, oneFullRead))
	if got := testutil.ToFloat64(collectorFor(t, reg, "swarm_exporter_reads_total")); got != 2 {
		t.Errorf("swarm_exporter_reads_total = %v, want 2", got)
	}
}

// Max-age counts from the start of the read, not its end: reads are at
// least max-age apart, whatever they take.
func TestMaxAgeCountsFromTheReadsStart(t *testing.T) {
	srv := fakedocker.New(testkit.Fixture(t, "healthy-3m2w"))
	defer srv.Close()
	srv.Delay("tasks", 300*time.Millisecond)
	r := newReaderWith(t, srv, swarm.Config{MaxAge: 400 * time.Millisecond})
	first := r.Read(context.Background())
	time.Sleep(150 * time.Millisecond) // 450 ms after the start, 150 ms after the end
	if r.Read(context.Background()) == first {
		t.Error("a scrape 450 ms after the start of a read reused it with a max-age of 400 ms")
	}
}

// A failed read is never reused: the next scrape reads again.
func TestMaxAgeDoesNotReuseFailedReads(t *testing.T) {
	f := testkit.Fixture(t, "healthy-3m2w")
	broken := testkit.Fixture(t, "healthy-3m2w")
	broken.Responses["nodes"] = fakedocker.Response{Status: 500, Body: []byte(`{"message":"boom"}`)}
	srv := fakedocker.New(broken)
	defer srv.Close()
	r := newReaderWith(t, srv, swarm.Config{MaxAge: time.Minute})
	for i := range 3 {
		if snap := r.Read(context.Background()); snap.Err == nil {
			t.Fatalf("read %d did not fail", i)
		}
	}
	if got := srv.Requests()["nodes"]; got != 3 {
		t.Errorf("3 scrapes after failed reads made %d requests for /nodes, want 3", got)
	}
	// Recovery shows at once, and then the read is reused.
	srv.SetFixture(f)
	ok := r.Read(context.Background())
	if ok.Err != nil {
		t.Fatalf("read after recovery: %v", ok.Err)
	}
	if r.Read(context.Background()) != ok {
		t.Error("the successful read was not reused")
	}
	// So does the status API's: it fetched the services.
	srv.SetFixture(broken)
	if snap := r.ReadFull(context.Background()); snap != ok {
		t.Fatal("ReadFull did not reuse a full read within max-age")
	}
}

// Concurrent scrapes share one read, with max-age as without.
func TestMaxAgeConcurrentScrapesShareOneRead(t *testing.T) {
	srv := fakedocker.New(testkit.Fixture(t, "healthy-3m2w"))
	defer srv.Close()
	srv.Delay("tasks", 200*time.Millisecond)
	r := newReaderWith(t, srv, swarm.Config{MaxAge: time.Minute, Services: swarm.ServicesLeader})
	var wg sync.WaitGroup
	snaps := make([]*swarm.Snapshot, 10)
	for i := range snaps {
		wg.Go(func() { snaps[i] = r.Read(context.Background()) })
	}
	wg.Wait()
	for i, s := range snaps {
		if s != snaps[0] || s.Err != nil {
			t.Errorf("scrape %d got its own snapshot (err %v)", i, s.Err)
		}
	}
	// The leader's first read: /nodes, then services and tasks.
	checkRequests(t, srv, "10 concurrent scrapes", oneFullRead)
}

// The status API and command read the services whatever --read.services
// says, and reuse a read only if it fetched them.
func TestReadFullOnAFollower(t *testing.T) {
	srv := fakedocker.New(follower(t))
	defer srv.Close()
	r := newReaderWith(t, srv, swarm.Config{MaxAge: time.Minute, Services: swarm.ServicesLeader})
	scrape := r.Read(context.Background())
	if !scrape.NoServices {
		t.Fatal("a follower's scrape read the services")
	}
	full := r.ReadFull(context.Background())
	if full.NoServices || len(full.Services) != 7 || len(full.Tasks.List) == 0 {
		t.Fatalf("ReadFull: no services %v, %d services, %d tasks", full.NoServices, len(full.Services), len(full.Tasks.List))
	}
	if again := r.ReadFull(context.Background()); again != full {
		t.Error("a second ReadFull within max-age read again")
	}
	checkRequests(t, srv, "a scrape and two ReadFull", map[string]int{"ping": 2, "info": 2, "nodes": 2, "services": 1, "tasks": 1})
}

// A ReadFull that arrives while a follower's read without services is in
// flight does not get that read: it gets the services.
func TestReadFullDuringAReadWithoutServices(t *testing.T) {
	srv := fakedocker.New(follower(t))
	defer srv.Close()
	srv.Delay("nodes", 300*time.Millisecond)
	r := newReaderWith(t, srv, swarm.Config{Services: swarm.ServicesLeader})
	done := make(chan *swarm.Snapshot)
	go func() { done <- r.Read(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	full := r.ReadFull(context.Background())
	if full.Err != nil || full.NoServices || len(full.Services) != 7 {
		t.Fatalf("ReadFull during a read without services: err %v, no services %v, %d services", full.Err, full.NoServices, len(full.Services))
	}
	if scrape := <-done; !scrape.NoServices {
		t.Error("the scrape's read fetched the services")
	}
	checkRequests(t, srv, "a scrape and a ReadFull", map[string]int{"ping": 2, "info": 2, "nodes": 2, "services": 1, "tasks": 1})
}

// A scrape on a follower never gets the services that a status request
// read: neither from the read it reuses within max-age nor from the one it
// joins; and the gauge says what the scrapes report.
func TestServicesLeaderScrapesAfterAReadFull(t *testing.T) {
	srv := fakedocker.New(follower(t))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	r := newReaderWith(t, srv, swarm.Config{MaxAge: time.Minute, Services: swarm.ServicesLeader, Registerer: reg})
	if full := r.ReadFull(context.Background()); full.NoServices || len(full.Services) != 7 {
		t.Fatalf("ReadFull: no services %v, %d services", full.NoServices, len(full.Services))
	}
	scrape := r.Read(context.Background())
	if scrape.Err != nil || !scrape.NoServices || len(scrape.Services) != 0 || len(scrape.Tasks.List) != 0 || len(scrape.Nodes) != 5 {
		t.Errorf("a scrape reusing a ReadFull: err %v, no services %v, %d services, %d tasks, %d nodes; want the nodes only",
			scrape.Err, scrape.NoServices, len(scrape.Services), len(scrape.Tasks.List), len(scrape.Nodes))
	}
	if again := r.ReadFull(context.Background()); again.NoServices || len(again.Services) != 7 {
		t.Errorf("a ReadFull after the scrape lost the services: no services %v, %d services", again.NoServices, len(again.Services))
	}
	checkRequests(t, srv, "a ReadFull, a scrape and a ReadFull within max-age", oneFullRead)
	if v := gauge(t, reg, "swarm_exporter_last_read_fetched_services"); v != 0 {
		t.Errorf("swarm_exporter_last_read_fetched_services = %v on a follower after a ReadFull, want 0", v)
	}
}

func TestServicesLeaderScrapeJoiningAReadFull(t *testing.T) {
	srv := fakedocker.New(follower(t))
	defer srv.Close()
	srv.Delay("nodes", 300*time.Millisecond)
	r := newReaderWith(t, srv, swarm.Config{Services: swarm.ServicesLeader})
	done := make(chan *swarm.Snapshot)
	go func() { done <- r.ReadFull(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	scrape := r.Read(context.Background())
	if scrape.Err != nil || !scrape.NoServices || len(scrape.Services) != 0 {
		t.Errorf("a scrape joining a ReadFull: err %v, no services %v, %d services; want none", scrape.Err, scrape.NoServices, len(scrape.Services))
	}
	if full := <-done; full.NoServices || len(full.Services) != 7 {
		t.Errorf("the ReadFull: no services %v, %d services", full.NoServices, len(full.Services))
	}
	checkRequests(t, srv, "a ReadFull joined by a scrape", oneFullRead)
}

// Without leader, nobody has the services: a ReadFull reuses the read.
func TestServicesLeaderWithoutLeader(t *testing.T) {
	srv := fakedocker.New(testkit.Fixture(t, "quorum-lost"))
	defer srv.Close()
	r := newReaderWith(t, srv, swarm.Config{MaxAge: time.Minute, Services: swarm.ServicesLeader, Logger: log.NewNopLogger()})
	snap := r.Read(context.Background())
	if snap.Err != nil || !snap.NoLeader || snap.NoServices {
		t.Fatalf("err %v, no leader %v, no services %v; want a read without leader", snap.Err, snap.NoLeader, snap.NoServices)
	}
	if r.ReadFull(context.Background()) != snap {
		t.Error("ReadFull did not reuse the read without leader")
	}
}

func TestParseServicesMode(t *testing.T) {
	for _, name := range swarm.ServicesModes {
		m, err := swarm.ParseServicesMode(name)
		if err != nil || m.String() != name {
			t.Errorf("ParseServicesMode(%q) = %v, %v", name, m, err)
		}
	}
	if _, err := swarm.ParseServicesMode("never"); err == nil {
		t.Error("ParseServicesMode accepted never")
	}
}

// m3 of testdata/docker/healthy-3m2w, a follower like m2; m2's node ID
// comes first.
const otherFollowerID = "kz1pe7ls8nml6296m0keu404k"

// asNodeWith is the healthy swarm read through node id, with the nodes
// drained drained.
func asNodeWith(t *testing.T, id string, drained ...string) *fakedocker.Fixture {
	t.Helper()
	f, err := testkit.Fixture(t, "healthy-3m2w").AsNode(id)
	if err != nil {
		t.Fatal(err)
	}
	if f, err = f.WithAvailability("drain", drained...); err != nil {
		t.Fatal(err)
	}
	return f
}

// While the leader is drained, and so runs no exporter of
// deploy/exporter.yml's global service, one follower reads the services
// instead: the first ready, active, reachable manager by node ID. Every
// instance agrees which from /nodes.
func TestReadsServicesStandIn(t *testing.T) {
	read := func(f *fakedocker.Fixture) *swarm.Snapshot {
		srv := fakedocker.New(f)
		defer srv.Close()
		r := newReaderWith(t, srv, swarm.Config{Services: swarm.ServicesAlways})
		snap := r.Read(context.Background())
		if snap.Err != nil {
			t.Fatal(snap.Err)
		}
		return snap
	}
	for _, c := range []struct {
		name    string
		through string
		drained []string
		want    bool
	}{
		{"the leader", leaderID, nil, true},
		{"the drained leader", leaderID, []string{leaderID}, true},
		{"a follower, the leader active", followerID, nil, false},
		{"the first follower, the leader drained", followerID, []string{leaderID}, true},
		{"the second follower, the leader drained", otherFollowerID, []string{leaderID}, false},
		{"the second follower, the leader and the first drained", otherFollowerID, []string{leaderID, followerID}, true},
		{"a drained follower, the leader drained", followerID, []string{leaderID, followerID}, false},
		{"a follower, another drained", followerID, []string{otherFollowerID}, false},
	} {
		if got := read(asNodeWith(t, c.through, c.drained...)).ReadsServices(); got != c.want {
			t.Errorf("%s: reads the services %v, want %v", c.name, got, c.want)
		}
	}
}

// With --read.services=leader, the stand-in reads the services from the
// read that finds the leader drained, and stops when the leader is active
// again; the other follower never reads them.
func TestServicesLeaderStandIn(t *testing.T) {
	srv := fakedocker.New(follower(t))
	defer srv.Close()
	var lines logLines
	reg := prometheus.NewRegistry()
	r := newReaderWith(t, srv, swarm.Config{Services: swarm.ServicesLeader, Logger: &lines, Registerer: reg})
	if snap := r.Read(context.Background()); !snap.NoServices {
		t.Fatal("a follower read the services while the leader is active")
	}
	srv.Reset()
	srv.SetFixture(asNodeWith(t, followerID, leaderID))
	for i := 1; i <= 2; i++ {
		snap := r.Read(context.Background())
		if snap.Err != nil || snap.NoServices || len(snap.Services) != 7 || len(snap.Tasks.List) == 0 {
			t.Fatalf("read %d with the leader drained: err %v, no services %v, %d services, %d tasks; want the services",
				i, snap.Err, snap.NoServices, len(snap.Services), len(snap.Tasks.List))
		}
	}
	checkRequests(t, srv, "the stand-in", times(2, oneFullRead))
	if v := gauge(t, reg, "swarm_exporter_last_read_fetched_services"); v != 1 {
		t.Errorf("swarm_exporter_last_read_fetched_services = %v on the stand-in, want 1", v)
	}
	srv.Reset()
	srv.SetFixture(follower(t))
	r.Read(context.Background())
	if snap := r.Read(context.Background()); !snap.NoServices {
		t.Error("the stand-in still reads the services with the leader active again")
	}
	want := []string{
		"reading the swarm",
		"this manager is not the swarm's leader: reading the cluster and the nodes only, the exporter on the leader reads the services and tasks (--read.services=leader)",
		"the swarm's leader is drained, so no exporter runs there: this manager stands in for it, reading the services and tasks too (--read.services=leader)",
		"this manager no longer stands in for the leader: reading the cluster and the nodes only from now on, the exporter on the leader (or another stand-in) reads the services and tasks (--read.services=leader)",
	}
	if got := lines.messages(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("log lines:\n%q\nwant\n%q", got, want)
	}

	other := fakedocker.New(asNodeWith(t, otherFollowerID, leaderID))
	defer other.Close()
	r3 := newReaderWith(t, other, swarm.Config{Services: swarm.ServicesLeader})
	for i := 0; i < 2; i++ {
		if snap := r3.Read(context.Background()); snap.Err != nil || !snap.NoServices {
			t.Errorf("the other follower with the leader drained: err %v, no services %v; want the cluster only", snap.Err, snap.NoServices)
		}
	}
	checkRequests(t, other, "the other follower", times(2, oneClusterRead))
}
