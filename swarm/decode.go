package swarm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strings"
	"time"

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

type rawService struct {
	ID   string
	Spec struct {
		Name         string
		Labels       map[string]string
		TaskTemplate struct {
			ContainerSpec *struct{ Image string }
			Placement     *struct {
				Constraints []string
				Platforms   []struct{ Architecture, OS string }
			}
		}
		Mode struct {
			Replicated    *struct{ Replicas *uint64 }
			Global        *struct{}
			ReplicatedJob *struct{ MaxConcurrent, TotalCompletions *uint64 }
			GlobalJob     *struct{}
		}
	}
	UpdateStatus *struct {
		State     string
		StartedAt *time.Time
	}
	ServiceStatus *struct {
		RunningTasks, DesiredTasks, CompletedTasks uint64
	}
}

// StackLabel is the label `docker stack deploy` puts on a stack's services.
const StackLabel = "com.docker.stack.namespace"

// DecodeServices decodes a /services?status=true response, one service at a time.
func DecodeServices(r io.Reader) ([]Service, error) {
	var services []Service
	err := decodeArray(r, func(dec *jsontext.Decoder) error {
		var raw rawService
		if err := json.UnmarshalDecode(dec, &raw, decodeOptions); err != nil {
			return err
		}
		spec := &raw.Spec
		s := Service{
			ID:    raw.ID,
			Name:  spec.Name,
			Stack: spec.Labels[StackLabel],
		}
		if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
			s.Image = stripDigest(cs.Image)
		}
		if p := spec.TaskTemplate.Placement; p != nil {
			s.Constraints = p.Constraints
			for _, pl := range p.Platforms {
				s.Platforms = append(s.Platforms, placement.Platform{OS: pl.OS, Architecture: pl.Architecture})
			}
		}
		m := &spec.Mode
		switch {
		case m.Global != nil:
			s.Mode = Global
		case m.ReplicatedJob != nil:
			// Docker's defaults: one task at a time, as many completions
			// as MaxConcurrent.
			s.Mode = ReplicatedJob
			s.MaxConcurrent = 1
			if m.ReplicatedJob.MaxConcurrent != nil {
				s.MaxConcurrent = *m.ReplicatedJob.MaxConcurrent
			}
			s.Replicas = s.MaxConcurrent
			if m.ReplicatedJob.TotalCompletions != nil {
				s.Replicas = *m.ReplicatedJob.TotalCompletions
			}
		case m.GlobalJob != nil:
			s.Mode = GlobalJob
		default:
			// Replicated, also when the mode is missing: Docker's default.
			s.Mode = Replicated
			s.Replicas = 1
			if m.Replicated != nil && m.Replicated.Replicas != nil {
				s.Replicas = *m.Replicated.Replicas
			}
		}
		if u := raw.UpdateStatus; u != nil {
			s.UpdateState = parseUpdateState(u.State)
			if u.StartedAt != nil {
				s.UpdateStartedAt = *u.StartedAt
			}
		}
		if st := raw.ServiceStatus; st != nil {
			s.Reported = ReportedStatus{Running: st.RunningTasks, Desired: st.DesiredTasks, Completed: st.CompletedTasks}
		}
		services = append(services, s)
		return nil
	})
	if err != nil {
		return nil, &DecodeError{Endpoint: "services", Err: err}
	}
	return services, nil
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
// tens of thousands of tasks the task list is most of the bytes of a read,
// and decoding it most of the time of a scrape, so it has a scanner of its
// own instead of a general JSON decoder (which took two thirds of a
// scrape's time at 500 nodes): it checks the whole grammar (a truncated or
// malformed body is an error, as with encoding/json), but finds the end of
// each string eight bytes at a time, and keeps nothing but the four
// fields. What it does not check is that the strings it skips hold no raw
// control character: Docker's encoder never writes one.
//
// It reads the body in chunks into a buffer that it reuses across calls,
// and parses one task at a time from the buffer: a task cut by the end of
// the buffer is parsed again once more bytes have arrived, so memory does
// not grow with the response. A TasksDecoder is not safe for concurrent use.
type TasksDecoder struct {
	r     io.Reader
	buf   []byte
	start int   // buf[start:end] holds the bytes not consumed yet
	end   int   //
	off   int64 // input offset of buf[0], for error messages
	eof   bool
	rerr  error // a read error, reported once the bytes before it are used

	scratch  []byte
	stack    []byte // the open containers of a value being skipped
	services map[string]int32
	nodes    map[string]int32
}

