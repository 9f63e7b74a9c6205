package report_test

import (
	"context"
	"slices"
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

// BenchmarkReplacements counts the task replacements of one read compared
// with the previous one: "steady" with no task replaced, "churn" with a
// tenth of the tasks replaced at every read. The report is built once,
// outside the measure.
func BenchmarkReplacements(b *testing.B) {
	for _, s := range []bench.Size{bench.S, bench.M} {
		snap := snapshot(b, s)
		churned := *snap
		churned.Tasks.List = slices.Clone(snap.Tasks.List)
		for i := range churned.Tasks.List {
			if i%10 == 0 {
				churned.Tasks.List[i].ID ^= 0x9e3779b97f4a7c15
			}
		}
		rep := report.Build(snap, report.DefaultOptions())
		for _, churn := range []bool{false, true} {
			name := s.Name + "/steady"
			if churn {
				name = s.Name + "/churn"
			}
			b.Run(name, func(b *testing.B) {
				r := report.NewReplacements()
				reads := []*swarm.Snapshot{snap, snap}
				if churn {
					reads[1] = &churned
				}
				at := snap.ReadAt
				n := 0
				r.Count(reads[0], rep) // the first read: nothing to compare with
				b.ReportAllocs()
				for b.Loop() {
					n++
					read := reads[n%2]
					at = at.Add(time.Second)
					read.ReadAt = at
					r.Count(read, rep)
				}
				var total uint64
				for i := range rep.Services {
					total += rep.Services[i].Replacements
				}
				if want := uint64(0); !churn && total != want {
					b.Fatalf("%d replacements without churn", total)
				}
				if churn && total < uint64(n)*uint64(len(snap.Tasks.List))/10 {
					b.Fatalf("%d replacements after %d reads with churn", total, n)
				}
			})
		}
	}
}
