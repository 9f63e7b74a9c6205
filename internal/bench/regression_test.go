package bench_test

// The scale regression check: plain `go test ./...` scrapes a small and a
// medium synthetic swarm through the real reader and /metrics handler, and
// fails if the number of Docker API requests per scrape stops being
// constant, or if what a scrape allocates, what the exporter keeps between
// scrapes, or how much more it keeps as scrapes go on, grows per service
// past the bounds below. The figures they come from are in
// docs/benchmarks.md.

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarm-exporter/swarm_exporter/collector"
	"github.com/swarm-exporter/swarm_exporter/internal/bench"
	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
	"github.com/swarm-exporter/swarm_exporter/report"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

const (
	// maxAllocPerService bounds the bytes a scrape allocates per service:
	// its decoded form (strings and entry), its report entry and its share
	// of the task list, as the decoders and the exposition reuse their
	// buffers. About four times what it allocates (docs/benchmarks.md,
	// "The regression check"), it catches a copy of a response per service
	// or an allocation per series, as the client library's registry made.
	maxAllocPerService = 4 << 10
	// maxKeptPerService bounds what the exporter keeps between scrapes
	// per service: the buffers of one exposition (the label values, values
	// and text of the service's series, with the room append leaves) and
	// the decoders' tables of IDs, reused from scrape to scrape, and the
	// task replacements' slots of the last read, with its share of nodes
	// and tasks; a second copy of them, or of a read, would pass it
	// (docs/benchmarks.md).
	maxKeptPerService = 4 << 10
	// maxGrowthPerService bounds how much more the exporter keeps per
	// service after twenty more scrapes: nothing is expected, and the
	// measure varies by a few tens of bytes per service from run to run. A
	// leak of one 16-byte string per service and scrape is 320 bytes.
	maxGrowthPerService = 64
	// maxRequests is the number of Docker API requests of one read:
	// /_ping, /info, /nodes, /services and /tasks.
	maxRequests = 5
)

// sizes are a small and a medium swarm: ten times the services and nodes.
var sizes = []bench.Size{
	{Name: "small", Managers: 3, Workers: 7, Services: 50, Replicas: 10, Global: 5, History: 1},
	{Name: "medium", Managers: 3, Workers: 97, Services: 500, Replicas: 10, Global: 5, History: 1},
}

// scraper is an exporter, as main wires it, in front of a fake API.
type scraper struct {
	srv     *fakedocker.Server
	reader  *swarm.Reader
	handler http.Handler
}

