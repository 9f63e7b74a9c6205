package bench_test

// The scale regression check: plain `go test ./...` scrapes a small and a
// medium synthetic swarm through the real reader and /metrics handler, and
// fails if the number of Docker API requests per scrape stops being
// constant, or if what a scrape allocates, or what the exporter keeps
// between scrapes, grows per service past the bounds below. The bounds
// and the figures they come from are in docs/benchmarks.md.

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
	// maxAllocPerService bounds the bytes a scrape allocates per service.
	// A scrape allocates about 1.8 kB per service (each with 10 tasks):
	// its decoded form and the garbage of decoding it (about 1.5 kB),
	// its report entry and its tasks' interned IDs; the exposition reuses
	// its buffers. Twice that catches a copy of a response per service or
	// an allocation per series: the client library's registry, which the
	// text writer replaced, allocated 7.4 kB per service.
	maxAllocPerService = 4 << 10
	// maxRetainedPerService bounds what the exporter keeps between scrapes
	// per service, once the pools of reusable buffers are emptied by the
	// garbage collector. Nothing is expected: the measure varies by ±50
	// bytes per service from run to run. A leak of one 32-byte string per
	// service and scrape, over the check's ten scrapes, is 320 bytes.
	maxRetainedPerService = 256
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

// measure returns the requests and the bytes allocated per scrape, and the
// bytes retained after scrapes compared with before the first one. The
// allocations are the median of several scrapes: a scrape that follows a
// garbage collection also refills the emptied pools of reusable buffers.
func measure(t *testing.T, s bench.Size) (requests int, alloc, retained float64) {
	sc := newScraper(t, s)
	before := liveHeap()
	// Warm up: the first scrapes size the reusable buffers.
	for range 3 {
		sc.scrape(t)
	}
	sc.srv.Reset()
	const n = 7
	allocs := make([]float64, n)
	for i := range allocs {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		sc.scrape(t)
		runtime.ReadMemStats(&m1)
		allocs[i] = float64(m1.TotalAlloc - m0.TotalAlloc)
	}
	requests = sc.srv.TotalRequests() / n
	if got := sc.srv.TotalRequests(); got != n*requests {
		t.Errorf("%s: %d requests in %d scrapes: not the same number each time", s.Name, got, n)
	}
	slices.Sort(allocs)
	retained = float64(int64(liveHeap()) - int64(before))
	return requests, allocs[n/2], retained
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
	var requests [2]int
	var alloc, retained [2]float64
	for i, s := range sizes {
		requests[i], alloc[i], retained[i] = measure(t, s)
		t.Logf("%s (%d services, %d nodes): %d requests, %.0f kB allocated per scrape, %+.0f kB retained",
			s.Name, s.Services+s.Global, s.Nodes(), requests[i], alloc[i]/1e3, retained[i]/1e3)
	}
	if requests[0] != requests[1] || requests[1] > maxRequests {
		t.Errorf("requests per scrape: %d at %d services, %d at %d: want the same number, at most %d",
			requests[0], sizes[0].Services, requests[1], sizes[1].Services, maxRequests)
	}
	more := float64(sizes[1].Services - sizes[0].Services)
	if per := (alloc[1] - alloc[0]) / more; raceEnabled {
		t.Logf("%.0f bytes allocated per service and scrape: not checked under the race detector", per)
	} else if per > maxAllocPerService {
		t.Errorf("a scrape allocates %.0f bytes per service, want at most %d", per, maxAllocPerService)
	} else {
		t.Logf("%.0f bytes allocated per service and scrape (bound %d)", per, maxAllocPerService)
	}
	if per := (retained[1] - retained[0]) / more; per > maxRetainedPerService {
		t.Errorf("the exporter keeps %.0f bytes per service between scrapes, want at most %d", per, maxRetainedPerService)
	} else {
		t.Logf("%.0f bytes retained per service (bound %d)", per, maxRetainedPerService)
	}
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
