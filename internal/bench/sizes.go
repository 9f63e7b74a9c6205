// Package bench holds the synthetic swarm sizes that the scale benchmarks,
// the regression check and the swarmbench command share, so that every
// figure in docs/benchmarks.md refers to the same swarms.
package bench

import (
	"fmt"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
)

// Size is one synthetic swarm: Services replicated services of Replicas
// tasks each plus Global global services, on Managers+Workers nodes, with
// History old tasks per task slot (desired state shutdown, kept by the
// daemon but never fetched by the exporter).
type Size struct {
	Name     string
	Managers int
	Workers  int
	Services int
	Replicas int
	Global   int
	History  int
}

// Nodes returns the number of nodes.
func (s Size) Nodes() int { return s.Managers + s.Workers }

// Tasks returns the number of current tasks (what the exporter fetches).
func (s Size) Tasks() int { return s.Services*s.Replicas + s.Global*s.Nodes() }

// SynthOptions returns the options to generate the size with fakedocker.Synth.
func (s Size) SynthOptions() fakedocker.SynthOptions {
	return fakedocker.SynthOptions{
		Managers: s.Managers, Workers: s.Workers,
		Services: s.Services, Replicas: s.Replicas,
		GlobalServices: s.Global, HistoryPerSlot: s.History,
	}
}

func (s Size) String() string {
	return fmt.Sprintf("%s (%d nodes, %d services, %d tasks)", s.Name, s.Nodes(), s.Services+s.Global, s.Tasks())
}

// The sizes of the scale targets: 10 replicas per service, 20 global services and 4
// history tasks per slot, on 10 to 1000 nodes with 50 to 10000 services.
// "wide" and "tall" keep one dimension small and the other large: their
// cost follows their bytes, not nodes × services. "single" is m with one
// replica per service: its service list is a large part of a read, where
// m's is a small one.
var (
	XS     = Size{Name: "xs", Managers: 3, Workers: 7, Services: 50, Replicas: 10, Global: 20, History: 4}
	S      = Size{Name: "s", Managers: 3, Workers: 97, Services: 500, Replicas: 10, Global: 20, History: 4}
	M      = Size{Name: "m", Managers: 5, Workers: 495, Services: 5000, Replicas: 10, Global: 20, History: 4}
	L      = Size{Name: "l", Managers: 5, Workers: 995, Services: 10000, Replicas: 10, Global: 20, History: 4}
	Wide   = Size{Name: "wide", Managers: 5, Workers: 995, Services: 50, Replicas: 10, Global: 20, History: 4}
	Tall   = Size{Name: "tall", Managers: 3, Workers: 7, Services: 10000, Replicas: 10, Global: 20, History: 4}
	Single = Size{Name: "single", Managers: 5, Workers: 495, Services: 5000, Replicas: 1, Global: 20, History: 4}
	Sizes  = []Size{XS, S, M, L, Wide, Tall, Single}
)

// Target is the size the scale targets apply to (docs/benchmarks.md).
var Target = M

// Lookup returns the size of that name.
func Lookup(name string) (Size, bool) {
	for _, s := range Sizes {
		if s.Name == name {
			return s, true
		}
	}
	return Size{}, false
}

// TemplateDir is the captured scenario every synthetic swarm is made from.
func TemplateDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "docker", "healthy-3m2w")
}

var (
	mu       sync.Mutex
	fixtures = map[Size]*fakedocker.Fixture{}
)

// Fixture returns the synthetic swarm of that size, generated once per
// process: benchmarks of several packages' sizes share nothing else.
func Fixture(s Size) (*fakedocker.Fixture, error) {
	mu.Lock()
	defer mu.Unlock()
	if f, ok := fixtures[s]; ok {
		return f, nil
	}
	template, err := fakedocker.LoadFixture(TemplateDir())
	if err != nil {
		return nil, err
	}
	f, err := fakedocker.Synth(template, s.SynthOptions())
	if err != nil {
		return nil, err
	}
	fixtures[s] = f
	return f, nil
}
