// The reader's self-metrics: requests, their duration and bytes, reads and
// failed reads.

package swarm

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type readMetrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	bytes      *prometheus.CounterVec
	reads      prometheus.Counter
	readErrors *prometheus.CounterVec
	lastRead   prometheus.Gauge
	cacheHits  prometheus.Counter
	services   prometheus.Gauge
}

func newReadMetrics(reg prometheus.Registerer) *readMetrics {
	m := &readMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarm_exporter_docker_requests_total",
			Help: "Requests sent to the Docker Engine API, by endpoint and HTTP status code (\"error\" when no response came back).",
		}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "swarm_exporter_docker_request_duration_seconds",
			Help:    "Time from sending a Docker Engine API request to having decoded its whole response.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarm_exporter_docker_response_bytes_total",
			Help: "Bytes of response bodies received from the Docker Engine API.",
		}, []string{"endpoint"}),
		reads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarm_exporter_reads_total",
			Help: "Reads of the swarm; concurrent scrapes share one read.",
		}),
		readErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarm_exporter_read_errors_total",
			Help: "Reads of the swarm that failed, by reason.",
		}, []string{"reason"}),
		lastRead: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "swarm_exporter_last_read_timestamp_seconds",
			Help: "Unix time at which the last successful read of the swarm started.",
		}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarm_exporter_read_cache_hits_total",
			Help: "Scrapes (and status requests) answered with the snapshot of an earlier successful read, started less than --read.max-age before, instead of a new read.",
		}),
		services: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "swarm_exporter_last_read_fetched_services",
			Help: "1 when the scrapes report the services and tasks of the last successful read, 0 when that read left them out or found its manager not leading (--read.services=leader); a status request's reading of the services does not count.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.bytes, m.reads, m.readErrors, m.lastRead, m.cacheHits, m.services)
	}
	return m
}

func (m *readMetrics) observe(endpoint, code string, start time.Time, n int64) {
	m.requests.WithLabelValues(endpoint, code).Inc()
	m.duration.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	if n > 0 {
		m.bytes.WithLabelValues(endpoint).Add(float64(n))
	}
}
