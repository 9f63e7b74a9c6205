package collector

import (
	"bufio"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

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
// does, and writes the same bytes the registry and expfmt would write.
// TestTextMatchesTheClientLibrary holds it to that.

// textScrape holds the series of one scrape by family until they are
// written.
type textScrape struct {
	sets  []seriesSet // by family id
	order []int32     // scratch: the series of a family in the order written
	num   []byte      // scratch: a formatted value
}

// seriesSet holds the series of one family.
type seriesSet struct {
	values []float64
	// labels holds the label values of every series, len(family.labels)
	// per series, in the family's text order (family.order).
	labels []string
}

var textScrapes = sync.Pool{New: func() any { return &textScrape{sets: make([]seriesSet, len(families))} }}

func (t *textScrape) add(f *family, v float64, labelValues []string) {
	s := &t.sets[f.id]
	s.values = append(s.values, v)
	for _, i := range f.order {
		s.labels = append(s.labels, labelValues[i])
	}
}

// release empties the scrape for reuse. The label values are cleared so that
// a pooled scrape does not keep the last report's strings alive.
func (t *textScrape) release() {
	for i := range t.sets {
		s := &t.sets[i]
		clear(s.labels)
		s.values, s.labels = s.values[:0], s.labels[:0]
	}
	textScrapes.Put(t)
}

// byName lists the families sorted by name, the order of the exposition.
var byName []*family

func init() {
	byName = slices.Clone(families)
	slices.SortFunc(byName, func(a, b *family) int { return strings.Compare(a.name, b.name) })
}

// write writes the scrape's families merged, by name, with the families
// gathered from the exporter's own registry, which enc encodes into w. The
// two never share a name.
func (t *textScrape) write(w *bufio.Writer, own []*dto.MetricFamily, enc expfmt.Encoder) error {
	i := 0
	for _, mf := range own {
		for ; i < len(byName) && byName[i].name < mf.GetName(); i++ {
			t.writeFamily(w, byName[i])
		}
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	for ; i < len(byName); i++ {
		t.writeFamily(w, byName[i])
	}
	return w.Flush()
}

// writeFamily writes one family as expfmt.MetricFamilyToText does, its series
// sorted as the registry sorts them: by label values, taken in the order of
// the label names. Write errors stay in w until it is flushed.
func (t *textScrape) writeFamily(w *bufio.Writer, f *family) {
	s := &t.sets[f.id]
	if len(s.values) == 0 {
		// The registry leaves out a family without series.
		return
	}
	w.WriteString("# HELP ")
	w.WriteString(f.name)
	w.WriteByte(' ')
	helpEscaper.WriteString(w, f.help)
	w.WriteString("\n# TYPE ")
	w.WriteString(f.name)
	w.WriteString(" gauge\n")

	k := len(f.labels)
	t.order = t.order[:0]
	for i := range s.values {
		t.order = append(t.order, int32(i))
	}
	if k > 0 {
		slices.SortFunc(t.order, func(a, b int32) int {
			la, lb := s.labels[int(a)*k:int(a)*k+k], s.labels[int(b)*k:int(b)*k+k]
			for i := range la {
				if c := strings.Compare(la[i], lb[i]); c != 0 {
					return c
				}
			}
			return 0
		})
	}
	for _, i := range t.order {
		w.WriteString(f.name)
		for j, v := range s.labels[int(i)*k : int(i)*k+k] {
			if j == 0 {
				w.WriteByte('{')
			} else {
				w.WriteByte(',')
			}
			w.WriteString(f.labels[f.order[j]])
			w.WriteString(`="`)
			if needsEscape(v) {
				labelEscaper.WriteString(w, v)
			} else {
				w.WriteString(v)
			}
			w.WriteByte('"')
		}
		if k > 0 {
			w.WriteByte('}')
		}
		w.WriteByte(' ')
		t.writeFloat(w, s.values[i])
		w.WriteByte('\n')
	}
}

// needsEscape reports whether a label value has a byte to escape. It is
// asked of every label value: a loop is cheaper than strings.ContainsAny,
// which builds its set of bytes on every call.
func needsEscape(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\\' || c == '\n' || c == '"' {
			return true
		}
	}
	return false
}

// The escapers of expfmt: help text escapes backslashes and new lines,
// label values double quotes too.
var (
	helpEscaper  = strings.NewReplacer("\\", `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer("\\", `\\`, "\n", `\n`, "\"", `\"`)
)

// writeFloat formats a value as expfmt does.
func (t *textScrape) writeFloat(w *bufio.Writer, f float64) {
	switch {
	case f == 1:
		w.WriteByte('1')
	case f == 0:
		w.WriteByte('0')
	case f == -1:
		w.WriteString("-1")
	case math.IsNaN(f):
		w.WriteString("NaN")
	case math.IsInf(f, +1):
		w.WriteString("+Inf")
	case math.IsInf(f, -1):
		w.WriteString("-Inf")
	default:
		t.num = strconv.AppendFloat(t.num[:0], f, 'g', -1, 64)
		w.Write(t.num)
	}
}

// headerRecorder keeps the headers a handler sets and discards its body.
type headerRecorder struct{ h http.Header }

func (r *headerRecorder) Header() http.Header         { return r.h }
func (r *headerRecorder) WriteHeader(int)             {}
func (r *headerRecorder) Write(p []byte) (int, error) { return len(p), nil }
