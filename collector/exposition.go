package collector

import (
	"bufio"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// The text writer serves /metrics in the text format without the client
// library's registry. A large swarm has tens of thousands of series; a
// registry per scrape makes a const metric, then a protobuf message, per
// series, hashes each to detect duplicates, sorts them, and encodes them
// again as text: that took longer than reading and decoding the swarm
// itself. The text writer keeps each series as its label values and value,
// in slices reused from scrape to scrape, sorts them as the registry
// does, and formats the same bytes the registry and expfmt would write.
// TestTextMatchesTheClientLibrary holds it to that.

// textScrape holds the series of one scrape by family until they are
// written.
type textScrape struct {
	sets []seriesSet // by family id
	work []int       // scratch: family ids, the largest first
}

// seriesSet holds the series of one family.
type seriesSet struct {
	values []float64
	// labels holds the label values of every series, len(family.labels)
	// per series, in the family's text order (family.order).
	labels []string
	order  []int32 // scratch: the series in the order written
	text   []byte  // the family formatted
}

func (t *textScrape) add(f *family, v float64, labelValues []string) {
	s := &t.sets[f.id]
	s.values = append(s.values, v)
	for _, i := range f.order {
		s.labels = append(s.labels, labelValues[i])
	}
}

// reset empties the scrape for reuse. The label values are cleared so that
// a kept scrape does not keep the last report's strings alive.
func (t *textScrape) reset() {
	for i := range t.sets {
		s := &t.sets[i]
		clear(s.labels)
		s.values, s.labels, s.text = s.values[:0], s.labels[:0], s.text[:0]
	}
}

// byName lists the families sorted by name, the order of the exposition.
var byName []*family

func init() {
	byName = slices.Clone(families)
	slices.SortFunc(byName, func(a, b *family) int { return strings.Compare(a.name, b.name) })
}

// write writes the scrape's formatted families merged, by name, with the
// families gathered from the exporter's own registry, which enc encodes
// into w. The two never share a name.
func (t *textScrape) write(w *bufio.Writer, own []*dto.MetricFamily, enc expfmt.Encoder) error {
	i := 0
	for _, mf := range own {
		for ; i < len(byName) && byName[i].name < mf.GetName(); i++ {
			w.Write(t.sets[byName[i].id].text)
		}
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	for ; i < len(byName); i++ {
		w.Write(t.sets[byName[i].id].text)
	}
	return w.Flush()
}

// format formats every family into its text, on as many goroutines as may
// run at once, the largest families first: sorting and formatting tens of
// thousands of series was most of the exposition's time, and the read of
// the swarm, on which the other cores waited, is over.
func (t *textScrape) format() {
	t.work = t.work[:0]
	for id := range t.sets {
		t.work = append(t.work, id)
	}
	slices.SortFunc(t.work, func(a, b int) int { return len(t.sets[b].values) - len(t.sets[a].values) })
	var next atomic.Int32
	format := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(t.work) {
				return
			}
			id := t.work[i]
			t.sets[id].format(families[id])
		}
	}
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) - 1 {
		wg.Go(format)
	}
	format()
	wg.Wait()
}

// format formats the family as expfmt.MetricFamilyToText does, its series
// sorted as the registry sorts them: by label values, taken in the order
// of the label names.
func (s *seriesSet) format(f *family) {
	b := s.text[:0]
	if len(s.values) == 0 {
		// The registry leaves out a family without series.
		s.text = b
		return
	}
	b = append(b, f.header...)
	k := len(f.labels)
	s.order = s.order[:0]
	for i := range s.values {
		s.order = append(s.order, int32(i))
	}
	if k > 0 {
		slices.SortFunc(s.order, func(a, b int32) int {
			la, lb := s.labels[int(a)*k:int(a)*k+k], s.labels[int(b)*k:int(b)*k+k]
			for i := range la {
				if c := strings.Compare(la[i], lb[i]); c != 0 {
					return c
				}
			}
			return 0
		})
	}
	for _, i := range s.order {
		b = append(b, f.name...)
		for j, v := range s.labels[int(i)*k : int(i)*k+k] {
			if j == 0 {
				b = append(b, '{')
			} else {
				b = append(b, ',')
			}
			b = append(b, f.labels[f.order[j]]...)
			b = append(b, `="`...)
			b = appendEscaped(b, v)
			b = append(b, '"')
		}
		if k > 0 {
			b = append(b, '}')
		}
		b = append(b, ' ')
		b = appendFloat(b, s.values[i])
		b = append(b, '\n')
	}
	s.text = b
}

// header returns the HELP and TYPE lines of a family, as expfmt writes them:
// its help text with backslashes and new lines escaped.
func header(name, help string, typ prometheus.ValueType) []byte {
	help = strings.NewReplacer("\\", `\\`, "\n", `\n`).Replace(help)
	t := "gauge"
	if typ == prometheus.CounterValue {
		t = "counter"
	}
	return []byte("# HELP " + name + " " + help + "\n# TYPE " + name + " " + t + "\n")
}

// appendEscaped appends a label value as expfmt writes it: backslashes,
// new lines and double quotes escaped.
func appendEscaped(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		case '"':
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat appends a value as expfmt formats it.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case f == 1:
		return append(b, '1')
	case f == 0:
		return append(b, '0')
	case f == -1:
		return append(b, "-1"...)
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, +1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// headerRecorder keeps the headers a handler sets and discards its body.
type headerRecorder struct{ h http.Header }

func (r *headerRecorder) Header() http.Header         { return r.h }
func (r *headerRecorder) WriteHeader(int)             {}
func (r *headerRecorder) Write(p []byte) (int, error) { return len(p), nil }