// tasksChunk is the size of the decoder's reads: large enough that few
// tasks straddle two chunks, small enough to stay in the CPU cache.
const tasksChunk = 64 << 10

// maxDepth is the deepest nesting accepted, as json v2 accepts.
const maxDepth = 10000

var (
	errWrongType  = errors.New("wrong JSON type")
	errSyntax     = errors.New("invalid JSON")
	errTooDeep    = errors.New("JSON nested too deeply")
	errIncomplete = errors.New("more input needed") // internal: the value runs past the buffer
)

// Decode decodes a /tasks response into t, replacing its content but
// reusing its slices' memory.
func (d *TasksDecoder) Decode(r io.Reader, t *Tasks) error {
	if d.services == nil {
		d.services = make(map[string]int32)
		d.nodes = make(map[string]int32)
		d.buf = make([]byte, tasksChunk)
	}
	clear(d.services)
	clear(d.nodes)
	d.r, d.start, d.end, d.off, d.eof, d.rerr = r, 0, 0, 0, false, nil
	defer func() { d.r, d.rerr = nil, nil }() // drop the references to the body
	t.ServiceIDs = t.ServiceIDs[:0]
	t.NodeIDs = t.NodeIDs[:0]
	t.List = t.List[:0]
	if err := d.decode(t); err != nil {
		return &DecodeError{Endpoint: "tasks", Err: err}
	}
	return nil
}

func (d *TasksDecoder) decode(t *Tasks) error {
	// The list, or null.
	c, err := d.peek()
	if err != nil {
		return err
	}
	switch c {
	case 'n':
		return d.parse(d.literal)
	case '[':
		d.start++
	default:
		return d.wrongType("an array")
	}
	if c, err = d.peek(); err != nil {
		return err
	}
	if c == ']' {
		d.start++
		return nil
	}
	for {
		if err := d.parse(func(b []byte, i int) (int, error) { return d.task(b, i, t) }); err != nil {
			return err
		}
		if c, err = d.peek(); err != nil {
			return err
		}
		d.start++
		switch c {
		case ',':
		case ']':
			return nil
		default:
			return d.syntaxError(d.start-1, "',' or ']' after a task")
		}
	}
}

// peek skips whitespace and returns the next byte, reading more as needed.
func (d *TasksDecoder) peek() (byte, error) {
	for {
		d.start = skipSpace(d.buf[:d.end], d.start)
		if d.start < d.end {
			return d.buf[d.start], nil
		}
		if err := d.fill(); err != nil {
			return 0, err
		}
	}
}

// parse runs p on the buffered bytes from d.start, reading more and running
// it again while the value it parses runs past them.
func (d *TasksDecoder) parse(p func(b []byte, i int) (int, error)) error {
	for {
		next, err := p(d.buf[:d.end], d.start)
		if err != errIncomplete {
			if err != nil {
				return err
			}
			d.start = next
			return nil
		}
		if err := d.fill(); err != nil {
			return err
		}
	}
}

// fill reads more bytes after those not consumed yet, moving them to the
// front of the buffer first, and growing it when one value fills it.
func (d *TasksDecoder) fill() error {
	if d.eof {
		return d.more()
	}
	if d.start > 0 {
		n := copy(d.buf, d.buf[d.start:d.end])
		d.off += int64(d.start)
		d.start, d.end = 0, n
	}
	if d.end == len(d.buf) {
		d.buf = append(d.buf, make([]byte, len(d.buf))...)
	}
	// A task is parsed again from its start each time its bytes run out:
	// asking for at least as many bytes as are buffered keeps that linear
	// however small the reads.
	want := min(max(d.end, 4<<10), len(d.buf)-d.end)
	n, err := io.ReadAtLeast(d.r, d.buf[d.end:], want)
	d.end += n
	if err != nil {
		d.eof = true
		if err != io.EOF && err != io.ErrUnexpectedEOF {
			d.rerr = err
		}
		if n == 0 {
			return d.more()
		}
	}
	return nil
}

