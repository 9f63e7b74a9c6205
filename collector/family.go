package collector

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// family is one metric family, a gauge or a counter. Every series is
// emitted through an
// emitter, which hands it either to the client library (Collect: the
// registry, testutil, the protobuf format) or to the text writer of the
// /metrics handler, so both renderings come from the same code.
type family struct {
	id     int // index into families
	typ    prometheus.ValueType
	desc   *prometheus.Desc
	name   string
	labels []string // variable labels, in the order their values are given
	// order lists the indices of labels sorted by name: the order in which
	// the text format writes them and the client library sorts series.
	order  []int
	header []byte // the HELP and TYPE lines of the text format
}

// families are all the families, by id.
var families []*family

// newFamily returns a gauge family.
func newFamily(name, help string, labels ...string) *family {
	return newTypedFamily(prometheus.GaugeValue, name, help, labels...)
}

// newCounterFamily returns a counter family.
func newCounterFamily(name, help string, labels ...string) *family {
	return newTypedFamily(prometheus.CounterValue, name, help, labels...)
}

func newTypedFamily(typ prometheus.ValueType, name, help string, labels ...string) *family {
	f := &family{
		id:     len(families),
		typ:    typ,
		desc:   prometheus.NewDesc(name, help, labels, nil),
		name:   name,
		labels: labels,
		order:  make([]int, len(labels)),
		header: header(name, help, typ),
	}
	for i := range f.order {
		f.order[i] = i
	}
	slices.SortFunc(f.order, func(a, b int) int {
		switch {
		case labels[a] < labels[b]:
			return -1
		case labels[a] > labels[b]:
			return 1
		}
		return 0
	})
	families = append(families, f)
	return f
}

// emitter receives the series of one scrape: exactly one of ch and text is set.
type emitter struct {
	ch   chan<- prometheus.Metric
	text *textScrape
}

// gauge emits one series of f with the label values in f's label order.
// Counters are emitted the same way: the family says its type.
func (e *emitter) gauge(f *family, v float64, labelValues ...string) {
	if e.text != nil {
		e.text.add(f, v, labelValues)
		return
	}
	// The client library keeps the values it is given: a copy lets the
	// callers' variadic slices stay on the stack.
	e.ch <- prometheus.MustNewConstMetric(f.desc, f.typ, v, slices.Clone(labelValues)...)
}
