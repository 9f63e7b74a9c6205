package swarm

import (
	"io"
	"sync"
)

// scanners are the scanners DecodeServices reuses, as the reader reuses its
// own: a fresh one would allocate its chunks on every call.
var scanners = sync.Pool{New: func() any { return new(scanner) }}

// DecodeServices decodes a /services?status=true response, for the tests
// and benchmarks of the service decoder.
func DecodeServices(r io.Reader) ([]Service, error) {
	s := scanners.Get().(*scanner)
	defer scanners.Put(s)
	return decodeServices(s, r, 0)
}

// ReadsServices is Snapshot.readsServices, for the tests.
func (s *Snapshot) ReadsServices() bool { return s.readsServices() }

// TaskIDHash is taskIDHash, for the fuzz test's reference decoding.
func TaskIDHash(id string) uint64 { return taskIDHash([]byte(id)) }
