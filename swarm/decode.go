package swarm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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

// TasksDecoder decodes /tasks responses. It walks the tokens itself and
// keeps four fields per task: at tens of thousands of tasks, decoding into
// full structs is most of the cost of a scrape. A TasksDecoder reuses its
// buffers across calls and is not safe for concurrent use.
type TasksDecoder struct {
	dec      *jsontext.Decoder
	scratch  []byte
	services map[string]int32
	nodes    map[string]int32
}

// Decode decodes a /tasks response into t, replacing its content but
// reusing its slices' memory.
func (d *TasksDecoder) Decode(r io.Reader, t *Tasks) error {
	if err := d.decode(r, t); err != nil {
		return &DecodeError{Endpoint: "tasks", Err: err}
	}
	return nil
}

func (d *TasksDecoder) decode(r io.Reader, t *Tasks) error {
	if d.dec == nil {
		d.dec = jsontext.NewDecoder(r, decodeOptions)
		d.services = make(map[string]int32)
		d.nodes = make(map[string]int32)
	} else {
		d.dec.Reset(r, decodeOptions)
		clear(d.services)
		clear(d.nodes)
	}
	t.ServiceIDs = t.ServiceIDs[:0]
	t.NodeIDs = t.NodeIDs[:0]
	t.List = t.List[:0]
	defer d.dec.Reset(eofReader{}) // drop the reference to r

	return d.array(func() error {
		task := Task{Service: -1, Node: -1, State: TaskUnknown, Desired: TaskUnknown}
		err := d.object(func(key []byte) error {
			switch string(key) {
			case "ServiceID":
				b, err := d.str()
				if err == nil && len(b) > 0 {
					task.Service = intern(d.services, &t.ServiceIDs, b)
				}
				return err
			case "NodeID":
				b, err := d.str()
				if err == nil && len(b) > 0 {
					task.Node = intern(d.nodes, &t.NodeIDs, b)
				}
				return err
			case "DesiredState":
				b, err := d.str()
				task.Desired = parseTaskState(b)
				return err
			case "Status":
				return d.object(func(key []byte) error {
					if string(key) != "State" {
						return d.dec.SkipValue()
					}
					b, err := d.str()
					task.State = parseTaskState(b)
					return err
				})
			default:
				return d.dec.SkipValue()
			}
		})
		if err != nil {
			return err
		}
		if task.Service >= 0 {
			t.List = append(t.List, task)
		}
		return nil
	})
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

var errWrongType = errors.New("wrong JSON type")

// array walks an array (or null), calling each for every element.
func (d *TasksDecoder) array(each func() error) error {
	switch d.dec.PeekKind() {
	case 'n':
		return d.dec.SkipValue()
	case '[':
	default:
		return d.unexpected("an array")
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	for d.dec.PeekKind() != ']' {
		if err := each(); err != nil {
			return err
		}
	}
	_, err := d.dec.ReadToken()
	return err
}

// object walks an object (or null); each must consume the member's value.
func (d *TasksDecoder) object(each func(key []byte) error) error {
	switch d.dec.PeekKind() {
	case 'n':
		return d.dec.SkipValue()
	case '{':
	default:
		return d.unexpected("an object")
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	for d.dec.PeekKind() != '}' {
		key, err := d.str()
		if err != nil {
			return err
		}
		if err := each(key); err != nil {
			return err
		}
	}
	_, err := d.dec.ReadToken()
	return err
}

// str reads a string (or null, as empty) and returns its unquoted bytes,
// valid until the next read.
func (d *TasksDecoder) str() ([]byte, error) {
	switch d.dec.PeekKind() {
	case 'n':
		return nil, d.dec.SkipValue()
	case '"':
	default:
		return nil, d.unexpected("a string")
	}
	v, err := d.dec.ReadValue()
	if err != nil {
		return nil, err
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1], nil
	}
	d.scratch, err = jsontext.AppendUnquote(d.scratch[:0], v)
	return d.scratch, err
}

func (d *TasksDecoder) unexpected(want string) error {
	// PeekKind returns 0 on I/O and syntax errors; reading the next token
	// surfaces them.
	if d.dec.PeekKind() == 0 {
		if _, err := d.dec.ReadToken(); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w at %s: expected %s, got %v", errWrongType, d.dec.StackPointer(), want, d.dec.PeekKind())
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
