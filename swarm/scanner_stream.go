// The scanner and its input: a goroutine reads the body ahead of the
// parser into chunks reused across reads, and each element is parsed from
// one contiguous run of bytes.

package swarm

import "io"

// scanner reads a JSON array from a stream and parses it one element at a
// time, for the answers that grow with the swarm: the task list (see
// TasksDecoder) and the service list. It checks the whole grammar (a
// truncated or malformed body is an error, as with encoding/json) but finds
// the end of each string eight bytes at a time and looks only at the
// members it keeps; what it does not check is that the strings it skips and
// the member names hold no raw control character and are valid UTF-8:
// Docker's encoder never writes either, and the values it keeps are checked.
//
// A goroutine reads the body ahead of the parser, into a few chunks reused
// across calls, so that copying the bytes out of the kernel, a good part of
// the task list's time, overlaps parsing them (docs/benchmarks.md).
// Each element is parsed from one contiguous run of bytes: what is left of
// a chunk is copied into the room kept before the next one, and an element
// cut by the end of a chunk is parsed again once the next has arrived, so
// memory does not grow with the response.
type scanner struct {
	buf   []byte
	start int   // buf[start:end] holds the bytes not consumed yet
	end   int   //
	off   int64 // input offset of buf[0], for error messages
	eof   bool
	rerr  error // a read error, reported once the bytes before it are used

	chunks  [][]byte   // every chunk, each scanHeadroom bytes of room then scanChunk bytes to read into
	cur     []byte     // the chunk buf lies in; nil when it lies in spill
	spill   []byte     // an element longer than the room before a chunk
	filled  chan chunk // from the reading goroutine
	free    chan []byte
	stop    chan struct{}
	stopped chan struct{}

	scratch []byte
	stack   []byte // the open containers of a value being skipped
}

// chunk is a read: n bytes after the room of b.
type chunk struct {
	b   []byte
	n   int
	err error
}

const (
	// scanChunk is the size of a chunk, but for the first: large, for
	// few hand-overs between the goroutines (measured against smaller
	// ones in docs/benchmarks.md).
	scanChunk = 512 << 10
	// firstChunk is the size of the first chunk, all that a small swarm's
	// lists need.
	firstChunk = 64 << 10
	// scanHeadroom is the room before a chunk for what is left of the one
	// before: more than an element of either list takes.
	scanHeadroom = 16 << 10
	// scanChunks is the most chunks: the reading goroutine can be that
	// many minus one ahead of the parser.
	scanChunks = 3
	// minRead is the least a chunk holds but at the end of the body.
	minRead = 4 << 10
)

// read starts reading r ahead of the parser. The goroutine makes the
// chunks as it needs them, and owns s.chunks until it stops.
func (s *scanner) read(r io.Reader) {
	s.filled = make(chan chunk, scanChunks) // never full: there are no more chunks
	s.free = make(chan []byte, scanChunks)
	for _, c := range s.chunks {
		s.free <- c
	}
	s.stop, s.stopped = make(chan struct{}), make(chan struct{})
	go func(filled chan<- chunk, free chan []byte, stop <-chan struct{}, stopped chan<- struct{}) {
		defer close(stopped)
		for {
			var b []byte
			select {
			case b = <-free:
			case <-stop:
				return
			default:
				if len(s.chunks) < scanChunks {
					size := scanChunk
					if len(s.chunks) == 0 {
						size = firstChunk
					}
					b = make([]byte, scanHeadroom+size)
					s.chunks = append(s.chunks, b)
					break
				}
				select {
				case b = <-free:
				case <-stop:
					return
				}
			}
			n, err := io.ReadAtLeast(r, b[scanHeadroom:], minRead)
			filled <- chunk{b, n, err}
			if err != nil {
				return
			}
		}
	}(s.filled, s.free, s.stop, s.stopped)
}

// stopReading stops the reading goroutine and waits for it, so that the
// caller may read or close the body: it may be in the middle of a read.
func (s *scanner) stopReading() {
	close(s.stop)
	<-s.stopped
	s.buf, s.cur, s.rerr = nil, nil, nil
	s.filled, s.free = nil, nil
}

// fill takes the next chunk from the reading goroutine, with the bytes not
// consumed yet moved in front of it.
func (s *scanner) fill() error {
	if s.eof {
		return s.more()
	}
	left := s.buf[s.start:s.end]
	s.off += int64(s.start)
	c := <-s.filled
	if len(left) <= scanHeadroom {
		buf := c.b[scanHeadroom-len(left) : scanHeadroom+c.n]
		copy(buf, left)
		s.release()
		s.buf, s.cur = buf, c.b
	} else {
		// An element longer than the room before a chunk is gathered in
		// spill. It is parsed again from its start each time its bytes
		// run out: gathering at least as many more bytes as it has keeps
		// that linear.
		spill := append(s.spill[:0], left...) // left may lie in spill: append moves it
		for {
			spill = append(spill, c.b[scanHeadroom:scanHeadroom+c.n]...)
			s.free <- c.b
			if c.err != nil || len(spill) >= 2*len(left) {
				break
			}
			c = <-s.filled
		}
		s.release()
		s.spill, s.buf = spill, spill
	}
	s.start, s.end = 0, len(s.buf)
	if c.err != nil {
		s.eof = true
		if c.err != io.EOF && c.err != io.ErrUnexpectedEOF {
			s.rerr = c.err
		}
		if s.end == len(left) {
			return s.more()
		}
	}
	return nil
}

// release gives the chunk the parser was in back to the reading goroutine.
func (s *scanner) release() {
	if s.cur != nil {
		s.free <- s.cur
		s.cur = nil
	}
}
