package collector_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/swarm-exporter/swarm_exporter/collector"
	"github.com/swarm-exporter/swarm_exporter/internal/bench"
	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
	"github.com/swarm-exporter/swarm_exporter/report"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

// memReader answers every read with one snapshot, so that a benchmark of
// the handler measures the exposition without the Docker API.
type memReader struct{ snap *swarm.Snapshot }

func (m memReader) Read(context.Context) *swarm.Snapshot { return m.snap }

func benchServer(b *testing.B, s bench.Size) *fakedocker.Server {
	b.Helper()
	f, err := bench.Fixture(s)
	if err != nil {
		b.Fatal(err)
	}
	srv := fakedocker.New(f)
	b.Cleanup(srv.Close)
	return srv
}

// benchHandler is the /metrics handler as main wires it, with the Go
// collector among the exporter's own metrics.
func benchHandler(b *testing.B, r collector.Reader) http.Handler {
	b.Helper()
	exp, err := collector.New(r, report.DefaultOptions(), collector.Flags(nil).Enabled(), log.NewNopLogger())
	if err != nil {
		b.Fatal(err)
	}
	global := prometheus.NewRegistry()
	global.MustRegister(collectors.NewGoCollector())
	return exp.Handler(collector.HandlerOpts{MaxTimeout: time.Minute, Gatherer: global})
}

// serve runs one scrape through h and returns the response size.
func serve(b *testing.B, h http.Handler, gzip bool) int {
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	rec := &countingWriter{header: http.Header{}}
	h.ServeHTTP(rec, req)
	if rec.code != 0 && rec.code != http.StatusOK {
		b.Fatalf("HTTP %d", rec.code)
	}
	return rec.n
}

// countingWriter discards the body, as a fast client would read it.
type countingWriter struct {
	header http.Header
	code   int
	n      int
}

func (w *countingWriter) Header() http.Header         { return w.header }
func (w *countingWriter) WriteHeader(code int)        { w.code = code }
func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

var _ io.Writer = (*countingWriter)(nil)

// BenchmarkExposition serves /metrics from a snapshot already in memory:
// the report, the metrics and their encoding, plain and gzip-compressed,
// without reading the swarm. b.SetBytes makes MB/s the exposition's
// output rate.
func BenchmarkExposition(b *testing.B) {
	for _, s := range []bench.Size{bench.S, bench.M} {
		srv := benchServer(b, s)
		r, err := swarm.NewReader(swarm.Config{Host: srv.Host, Timeout: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		snap := r.Read(context.Background())
		r.Close()
		if snap.Err != nil {
			b.Fatal(snap.Err)
		}
		h := benchHandler(b, memReader{snap})
		for _, gzip := range []bool{false, true} {
			name := s.Name + "/plain"
			if gzip {
				name = s.Name + "/gzip"
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(int64(serve(b, h, false)))
				b.ReportAllocs()
				for b.Loop() {
					serve(b, h, gzip)
				}
			})
		}
	}
}

// BenchmarkScrape is a whole scrape: the read of the swarm from a fake
// Docker API over loopback, its decoding, the report and the exposition.
func BenchmarkScrape(b *testing.B) {
	for _, s := range []bench.Size{bench.S, bench.M} {
		srv := benchServer(b, s)
		r, err := swarm.NewReader(swarm.Config{Host: srv.Host, Timeout: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { r.Close() })
		h := benchHandler(b, r)
		b.Run(s.Name, func(b *testing.B) {
			b.ReportAllocs()
			srv.Reset()
			for b.Loop() {
				serve(b, h, false)
			}
			b.ReportMetric(float64(srv.TotalRequests())/float64(b.N), "requests/op")
		})
	}
}
