package collector_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/swarm-exporter/swarm_exporter/collector"
	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
	"github.com/swarm-exporter/swarm_exporter/report"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

// readOnce reads a fixture once through the real reader.
func readOnce(t testing.TB, f *fakedocker.Fixture) *swarm.Snapshot {
	t.Helper()
	srv := fakedocker.New(f)
	defer srv.Close()
	r, err := swarm.NewReader(swarm.Config{Host: srv.Host, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return r.Read(context.Background())
}

// ownMetrics stands for the exporter's own registry, with names that sort
// before, between and after the swarm's families.
func ownMetrics() prometheus.Gatherer {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "swarm_exporter_docker_requests_total", Help: "Requests."}, []string{"endpoint"})
	c.WithLabelValues("tasks").Add(3)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "swarm_exporter_reads_seconds", Help: "Reads\\n."})
	h.Observe(0.2)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "go_goroutines", Help: "Goroutines."})
	g.Set(12)
	z := prometheus.NewGauge(prometheus.GaugeOpts{Name: "zz_last", Help: "Last."})
	reg.MustRegister(c, h, g, z)
	return reg
}

var durations = regexp.MustCompile(`(?m)^(swarm_exporter_scrape_collector_duration_seconds\{collector="[a-z]+"\}) .*$`)

// get serves one request and returns the headers and the body, decompressed.
func get(t *testing.T, h http.Handler, header http.Header) (http.Header, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header = header
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
	}
	body := rec.Body.Bytes()
	if rec.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	return rec.Header(), durations.ReplaceAll(body, []byte("$1 0"))
}

// The text writer answers with the bytes the client library would: the
// same answer in protobuf (served by the registry), re-encoded as text by
// expfmt, is the same text, whatever the swarm, and with the same headers.
func TestTextMatchesTheClientLibrary(t *testing.T) {
	snaps := map[string]*swarm.Snapshot{}
	for _, sc := range []string{"healthy-3m2w", "worker-down", "quorum-lost", "missing-image", "worker-node", "locked", "drained-paused", "no-swarm"} {
		snaps[sc] = readOnce(t, testkit.Fixture(t, sc))
	}
	synth, err := fakedocker.Synth(testkit.Fixture(t, "healthy-3m2w"), fakedocker.SynthOptions{Managers: 3, Workers: 20, Services: 300, Replicas: 3, GlobalServices: 3})
	if err != nil {
		t.Fatal(err)
	}
	snaps["synthetic"] = readOnce(t, synth)
	// Label values that need escaping, and series whose order depends on
	// every label: the same stack and name prefixes, images sorted apart
	// from names.
	odd := readOnce(t, testkit.Fixture(t, "healthy-3m2w"))
	for i := range odd.Services {
		s := &odd.Services[i]
		s.Stack = []string{`a"b`, "a\\b", "a\nb", "", "é☃"}[i%5]
		s.Image = []string{"z", "a", `q"`}[i%3]
	}
	odd.Nodes[0].Hostname = "h\\\"\n"
	odd.Info.Name = `x"y`
	snaps["escapes"] = odd
	snaps["unreadable"] = &swarm.Snapshot{ReadAt: time.Now(), Err: &swarm.Error{Kind: swarm.KindTimeout, Err: context.DeadlineExceeded}}

	for name, snap := range snaps {
		t.Run(name, func(t *testing.T) {
			exp, err := collector.New(memReader{snap}, report.DefaultOptions(), collector.Flags(nil).Enabled(), log.NewNopLogger())
			if err != nil {
				t.Fatal(err)
			}
			h := exp.Handler(collector.HandlerOpts{MaxTimeout: time.Minute, Gatherer: ownMetrics()})

			protoHeader, protoBody := get(t, h, http.Header{"Accept": {string(expfmt.NewFormat(expfmt.TypeProtoDelim))}})
			if ct := protoHeader.Get("Content-Type"); expfmt.Format(ct).FormatType() != expfmt.TypeProtoDelim {
				t.Fatalf("protobuf asked, %s served", ct)
			}
			var want bytes.Buffer
			dec := expfmt.NewDecoder(bytes.NewReader(protoBody), expfmt.NewFormat(expfmt.TypeProtoDelim))
			for {
				var mf dto.MetricFamily
				if err := dec.Decode(&mf); err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				if _, err := expfmt.MetricFamilyToText(&want, &mf); err != nil {
					t.Fatal(err)
				}
			}
			wantText := durations.ReplaceAll(want.Bytes(), []byte("$1 0"))

			for _, header := range []http.Header{
				{},
				{"Accept-Encoding": {"gzip"}},
				{"Accept": {"text/plain;version=0.0.4;q=1,*/*;q=0.1"}, "Accept-Encoding": {"gzip, deflate"}},
				{"Accept": {"application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3"}, "Accept-Encoding": {"identity;q=0.5, gzip;q=0.9"}},
			} {
				gotHeader, got := get(t, h, header)
				if ft := expfmt.Format(gotHeader.Get("Content-Type")).FormatType(); ft != expfmt.TypeTextPlain {
					t.Fatalf("%v: %s served", header, gotHeader.Get("Content-Type"))
				}
				if !bytes.Equal(got, wantText) {
					t.Errorf("%v: the text writer's answer differs from the client library's:\n%s\n---\n%s", header, got, wantText)
				}
			}
		})
	}
}

// Headers, format and encoding are those of the client library's handler.
func TestTextHeaders(t *testing.T) {
	exp, err := collector.New(memReader{readOnce(t, testkit.Fixture(t, "healthy-3m2w"))}, report.DefaultOptions(), nil, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	h := exp.Handler(collector.HandlerOpts{MaxTimeout: time.Minute, Gatherer: ownMetrics()})
	for _, tt := range []struct {
		accept, encoding string
		wantType         expfmt.FormatType
		wantEncoding     string
	}{
		{"", "", expfmt.TypeTextPlain, ""},
		{"", "gzip", expfmt.TypeTextPlain, "gzip"},
		{"", "gzip;q=0, identity", expfmt.TypeTextPlain, ""},
		{"", "*", expfmt.TypeTextPlain, "identity"}, // the client library's choice: the first offer
		{"", "br", expfmt.TypeTextPlain, ""},
		{string(expfmt.NewFormat(expfmt.TypeProtoDelim)), "gzip", expfmt.TypeProtoDelim, "gzip"},
	} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if tt.accept != "" {
			req.Header.Set("Accept", tt.accept)
		}
		if tt.encoding != "" {
			req.Header.Set("Accept-Encoding", tt.encoding)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header()
		if ft := expfmt.Format(got.Get("Content-Type")).FormatType(); ft != tt.wantType || got.Get("Content-Encoding") != tt.wantEncoding && !(tt.wantEncoding == "identity" && got.Get("Content-Encoding") == "") {
			t.Errorf("Accept %q, Accept-Encoding %q: %s, encoding %q", tt.accept, tt.encoding, got.Get("Content-Type"), got.Get("Content-Encoding"))
		}
		if vary := got.Values("Vary"); len(vary) != 2 {
			t.Errorf("Vary: %q, want Accept and Accept-Encoding", vary)
		}
	}
}
