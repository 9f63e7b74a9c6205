// Decoding of the small answers, /info and /nodes, with json v2 into
// structs that hold only the fields the exporter uses, one node at a time;
// and what every decoder shares: the options, DecodeError and the walk of
// a JSON array one element at a time.

package swarm

import (
	"fmt"
	"io"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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
