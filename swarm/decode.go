package swarm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/swarm-exporter/swarm_exporter/placement"
)

// decodeOptions: Docker's JSON is produced by Go's encoding/json, which
// never writes duplicate names; skipping that check saves memory on large
// lists. Invalid UTF-8 is tolerated rather than failing a whole read over one
// odd label.
var decodeOptions = json.JoinOptions(
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
)

// DecodeError says which response could not be decoded and where.
type DecodeError struct {
	Endpoint string
	Err      error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decoding the %s response: %v", e.Endpoint, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// DecodeInfo decodes a /info response.
func DecodeInfo(r io.Reader) (*Info, error) {
	var raw struct {
		Name          string
		ServerVersion string
		Swarm         struct {
			NodeID           string
			NodeAddr         string
			LocalNodeState   string
			ControlAvailable bool
			Error            string
			Nodes            int
			Managers         int
			Cluster          *struct{ ID string }
			RemoteManagers   []struct{}
		}
	}
	if err := json.UnmarshalRead(r, &raw, decodeOptions); err != nil {
		return nil, &DecodeError{Endpoint: "info", Err: err}
	}
	s := raw.Swarm
	info := &Info{
		Name:             raw.Name,
		ServerVersion:    raw.ServerVersion,
		NodeID:           s.NodeID,
		NodeAddr:         s.NodeAddr,
		LocalNodeState:   parseLocalNodeState(s.LocalNodeState),
		ControlAvailable: s.ControlAvailable,
		Error:            s.Error,
		Nodes:            max(s.Nodes, 0),
		Managers:         max(s.Managers, 0),
		RemoteManagers:   len(s.RemoteManagers),
	}
	if s.LocalNodeState == "" {
		// A daemon that was never in a swarm may leave the field out.
		info.LocalNodeState = LocalInactive
	}
	if s.Cluster != nil {
		info.ClusterID = s.Cluster.ID
	}
	return info, nil
}

type rawNode struct {
	ID   string
	Spec struct {
		Labels       map[string]string
		Availability string
	}
	Description struct {
		Hostname string
		Platform struct {
			Architecture string
			OS           string
		}
		Engine struct {
			EngineVersion string
			Labels        map[string]string
		}
	}
	Status struct {
		State string
		Addr  string
	}
	ManagerStatus *struct {
		Leader       bool
		Reachability string
		Addr         string
	}
}

// DecodeNodes decodes a /nodes response, one node at a time.
func DecodeNodes(r io.Reader) ([]Node, error) {
	var nodes []Node
	err := decodeArray(r, func(dec *jsontext.Decoder) error {
		var raw rawNode
		if err := json.UnmarshalDecode(dec, &raw, decodeOptions); err != nil {
			return err
		}
		d := &raw.Description
		n := Node{
			ID:            raw.ID,
			Hostname:      d.Hostname,
			EngineVersion: d.Engine.EngineVersion,
			Addr:          raw.Status.Addr,
			OS:            d.Platform.OS,
			Architecture:  d.Platform.Architecture,
			State:         parseNodeState([]byte(raw.Status.State)),
			Availability:  parseAvailability([]byte(raw.Spec.Availability)),
			Labels:        raw.Spec.Labels,
			EngineLabels:  d.Engine.Labels,
		}
		if m := raw.ManagerStatus; m != nil {
			n.Manager = true
			n.Leader = m.Leader
			n.Reachability = parseReachability([]byte(m.Reachability))
			n.ManagerAddr = m.Addr
		}
		nodes = append(nodes, n)
		return nil
	})
	if err != nil {
		return nil, &DecodeError{Endpoint: "nodes", Err: err}
	}
	return nodes, nil
}

// rawService is a service as its JSON says, before Docker's defaults.
type rawService struct {
	ID            string
	Spec          serviceSpec
	UpdateStatus  opt[updateStatus]
	ServiceStatus opt[serviceStatus]
}

type serviceSpec struct {
	Name         string
	Stack        string // the StackLabel label
	TaskTemplate taskTemplate
	Mode         serviceMode
}

type taskTemplate struct {
	ContainerSpec opt[struct{ Image string }]
	Placement     opt[servicePlacement]
}

type servicePlacement struct {
	Constraints []string
	Platforms   []placement.Platform
}

type serviceMode struct {
	Replicated    opt[struct{ Replicas opt[uint64] }]
	Global        opt[struct{}]
	ReplicatedJob opt[struct{ MaxConcurrent, TotalCompletions opt[uint64] }]
	GlobalJob     opt[struct{}]
}

type updateStatus struct {
	State     string
	StartedAt opt[time.Time]
}

type serviceStatus struct {
	RunningTasks, DesiredTasks, CompletedTasks uint64
}

// opt is a member that may be missing or null: what json v2 decodes into a
// nil pointer, without allocating one per service.
type opt[T any] struct {
	ok bool
	v  T
}

func (o *opt[T]) reset() { *o = opt[T]{} }
func (o *opt[T]) set()   { o.ok = true } // a member that comes twice merges into the first

// StackLabel is the label `docker stack deploy` puts on a stack's services.
const StackLabel = "com.docker.stack.namespace"

// DecodeServices decodes a /services?status=true response, one service at a
// time. It uses the scanner of the task list (see TasksDecoder): at
// thousands of services, decoding them into structs with json v2 kept a
// second core busy for most of the time the task list took.
func DecodeServices(r io.Reader) ([]Service, error) {
	s := scanners.Get().(*scanner)
	defer scanners.Put(s)
	return decodeServices(s, r, 0)
}

// decodeServices decodes a service list with s, into a list with room for n
// services.
func decodeServices(s *scanner, r io.Reader, n int) ([]Service, error) {
	var services []Service
	if n > 0 {
		services = make([]Service, 0, n)
	}
	var raw rawService
	err := s.list(r, func(b []byte, i int) (int, error) {
		raw = rawService{}
		next, err := s.service(b, i, &raw)
		if err == nil {
			services = append(services, raw.service())
		}
		return next, err
	})
	if err != nil {
		return nil, &DecodeError{Endpoint: "services", Err: err}
	}
	if len(services) == 0 {
		return nil, nil
	}
	return services, nil
}

// service applies Docker's defaults.
func (raw *rawService) service() Service {
	spec := &raw.Spec
	s := Service{
		ID:    raw.ID,
		Name:  spec.Name,
		Stack: spec.Stack,
	}
	if cs := spec.TaskTemplate.ContainerSpec; cs.ok {
		s.Image = stripDigest(cs.v.Image)
	}
	if p := spec.TaskTemplate.Placement; p.ok {
		s.Constraints = p.v.Constraints
		s.Platforms = p.v.Platforms
	}
	m := &spec.Mode
	switch {
	case m.Global.ok:
		s.Mode = Global
	case m.ReplicatedJob.ok:
		// Docker's defaults: one task at a time, as many completions
		// as MaxConcurrent.
		s.Mode = ReplicatedJob
		s.MaxConcurrent = 1
		if j := &m.ReplicatedJob.v; j.MaxConcurrent.ok {
			s.MaxConcurrent = j.MaxConcurrent.v
		}
		s.Replicas = s.MaxConcurrent
		if j := &m.ReplicatedJob.v; j.TotalCompletions.ok {
			s.Replicas = j.TotalCompletions.v
		}
	case m.GlobalJob.ok:
		s.Mode = GlobalJob
	default:
		// Replicated, also when the mode is missing: Docker's default.
		s.Mode = Replicated
		s.Replicas = 1
		if r := &m.Replicated; r.ok && r.v.Replicas.ok {
			s.Replicas = r.v.Replicas.v
		}
	}
	if u := &raw.UpdateStatus; u.ok {
		s.UpdateState = parseUpdateState(u.v.State)
		if u.v.StartedAt.ok {
			s.UpdateStartedAt = u.v.StartedAt.v
		}
	}
	if st := &raw.ServiceStatus; st.ok {
		s.Reported = ReportedStatus{Running: st.v.RunningTasks, Desired: st.v.DesiredTasks, Completed: st.v.CompletedTasks}
	}
	return s
}

// The parsing of a service follows json v2's decoding into pointers and
// structs: members it does not know are skipped, a value of the wrong type
// is an error, null sets a value to its zero value (nil for a pointer), and
// a member that comes twice merges into the object of the first and
// replaces anything else.

func (s *scanner) service(b []byte, i int, raw *rawService) (int, error) {
	return s.object(b, i, func() { *raw = rawService{} }, nil, func(key, b []byte, i int) (int, error) {
		switch string(key) {
		case "ID":
			return s.text(b, i, &raw.ID)
		case "Spec":
			return s.serviceSpec(b, i, &raw.Spec)
		case "UpdateStatus":
			u := &raw.UpdateStatus
			return s.object(b, i, u.reset, u.set, func(key, b []byte, i int) (int, error) {
				switch string(key) {
				case "State":
					return s.text(b, i, &u.v.State)
				case "StartedAt":
					return s.time(b, i, &u.v.StartedAt)
				}
				return s.skip(b, i)
			})
		case "ServiceStatus":
			st := &raw.ServiceStatus
			return s.object(b, i, st.reset, st.set, func(key, b []byte, i int) (int, error) {
				switch string(key) {
				case "RunningTasks":
					return s.uint(b, i, &st.v.RunningTasks)
				case "DesiredTasks":
					return s.uint(b, i, &st.v.DesiredTasks)
				case "CompletedTasks":
					return s.uint(b, i, &st.v.CompletedTasks)
				}
				return s.skip(b, i)
			})
		}
		return s.skip(b, i)
	})
}

func (s *scanner) serviceSpec(b []byte, i int, spec *serviceSpec) (int, error) {
	return s.object(b, i, func() { *spec = serviceSpec{} }, nil, func(key, b []byte, i int) (int, error) {
		switch string(key) {
		case "Name":
			return s.text(b, i, &spec.Name)
		case "Labels":
			// A map of strings, of which one is kept.
			return s.object(b, i, func() { spec.Stack = "" }, nil, func(key, b []byte, i int) (int, error) {
				if string(key) == StackLabel {
					return s.text(b, i, &spec.Stack)
				}
				_, next, err := s.str(b, i)
				return next, err
			})
		case "TaskTemplate":
			return s.taskTemplate(b, i, &spec.TaskTemplate)
		case "Mode":
			return s.serviceMode(b, i, &spec.Mode)
		}
		return s.skip(b, i)
	})
}

func (s *scanner) taskTemplate(b []byte, i int, tt *taskTemplate) (int, error) {
	return s.object(b, i, func() { *tt = taskTemplate{} }, nil, func(key, b []byte, i int) (int, error) {
		switch string(key) {
		case "ContainerSpec":
			cs := &tt.ContainerSpec
			return s.object(b, i, cs.reset, cs.set, func(key, b []byte, i int) (int, error) {
				if string(key) == "Image" {
					return s.text(b, i, &cs.v.Image)
				}
				return s.skip(b, i)
			})
		case "Placement":
			p := &tt.Placement
			return s.object(b, i, p.reset, p.set, func(key, b []byte, i int) (int, error) {
				switch string(key) {
				case "Constraints":
					c := &p.v.Constraints
					return s.array(b, i, func() { *c = nil }, func() { *c = []string{} }, func(b []byte, i int) (int, error) {
						*c = append(*c, "")
						return s.text(b, i, &(*c)[len(*c)-1])
					})
				case "Platforms":
					pl := &p.v.Platforms
					return s.array(b, i, func() { *pl = nil }, func() { *pl = []placement.Platform{} }, func(b []byte, i int) (int, error) {
						*pl = append(*pl, placement.Platform{})
						e := &(*pl)[len(*pl)-1]
						return s.object(b, i, nil, nil, func(key, b []byte, i int) (int, error) {
							switch string(key) {
							case "OS":
								return s.text(b, i, &e.OS)
							case "Architecture":
								return s.text(b, i, &e.Architecture)
							}
							return s.skip(b, i)
						})
					})
				}
				return s.skip(b, i)
			})
		}
		return s.skip(b, i)
	})
}

func (s *scanner) serviceMode(b []byte, i int, m *serviceMode) (int, error) {
	return s.object(b, i, func() { *m = serviceMode{} }, nil, func(key, b []byte, i int) (int, error) {
		switch string(key) {
		case "Replicated":
			r := &m.Replicated
			return s.object(b, i, r.reset, r.set, func(key, b []byte, i int) (int, error) {
				if string(key) == "Replicas" {
					return s.optUint(b, i, &r.v.Replicas)
				}
				return s.skip(b, i)
			})
		case "ReplicatedJob":
			j := &m.ReplicatedJob
			return s.object(b, i, j.reset, j.set, func(key, b []byte, i int) (int, error) {
				switch string(key) {
				case "MaxConcurrent":
					return s.optUint(b, i, &j.v.MaxConcurrent)
				case "TotalCompletions":
					return s.optUint(b, i, &j.v.TotalCompletions)
				}
				return s.skip(b, i)
			})
		case "Global":
			return s.object(b, i, m.Global.reset, m.Global.set, s.skipMember)
		case "GlobalJob":
			return s.object(b, i, m.GlobalJob.reset, m.GlobalJob.set, s.skipMember)
		}
		return s.skip(b, i)
	})
}

func (s *scanner) skipMember(_, b []byte, i int) (int, error) { return s.skip(b, i) }

// text parses a string or null at b[i] into *dst. Plain printable ASCII,
// nearly every string Docker sends, is copied as it is; anything else is
// handed to json v2, so that escapes, invalid UTF-8 and control characters
// are treated as it treats them.
func (s *scanner) text(b []byte, i int, dst *string) (int, error) {
	switch {
	case i >= len(b):
		return i, s.more()
	case b[i] == 'n':
		*dst = ""
		return s.literal(b, i)
	case b[i] != '"':
		return i, s.wrongTypeAt(b, i, "a string")
	}
	end, escaped, err := s.stringEnd(b, i)
	if err != nil {
		return end, err
	}
	if v := b[i+1 : end-1]; !escaped && printableASCII(v) {
		*dst = string(v)
		return end, nil
	}
	var v string
	err = json.Unmarshal(b[i:end], &v, decodeOptions)
	*dst = v
	return end, err
}

func printableASCII(b []byte) bool {
	for _, c := range b {
		if c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

// uint parses a number or null (0) at b[i] into *dst: an integer in the
// range of uint64, as json v2 requires.
func (s *scanner) uint(b []byte, i int, dst *uint64) (int, error) {
	switch {
	case i >= len(b):
		return i, s.more()
	case b[i] == 'n':
		*dst = 0
		return s.literal(b, i)
	case b[i] != '-' && (b[i] < '0' || b[i] > '9'):
		return i, s.wrongTypeAt(b, i, "a number")
	}
	end, err := s.number(b, i)
	if err != nil {
		return end, err
	}
	var n uint64
	for _, c := range b[i:end] {
		d := uint64(c - '0')
		if d > 9 || n > (math.MaxUint64-d)/10 {
			return end, fmt.Errorf("%w at offset %d: %s is not an unsigned 64-bit integer", errWrongType, s.off+int64(i), b[i:end])
		}
		n = n*10 + d
	}
	*dst = n
	return end, nil
}

// optUint parses a number or null (missing) at b[i] into *dst.
func (s *scanner) optUint(b []byte, i int, dst *opt[uint64]) (int, error) {
	if i < len(b) && b[i] == 'n' {
		dst.reset()
		return s.literal(b, i)
	}
	dst.set()
	return s.uint(b, i, &dst.v)
}

// time parses an RFC 3339 time or null (missing) at b[i] into *dst with
// json v2, whose checks of the format it keeps: only updated services
// have one.
func (s *scanner) time(b []byte, i int, dst *opt[time.Time]) (int, error) {
	if i < len(b) && b[i] == 'n' {
		dst.reset()
		return s.literal(b, i)
	}
	end, err := s.skip(b, i)
	if err != nil {
		return end, err
	}
	var t time.Time
	if err := json.Unmarshal(b[i:end], &t, decodeOptions); err != nil {
		return end, err
	}
	dst.ok, dst.v = true, t
	return end, nil
}

// stripDigest drops the "@sha256:…" that Docker pins to an image reference:
// the tag is what operators recognise, as `docker service ls` shows it.
func stripDigest(image string) string {
	if i := strings.LastIndexByte(image, '@'); i >= 0 {
		return image[:i]
	}
	return image
}

// decodeArray streams a JSON array, calling each for every element; a null
// body counts as an empty array.
func decodeArray(r io.Reader, each func(*jsontext.Decoder) error) error {
	dec := jsontext.NewDecoder(r, decodeOptions)
	switch dec.PeekKind() {
	case 'n':
		_, err := dec.ReadToken()
		return err
	case '[':
	default:
		// Read the token to surface the I/O or syntax error, if any.
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		return fmt.Errorf("expected a JSON array, got %v", tok.Kind())
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	for dec.PeekKind() != ']' {
		if err := each(dec); err != nil {
			return err
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	return nil
}

// TasksDecoder decodes /tasks responses, keeping four fields per task. At
// tens of thousands of tasks the task list is most of the bytes of a read;
// decoding it with json v2's token walker took two thirds of a scrape's time
// at 500 nodes, the scanner takes half as long (docs/benchmarks.md). A
// TasksDecoder reuses its buffers across calls and is not safe for
// concurrent use.
type TasksDecoder struct {
	s        scanner
	services map[string]int32
	nodes    map[string]int32
}

// Decode decodes a /tasks response into t, replacing its content but
// reusing its slices' memory.
func (d *TasksDecoder) Decode(r io.Reader, t *Tasks) error {
	if d.services == nil {
		d.services = make(map[string]int32)
		d.nodes = make(map[string]int32)
	}
	clear(d.services)
	clear(d.nodes)
	t.ServiceIDs = t.ServiceIDs[:0]
	t.NodeIDs = t.NodeIDs[:0]
	t.List = t.List[:0]
	if err := d.s.list(r, func(b []byte, i int) (int, error) { return d.task(b, i, t) }); err != nil {
		return &DecodeError{Endpoint: "tasks", Err: err}
	}
	return nil
}

// task parses one task object (or null) at b[i] and appends it to t if it
// has a service.
func (d *TasksDecoder) task(b []byte, i int, t *Tasks) (int, error) {
	s := &d.s
	task := Task{Service: -1, Node: -1, State: TaskUnknown, Desired: TaskUnknown}
	i, err := s.object(b, i, nil, nil, func(key, b []byte, i int) (int, error) {
		switch string(key) {
		case "ServiceID":
			id, next, err := s.str(b, i)
			if err == nil && len(id) > 0 {
				task.Service = intern(d.services, &t.ServiceIDs, id)
			}
			return next, err
		case "NodeID":
			id, next, err := s.str(b, i)
			if err == nil && len(id) > 0 {
				task.Node = intern(d.nodes, &t.NodeIDs, id)
			}
			return next, err
		case "DesiredState":
			state, next, err := s.str(b, i)
			task.Desired = parseTaskState(state)
			return next, err
		case "Status":
			return s.object(b, i, nil, nil, func(key, b []byte, i int) (int, error) {
				if string(key) != "State" {
					return s.skip(b, i)
				}
				state, next, err := s.str(b, i)
				task.State = parseTaskState(state)
				return next, err
			})
		}
		return s.skip(b, i)
	})
	if err == nil && task.Service >= 0 {
		t.List = append(t.List, task)
	}
	return i, err
}

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
// across calls, so that copying the bytes out of the kernel overlaps
// parsing them: at 500 nodes that took a fifth of the task list's time.
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

// scanners are the scanners of the service list.
var scanners = sync.Pool{New: func() any { return new(scanner) }}

const (
	// scanChunk is the size of a chunk, but for the first: large, for
	// few hand-overs between the goroutines (at 500 nodes, 512 KiB
	// chunks parse the task list in 36 ms where 64 KiB ones took 41).
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

// maxDepth is the deepest nesting accepted, as json v2 accepts.
const maxDepth = 10000

var (
	errWrongType  = errors.New("wrong JSON type")
	errSyntax     = errors.New("invalid JSON")
	errTooDeep    = errors.New("JSON nested too deeply")
	errIncomplete = errors.New("more input needed") // internal: the value runs past the buffer
)

// memberFunc parses the value of an object's member named key (unquoted,
// valid until the next string is read) at b[i] and returns the offset
// past it.
type memberFunc func(key, b []byte, i int) (int, error)

// list parses the array (or null) that r holds, calling each with every
// element's offset in the buffer; each returns the offset past the element.
// When the element runs past the buffer, each returns errIncomplete (the
// scanner's methods do) and is called again with more bytes: it must not
// keep anything of a call that failed.
func (s *scanner) list(r io.Reader, each func(b []byte, i int) (int, error)) error {
	s.buf, s.start, s.end, s.off, s.eof, s.rerr = nil, 0, 0, 0, false, nil
	s.read(r)
	defer s.stopReading()
	c, err := s.peek()
	if err != nil {
		return err
	}
	switch c {
	case 'n':
		return s.parse(s.literal)
	case '[':
		s.start++
	default:
		return s.wrongTypeAt(s.buf[:s.end], s.start, "an array")
	}
	if c, err = s.peek(); err != nil {
		return err
	}
	if c == ']' {
		s.start++
		return nil
	}
	for {
		if _, err := s.peek(); err != nil { // skip the space before the element
			return err
		}
		if err := s.parse(each); err != nil {
			return err
		}
		if c, err = s.peek(); err != nil {
			return err
		}
		s.start++
		switch c {
		case ',':
		case ']':
			return nil
		default:
			return s.syntaxError(s.start-1, "',' or ']' after an element")
		}
	}
}

// object parses an object or null at b[i]. For null it calls null (if not
// nil), for an object open (if not nil) and then each for every member.
func (s *scanner) object(b []byte, i int, null, open func(), each memberFunc) (int, error) {
	if i >= len(b) {
		return i, s.more()
	}
	switch b[i] {
	case 'n':
		next, err := s.literal(b, i)
		if err == nil && null != nil {
			null()
		}
		return next, err
	case '{':
		if open != nil {
			open()
		}
	}
	return s.members(b, i, each)
}

// array parses an array or null at b[i]. For null it calls null, for an
// array open and then each for every element; each returns the offset
// past the element.
func (s *scanner) array(b []byte, i int, null, open func(), each func(b []byte, i int) (int, error)) (int, error) {
	if i >= len(b) {
		return i, s.more()
	}
	switch b[i] {
	case 'n':
		next, err := s.literal(b, i)
		if err == nil {
			null()
		}
		return next, err
	case '[':
		open()
	default:
		return i, s.wrongTypeAt(b, i, "an array")
	}
	if i = skipSpace(b, i+1); i >= len(b) {
		return i, s.more()
	}
	if b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = each(b, i); err != nil {
			return i, err
		}
		if i = skipSpace(b, i); i >= len(b) {
			return i, s.more()
		}
		switch b[i] {
		case ',':
			if i = skipSpace(b, i+1); i >= len(b) {
				return i, s.more()
			}
		case ']':
			return i + 1, nil
		default:
			return i, s.syntaxError(i, "',' or ']' after an array element")
		}
	}
}

// peek skips whitespace and returns the next byte, reading more as needed.
func (s *scanner) peek() (byte, error) {
	for {
		s.start = skipSpace(s.buf[:s.end], s.start)
		if s.start < s.end {
			return s.buf[s.start], nil
		}
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
}

// parse runs p on the buffered bytes from s.start, reading more and running
// it again while the value it parses runs past them.
func (s *scanner) parse(p func(b []byte, i int) (int, error)) error {
	for {
		next, err := p(s.buf[:s.end], s.start)
		if err != errIncomplete {
			if err != nil {
				return err
			}
			s.start = next
			return nil
		}
		if err := s.fill(); err != nil {
			return err
		}
	}
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

// members parses the object at b[i], calling each with every member's
// name (unquoted, valid until the next string is read) and the offset of
// its value; each returns the offset past the value.
func (s *scanner) members(b []byte, i int, each func(key []byte, b []byte, i int) (int, error)) (int, error) {
	if i >= len(b) {
		return i, s.more()
	}
	if b[i] != '{' {
		return i, s.wrongTypeAt(b, i, "an object")
	}
	if i = skipSpace(b, i+1); i >= len(b) {
		return i, s.more()
	}
	if b[i] == '}' {
		return i + 1, nil
	}
	for {
		key, next, err := s.name(b, i)
		if err != nil {
			return next, err
		}
		if i, err = each(key, b, next); err != nil {
			return i, err
		}
		if i = skipSpace(b, i); i >= len(b) {
			return i, s.more()
		}
		switch b[i] {
		case ',':
			if i = skipSpace(b, i+1); i >= len(b) {
				return i, s.more()
			}
		case '}':
			return i + 1, nil
		default:
			return i, s.syntaxError(i, "',' or '}' after an object member")
		}
	}
}

// name parses a member name and its colon at b[i], and returns the name
// and the offset of the value.
func (s *scanner) name(b []byte, i int) ([]byte, int, error) {
	if i >= len(b) {
		return nil, i, s.more()
	}
	if b[i] != '"' {
		return nil, i, s.syntaxError(i, "a member name")
	}
	// Every name the decoders look for is ASCII: a name that is not valid
	// UTF-8 matches none of them, unquoted or not, so only a name with
	// escapes needs unquoting.
	end, escaped, err := s.stringEnd(b, i)
	if err != nil {
		return nil, end, err
	}
	key := b[i+1 : end-1]
	if escaped {
		if key, end, err = s.quoted(b, i); err != nil {
			return nil, end, err
		}
	}
	if i = skipSpace(b, end); i >= len(b) {
		return nil, i, s.more()
	}
	if b[i] != ':' {
		return nil, i, s.syntaxError(i, "':' after a member name")
	}
	if i = skipSpace(b, i+1); i >= len(b) {
		return nil, i, s.more()
	}
	return key, i, nil
}

// str parses a string or null at b[i]; null reads as empty.
func (s *scanner) str(b []byte, i int) ([]byte, int, error) {
	switch {
	case i >= len(b):
		return nil, i, s.more()
	case b[i] == '"':
		return s.quoted(b, i)
	case b[i] == 'n':
		next, err := s.literal(b, i)
		return nil, next, err
	default:
		return nil, i, s.wrongTypeAt(b, i, "a string")
	}
}

// quoted parses the string at b[i] (a '"') and returns its unquoted bytes,
// valid until the next string is read.
func (s *scanner) quoted(b []byte, i int) ([]byte, int, error) {
	end, escaped, err := s.stringEnd(b, i)
	if err != nil {
		return nil, end, err
	}
	if v := b[i+1 : end-1]; !escaped && utf8.Valid(v) {
		return v, end, nil
	}
	// Escapes or invalid UTF-8: unquote as json v2 does with decodeOptions
	// for the other answers, so that an ID reads the same in every list.
	var v string
	if err := json.Unmarshal(b[i:end], &v, decodeOptions); err != nil {
		return nil, end, err
	}
	s.scratch = append(s.scratch[:0], v...)
	return s.scratch, end, nil
}

// stringEnd returns the offset past the string at b[i] (a '"') and whether
// it has escape sequences, which it checks. Most strings are short (names,
// IDs, timestamps), so it looks for the quote or a backslash eight bytes at
// a time in a machine word rather than calling bytes.IndexByte twice.
func (s *scanner) stringEnd(b []byte, i int) (end int, escaped bool, err error) {
	j := i + 1
	for {
		// Find the next quote or backslash.
		for {
			if j+8 > len(b) {
				for j < len(b) && b[j] != '"' && b[j] != '\\' {
					j++
				}
				if j >= len(b) {
					return len(b), escaped, s.more()
				}
				break
			}
			if m := quoteOrBackslash(binary.LittleEndian.Uint64(b[j:])); m != 0 {
				j += bits.TrailingZeros64(m) >> 3
				break
			}
			j += 8
		}
		if b[j] == '\\' {
			// Skip the escaped byte: it may be a quote.
			escaped = true
			j += 2
			continue
		}
		if escaped {
			if k := validEscapes(b[i+1 : j]); k >= 0 {
				return j + 1, true, s.syntaxError(i+1+k, "a valid escape sequence")
			}
		}
		return j + 1, escaped, nil
	}
}

// quoteOrBackslash returns a word whose lowest set bit is the high bit of
// the first byte of w (in memory order) that is '"' or '\\', or 0 if none is:
// (x - 0x01…01) &^ x & 0x80…80 flags the zero bytes of x, exactly up to the
// first one.
func quoteOrBackslash(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := w ^ (ones * '"')
	s := w ^ (ones * '\\')
	return ((q-ones)&^q | (s-ones)&^s) & highs
}

// validEscapes returns the offset of the first invalid escape sequence in
// the content of a string, or -1.
func validEscapes(s []byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		if i+1 >= len(s) {
			return i
		}
		switch s[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			if i+6 > len(s) {
				return i
			}
			for _, h := range s[i+2 : i+6] {
				if !isHex(h) {
					return i
				}
			}
			i += 5
		default:
			return i
		}
	}
	return -1
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// skip parses the value at b[i] without keeping it and returns the offset
// past it. Nested containers are tracked on a stack, not by recursion.
func (s *scanner) skip(b []byte, i int) (int, error) {
	stack := s.stack[:0]
	defer func() { s.stack = stack[:0] }()
	for {
		// A value.
		if i >= len(b) {
			return i, s.more()
		}
		var err error
		switch c := b[i]; c {
		case '"':
			i, _, err = s.stringEnd(b, i)
		case '{', '[':
			if len(stack) == maxDepth {
				return i, s.errorAt(i, errTooDeep)
			}
			if i = skipSpace(b, i+1); i >= len(b) {
				return i, s.more()
			}
			if b[i] == c+2 { // '}' is '{'+2 and ']' is '['+2
				i++
				break
			}
			stack = append(stack, c)
			if c == '{' {
				if _, i, err = s.name(b, i); err != nil {
					return i, err
				}
			}
			continue
		case 't', 'f', 'n':
			i, err = s.literal(b, i)
		default:
			i, err = s.number(b, i)
		}
		if err != nil {
			return i, err
		}
		// What follows a value: the end of the containers it closes, then a
		// comma and the next value, or the end of the value skipped.
		for {
			if len(stack) == 0 {
				return i, nil
			}
			if i = skipSpace(b, i); i >= len(b) {
				return i, s.more()
			}
			top := stack[len(stack)-1]
			c := b[i]
			if c == top+2 {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if c != ',' {
				return i, s.syntaxError(i, "',' or the end of the container")
			}
			if i = skipSpace(b, i+1); i >= len(b) {
				return i, s.more()
			}
			if top == '{' {
				if _, i, err = s.name(b, i); err != nil {
					return i, err
				}
			}
			break
		}
	}
}

// literal parses true, false or null at b[i].
func (s *scanner) literal(b []byte, i int) (int, error) {
	var lit string
	switch b[i] {
	case 't':
		lit = "true"
	case 'f':
		lit = "false"
	default:
		lit = "null"
	}
	n := min(len(lit), len(b)-i)
	if string(b[i:i+n]) != lit[:n] {
		return i, fmt.Errorf("%w: invalid literal", errSyntax)
	}
	if n < len(lit) {
		return len(b), s.more()
	}
	return i + n, nil
}

// number checks the grammar of the number at b[i].
func (s *scanner) number(b []byte, i int) (int, error) {
	start := i
	digits := func() int {
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		if i >= len(b) {
			return i, s.more()
		}
		return i, s.syntaxError(start, "a value")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			if i >= len(b) {
				return i, s.more()
			}
			return i, s.syntaxError(i, "a digit")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			if i >= len(b) {
				return i, s.more()
			}
			return i, s.syntaxError(i, "a digit")
		}
	}
	if i >= len(b) {
		// The number may go on in the bytes to come.
		return i, s.more()
	}
	return i, nil
}

// more says that the bytes ran out: at the end of the input, the body was
// cut short (or could not be read); otherwise, parse again with more bytes.
func (s *scanner) more() error {
	switch {
	case !s.eof:
		return errIncomplete
	case s.rerr != nil:
		return s.rerr
	default:
		return fmt.Errorf("%w at offset %d", io.ErrUnexpectedEOF, s.off+int64(s.end))
	}
}

func (s *scanner) errorAt(i int, err error) error {
	return fmt.Errorf("%w at offset %d", err, s.off+int64(i))
}

func (s *scanner) syntaxError(i int, want string) error {
	return fmt.Errorf("%w at offset %d: expected %s", errSyntax, s.off+int64(i), want)
}

func (s *scanner) wrongTypeAt(b []byte, i int, want string) error {
	return fmt.Errorf("%w at offset %d: expected %s, got %q", errWrongType, s.off+int64(i), want, b[i])
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\n', '\r', '\t':
			i++
		default:
			return i
		}
	}
	return i
}

func intern(index map[string]int32, ids *[]string, b []byte) int32 {
	if i, ok := index[string(b)]; ok {
		return i
	}
	id := string(b)
	i := int32(len(*ids))
	*ids = append(*ids, id)
	index[id] = i
	return i
}