// task parses one task object (or null) at b[i] and appends it to t if it
// has a service.
func (d *TasksDecoder) task(b []byte, i int, t *Tasks) (int, error) {
	task := Task{Service: -1, Node: -1, State: TaskUnknown, Desired: TaskUnknown}
	if i < len(b) && b[i] == 'n' {
		return d.literal(b, i)
	}
	i, err := d.members(b, i, func(key []byte, b []byte, i int) (int, error) {
		switch string(key) {
		case "ServiceID":
			s, next, err := d.str(b, i)
			if err == nil && len(s) > 0 {
				task.Service = intern(d.services, &t.ServiceIDs, s)
			}
			return next, err
		case "NodeID":
			s, next, err := d.str(b, i)
			if err == nil && len(s) > 0 {
				task.Node = intern(d.nodes, &t.NodeIDs, s)
			}
			return next, err
		case "DesiredState":
			s, next, err := d.str(b, i)
			task.Desired = parseTaskState(s)
			return next, err
		case "Status":
			if i < len(b) && b[i] == 'n' {
				return d.literal(b, i)
			}
			return d.members(b, i, func(key []byte, b []byte, i int) (int, error) {
				if string(key) != "State" {
					return d.skip(b, i)
				}
				s, next, err := d.str(b, i)
				task.State = parseTaskState(s)
				return next, err
			})
		default:
			return d.skip(b, i)
		}
	})
	if err == nil && task.Service >= 0 {
		t.List = append(t.List, task)
	}
	return i, err
}

// members parses the object at b[i], calling each with every member's
// name (unquoted, valid until the next string is read) and the offset of
// its value; each returns the offset past the value.
func (d *TasksDecoder) members(b []byte, i int, each func(key []byte, b []byte, i int) (int, error)) (int, error) {
	if i >= len(b) {
		return i, d.more()
	}
	if b[i] != '{' {
		return i, d.wrongTypeAt(b, i, "an object")
	}
	if i = skipSpace(b, i+1); i >= len(b) {
		return i, d.more()
	}
	if b[i] == '}' {
		return i + 1, nil
	}
	for {
		key, next, err := d.name(b, i)
		if err != nil {
			return next, err
		}
		if i, err = each(key, b, next); err != nil {
			return i, err
		}
		if i = skipSpace(b, i); i >= len(b) {
			return i, d.more()
		}
		switch b[i] {
		case ',':
			if i = skipSpace(b, i+1); i >= len(b) {
				return i, d.more()
			}
		case '}':
			return i + 1, nil
		default:
			return i, d.syntaxError(i, "',' or '}' after an object member")
		}
	}
}

// name parses a member name and its colon at b[i], and returns the name
// and the offset of the value.
func (d *TasksDecoder) name(b []byte, i int) ([]byte, int, error) {
	if i >= len(b) {
		return nil, i, d.more()
	}
	if b[i] != '"' {
		return nil, i, d.syntaxError(i, "a member name")
	}
	key, i, err := d.quoted(b, i)
	if err != nil {
		return nil, i, err
	}
	if i = skipSpace(b, i); i >= len(b) {
		return nil, i, d.more()
	}
	if b[i] != ':' {
		return nil, i, d.syntaxError(i, "':' after a member name")
	}
	if i = skipSpace(b, i+1); i >= len(b) {
		return nil, i, d.more()
	}
	return key, i, nil
}

// str parses a string or null at b[i]; null reads as empty.
func (d *TasksDecoder) str(b []byte, i int) ([]byte, int, error) {
	switch {
	case i >= len(b):
		return nil, i, d.more()
	case b[i] == '"':
		return d.quoted(b, i)
	case b[i] == 'n':
		next, err := d.literal(b, i)
		return nil, next, err
	default:
		return nil, i, d.wrongTypeAt(b, i, "a string")
	}
}

// quoted parses the string at b[i] (a '"') and returns its unquoted bytes,
// valid until the next string is read.
func (d *TasksDecoder) quoted(b []byte, i int) ([]byte, int, error) {
	end, escaped, err := d.stringEnd(b, i)
	if err != nil {
		return nil, end, err
	}
	if !escaped {
		return b[i+1 : end-1], end, nil
	}
	d.scratch, err = jsontext.AppendUnquote(d.scratch[:0], b[i:end])
	return d.scratch, end, err
}

