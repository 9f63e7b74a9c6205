package collector

import (
	"bufio"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/swarm-exporter/swarm_exporter/report"
)

// HandlerOpts configures the /metrics handler.
type HandlerOpts struct {
	// MaxTimeout caps a scrape's deadline (--docker.timeout).
	MaxTimeout time.Duration
	// TimeoutOffset is taken off Prometheus's scrape timeout so that the
	// answer is on its way before Prometheus gives up (--web.timeout-offset).
	TimeoutOffset time.Duration
	// Gatherer holds the exporter's own metrics (Go, process, build info,
	// Docker requests); each scrape adds the swarm's.
	Gatherer prometheus.Gatherer
}

// Handler serves /metrics. Each request reads the swarm once, bounded by a
// deadline taken from Prometheus's X-Prometheus-Scrape-Timeout-Seconds
// header, as mysqld_exporter does.
//
// The text format, plain or gzip-compressed (what Prometheus asks for
// unless told to scrape protobuf), is written by the text writer
// (exposition.go). Any other answer (protobuf, another encoding, a name[]
// filter) comes from the client library's handler with a fresh registry
// holding the scrape.
func (e *Exporter) Handler(opts HandlerOpts) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), ScrapeTimeout(r, opts.MaxTimeout, opts.TimeoutOffset))
		defer cancel()
		// The client library's handler, asked with no metrics, answers with
		// the headers it would answer this request with: format and
		// encoding are negotiated exactly as it does.
		neg := &headerRecorder{h: http.Header{}}
		negotiator.ServeHTTP(neg, r)
		format := expfmt.Format(neg.h.Get("Content-Type"))
		encoding := neg.h.Get("Content-Encoding")
		if format.FormatType() == expfmt.TypeTextPlain && (encoding == "" || encoding == "gzip") &&
			(r.URL == nil || !r.URL.Query().Has("name[]")) {
			e.serveText(ctx, w, neg.h, format, opts.Gatherer)
			return
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(e.Scrape(ctx))
		promhttp.HandlerFor(prometheus.Gatherers{opts.Gatherer, reg}, promhttp.HandlerOpts{
			ErrorLog:      errorLogger{e},
			ErrorHandling: promhttp.ContinueOnError,
		}).ServeHTTP(w, r)
	})
}

// negotiator is the client library's handler with nothing to serve (see
// Handler).
var negotiator = promhttp.HandlerFor(prometheus.Gatherers{}, promhttp.HandlerOpts{})

// gzipWriters compress at gzip.BestSpeed, not at the default level the
// client library uses: a large swarm's exposition repeats its label names
// and values line after line, so the fastest level costs only a few more
// bytes for a fraction of the time (docs/benchmarks.md).
var (
	gzipWriters = sync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		return w
	}}
	bufWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}
)

// serveText answers in the text format with the negotiated headers. Like
// the client library's handler with prometheus.Gatherers{own, registry},
// it gathers the exporter's own metrics before it reads the swarm, and
// logs and goes on when that fails.
func (e *Exporter) serveText(ctx context.Context, w http.ResponseWriter, headers http.Header, format expfmt.Format, own prometheus.Gatherer) {
	var mfs []*dto.MetricFamily
	if own != nil {
		var err error
		if mfs, err = own.Gather(); err != nil {
			errorLogger{e}.Println("error gathering metrics:", err)
		}
	}
	t := e.render(ctx, e.Report(ctx))
	defer e.keep(t)

	for k, v := range headers {
		w.Header()[k] = v
	}
	var out io.Writer = w
	if headers.Get("Content-Encoding") == "gzip" {
		gz := gzipWriters.Get().(*gzip.Writer)
		gz.Reset(w)
		defer func() {
			gz.Close()
			gz.Reset(nil)
			gzipWriters.Put(gz)
		}()
		out = gz
	}
	bw := bufWriters.Get().(*bufio.Writer)
	bw.Reset(out)
	defer func() {
		bw.Reset(nil)
		bufWriters.Put(bw)
	}()
	if err := t.write(bw, mfs, expfmt.NewEncoder(bw, format)); err != nil {
		errorLogger{e}.Println("error encoding and sending metric family:", err)
	}
}

// render emits and formats a report's series, one scrape at a time: the
// formatting already runs on every core, and concurrent scrapes, which share
// one read, would otherwise each hold their exposition in memory at once.
// A scrape past its deadline does not wait for its turn.
func (e *Exporter) render(ctx context.Context, r *report.Report) *textScrape {
	select {
	case e.renderings <- struct{}{}:
		defer func() { <-e.renderings }()
	case <-ctx.Done():
	}
	var t *textScrape
	select {
	case t = <-e.texts:
	default:
		t = &textScrape{sets: make([]seriesSet, len(families))}
	}
	e.emit(r, &emitter{text: t})
	t.format()
	return t
}

// keep empties a written scrape and keeps it for the next one, unless one
// is kept already. Its buffers grow with the swarm: kept by the exporter,
// not in a sync.Pool, which the garbage collections of every scrape
// emptied, they are reused instead of made again each time.
func (e *Exporter) keep(t *textScrape) {
	t.reset()
	select {
	case e.texts <- t:
	default:
	}
}

// ScrapeTimeout returns how long a scrape may take: Prometheus's scrape
// timeout minus the offset, capped by max. Without the header, or when the
// offset leaves nothing, max applies.
func ScrapeTimeout(r *http.Request, max, offset time.Duration) time.Duration {
	v := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds")
	if v == "" {
		return max
	}
	seconds, err := strconv.ParseFloat(v, 64)
	if err != nil || seconds <= 0 {
		return max
	}
	t := time.Duration(seconds*float64(time.Second)) - offset
	if t <= 0 {
		// An offset larger than the timeout would fail every scrape; half
		// of Prometheus's timeout still answers before it gives up.
		t = time.Duration(seconds * float64(time.Second) / 2)
	}
	return min(t, max)
}

type errorLogger struct{ e *Exporter }

func (l errorLogger) Println(v ...any) {
	level.Error(l.e.logger).Log("msg", "serving metrics", "err", v)
}
