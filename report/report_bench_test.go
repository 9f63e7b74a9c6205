package report_test

import (
	"context"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/bench"
	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
	"github.com/swarm-exporter/swarm_exporter/report"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

// snapshot reads a synthetic swarm once through the real reader.
func snapshot(b *testing.B, s bench.Size) *swarm.Snapshot {
	b.Helper()
	f, err := bench.Fixture(s)
	if err != nil {
		b.Fatal(err)
	}
	srv := fakedocker.New(f)
	defer srv.Close()
	r, err := swarm.NewReader(swarm.Config{Host: srv.Host, Timeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	snap := r.Read(context.Background())
	if snap.Err != nil {
		b.Fatal(snap.Err)
	}
	return snap
}

// BenchmarkBuild evaluates a snapshot alone: counts, global-service
// eligibility and statuses, without reading or emitting.
func BenchmarkBuild(b *testing.B) {
	for _, s := range []bench.Size{bench.S, bench.M} {
		snap := snapshot(b, s)
		b.Run(s.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := report.Build(snap, report.DefaultOptions()); len(r.Services) != s.Services+s.Global {
					b.Fatalf("%d services", len(r.Services))
				}
			}
		})
	}
}