// stringEnd returns the offset past the string at b[i] (a '"') and whether
// it has escape sequences, which it checks. Most strings are short (names,
// IDs, timestamps), so it looks for the quote or a backslash eight bytes at
// a time in a machine word rather than calling bytes.IndexByte twice.
func (d *TasksDecoder) stringEnd(b []byte, i int) (end int, escaped bool, err error) {
	j := i + 1
	for {
		// Find the next quote or backslash.
		for {
			if j+8 > len(b) {
				for j < len(b) && b[j] != '"' && b[j] != '\\' {
					j++
				}
				if j >= len(b) {
					return len(b), escaped, d.more()
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
				return j + 1, true, d.syntaxError(i+1+k, "a valid escape sequence")
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
	return ((q - ones) &^ q | (s - ones) &^ s) & highs
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
func (d *TasksDecoder) skip(b []byte, i int) (int, error) {
	stack := d.stack[:0]
	defer func() { d.stack = stack[:0] }()
	for {
		// A value.
		if i >= len(b) {
			return i, d.more()
		}
		var err error
		switch c := b[i]; c {
		case '"':
			i, _, err = d.stringEnd(b, i)
		case '{', '[':
			if len(stack) == maxDepth {
				return i, d.errorAt(i, errTooDeep)
			}
			if i = skipSpace(b, i+1); i >= len(b) {
				return i, d.more()
			}
			if b[i] == c+2 { // '}' is '{'+2 and ']' is '['+2
				i++
				break
			}
			stack = append(stack, c)
			if c == '{' {
				_, i, err = d.name(b, i)
				if err != nil {
					return i, err
				}
			}
			continue
		case 't', 'f', 'n':
			i, err = d.literal(b, i)
		default:
			i, err = d.number(b, i)
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
				return i, d.more()
			}
			top := stack[len(stack)-1]
			c := b[i]
			if c == top+2 {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if c != ',' {
				return i, d.syntaxError(i, "',' or the end of the container")
			}
			if i = skipSpace(b, i+1); i >= len(b) {
				return i, d.more()
			}
			if top == '{' {
				if _, i, err = d.name(b, i); err != nil {
					return i, err
				}
			}
			break
		}
	}
}

// literal parses true, false or null at b[i].
func (d *TasksDecoder) literal(b []byte, i int) (int, error) {
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
		return len(b), d.more()
	}
	return i + n, nil
}

// number checks the grammar of the number at b[i].
func (d *TasksDecoder) number(b []byte, i int) (int, error) {
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
			return i, d.more()
		}
		return i, d.syntaxError(start, "a value")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			if i >= len(b) {
				return i, d.more()
			}
			return i, d.syntaxError(i, "a digit")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			if i >= len(b) {
				return i, d.more()
			}
			return i, d.syntaxError(i, "a digit")
		}
	}
	if i >= len(b) {
		// The number may go on in the bytes to come.
		return i, d.more()
	}
	return i, nil
}

// more says that the bytes ran out: at the end of the input, the body was
// cut short (or could not be read); otherwise, parse again with more bytes.
func (d *TasksDecoder) more() error {
	switch {
	case !d.eof:
		return errIncomplete
	case d.rerr != nil:
		return d.rerr
	default:
		return fmt.Errorf("%w at offset %d", io.ErrUnexpectedEOF, d.off+int64(d.end))
	}
}

func (d *TasksDecoder) errorAt(i int, err error) error {
	return fmt.Errorf("%w at offset %d", err, d.off+int64(i))
}

func (d *TasksDecoder) syntaxError(i int, want string) error {
	return fmt.Errorf("%w at offset %d: expected %s", errSyntax, d.off+int64(i), want)
}

func (d *TasksDecoder) wrongType(want string) error {
	return d.wrongTypeAt(d.buf[:d.end], d.start, want)
}

func (d *TasksDecoder) wrongTypeAt(b []byte, i int, want string) error {
	return fmt.Errorf("%w at offset %d: expected %s, got %q", errWrongType, d.off+int64(i), want, b[i])
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
