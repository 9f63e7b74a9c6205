package collector

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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

// Handler serves /metrics. Each request gets a fresh registry holding one
// scrape, bounded by a deadline taken from Prometheus's
// X-Prometheus-Scrape-Timeout-Seconds header, as mysqld_exporter does.
func (e *Exporter) Handler(opts HandlerOpts) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), ScrapeTimeout(r, opts.MaxTimeout, opts.TimeoutOffset))
		defer cancel()
		reg := prometheus.NewRegistry()
		reg.MustRegister(e.Scrape(ctx))
		promhttp.HandlerFor(prometheus.Gatherers{opts.Gatherer, reg}, promhttp.HandlerOpts{
			ErrorLog:      errorLogger{e},
			ErrorHandling: promhttp.ContinueOnError,
		}).ServeHTTP(w, r)
	})
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
