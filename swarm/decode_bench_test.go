package swarm

import (
	"bytes"
	"testing"

	"github.com/swarm-exporter/swarm_exporter/internal/bench"
)

// The decoding benchmarks decode responses of a synthetic swarm from
// memory: decoding alone, without HTTP. b.SetBytes makes the MB/s column
// the decoding throughput. Run them with -bench Decode -benchmem.

func benchFixture(b *testing.B, s bench.Size, endpoint string) []byte {
	b.Helper()
	f, err := bench.Fixture(s)
	if err != nil {
		b.Fatal(err)
	}
	return f.Responses[endpoint].Body
}

func BenchmarkDecodeTasks(b *testing.B) {
	for _, s := range []bench.Size{bench.S, bench.M} {
		body := benchFixture(b, s, "tasks")
		b.Run(s.Name, func(b *testing.B) {
			var dec TasksDecoder
			var ts Tasks
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := dec.Decode(bytes.NewReader(body), &ts); err != nil {
					b.Fatal(err)
				}
			}
			if len(ts.List) != s.Tasks() {
				b.Fatalf("%d tasks, want %d", len(ts.List), s.Tasks())
			}
		})
	}
}

// BenchmarkDecodeServices includes "single", where the service list is a
// large part of a read (docs/benchmarks.md, "The service list").
func BenchmarkDecodeServices(b *testing.B) {
	for _, s := range []bench.Size{bench.S, bench.M, bench.Single} {
		body := benchFixture(b, s, "services")
		b.Run(s.Name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeServices(bytes.NewReader(body)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeNodes(b *testing.B) {
	for _, s := range []bench.Size{bench.S, bench.M} {
		body := benchFixture(b, s, "nodes")
		b.Run(s.Name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeNodes(bytes.NewReader(body)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