func newScraper(t *testing.T, s bench.Size) *scraper {
	t.Helper()
	f, err := bench.Fixture(s)
	if err != nil {
		t.Fatal(err)
	}
	srv := fakedocker.New(f)
	t.Cleanup(srv.Close)
	reg := prometheus.NewRegistry()
	r, err := swarm.NewReader(swarm.Config{Host: srv.Host, Timeout: 30 * time.Second, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	exp, err := collector.New(r, report.DefaultOptions(), collector.Flags(nil).Enabled(), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	return &scraper{srv: srv, reader: r, handler: exp.Handler(collector.HandlerOpts{MaxTimeout: 30 * time.Second, Gatherer: reg})}
}

// scrape serves one gzip-compressed scrape, as Prometheus asks for it.
func (s *scraper) scrape(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := &discard{header: http.Header{}}
	s.handler.ServeHTTP(rec, req)
	if rec.code != 0 && rec.code != http.StatusOK || rec.n == 0 {
		t.Fatalf("scrape: HTTP %d, %d bytes", rec.code, rec.n)
	}
}

type discard struct {
	header http.Header
	code   int
	n      int
}

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) WriteHeader(code int)        { d.code = code }
func (d *discard) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

// cost is what scrapes of one size cost.
type cost struct {
	requests int     // per scrape
	alloc    float64 // bytes allocated per scrape
	kept     float64 // bytes the exporter keeps after its first scrapes
	growth   float64 // bytes it keeps more after twenty more scrapes
}

// measure scrapes a swarm of size s. The allocations are the median of
// several scrapes: a scrape that follows a garbage collection can also
// refill pools the collection emptied. What the exporter keeps is measured
// after scrapes that are each followed by a collection, which makes it the
// same from scrape to scrape to the kilobyte.
func measure(t *testing.T, s bench.Size) cost {
	sc := newScraper(t, s)
	before := liveHeap()
	settled := func(scrapes int) uint64 {
		for range scrapes {
			sc.scrape(t)
			liveHeap()
		}
		return liveHeap()
	}
	// The first scrapes size the reusable buffers.
	kept := settled(3)
	var c cost
	c.kept = float64(int64(kept) - int64(before))
	c.growth = float64(int64(settled(20)) - int64(kept))

	sc.srv.Reset()
	const n = 10
	allocs := make([]float64, n)
	for i := range allocs {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		sc.scrape(t)
		runtime.ReadMemStats(&m1)
		allocs[i] = float64(m1.TotalAlloc - m0.TotalAlloc)
	}
	c.requests = sc.srv.TotalRequests() / n
	if got := sc.srv.TotalRequests(); got != n*c.requests {
		t.Errorf("%s: %d requests in %d scrapes: not the same number each time", s.Name, got, n)
	}
	slices.Sort(allocs)
	c.alloc = allocs[n/2]
	return c
}

// liveHeap returns the bytes of live objects once the pools of reusable
// buffers are emptied (sync.Pool drops its objects over two collections).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestScrapeCostPerService(t *testing.T) {
	// A first round initialises what every exporter shares once (pools,
	// the HTTP stack), so that it counts against neither size.
	measure(t, sizes[0])
	var c [2]cost
	for i, s := range sizes {
		c[i] = measure(t, s)
		t.Logf("%s (%d services, %d nodes): %d requests, %.0f kB allocated per scrape, %.0f kB kept, %+.0f kB after twenty more scrapes",
			s.Name, s.Services+s.Global, s.Nodes(), c[i].requests, c[i].alloc/1e3, c[i].kept/1e3, c[i].growth/1e3)
	}
	if c[0].requests != c[1].requests || c[1].requests > maxRequests {
		t.Errorf("requests per scrape: %d at %d services, %d at %d: want the same number, at most %d",
			c[0].requests, sizes[0].Services, c[1].requests, sizes[1].Services, maxRequests)
	}
	more := float64(sizes[1].Services - sizes[0].Services)
	check := func(what string, per float64, bound int, checked bool) {
		switch {
		case !checked:
			t.Logf("%s: %.0f bytes per service, not checked under the race detector", what, per)
		case per > float64(bound):
			t.Errorf("%s: %.0f bytes per service, want at most %d", what, per, bound)
		default:
			t.Logf("%s: %.0f bytes per service (bound %d)", what, per, bound)
		}
	}
	check("allocated by a scrape", (c[1].alloc-c[0].alloc)/more, maxAllocPerService, !raceEnabled)
	check("kept between scrapes", (c[1].kept-c[0].kept)/more, maxKeptPerService, true)
	check("kept more after twenty more scrapes", (c[1].growth-c[0].growth)/more, maxGrowthPerService, true)
}

// Ten concurrent scrapes share one read: no more requests than one scrape.
func TestConcurrentScrapesShareOneRead(t *testing.T) {
	s := newScraper(t, sizes[1])
	s.scrape(t)
	s.srv.Reset()
	// The ping answers late, so that all ten scrapes are waiting on the
	// same read.
	s.srv.Delay("ping", 300*time.Millisecond)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { s.scrape(t) })
	}
	wg.Wait()
	if got := s.srv.TotalRequests(); got > maxRequests {
		t.Errorf("10 concurrent scrapes made %d requests to %d endpoints, want at most %d", got, len(s.srv.Requests()), maxRequests)
	}
}
