// The service list's decoder: a grammar written for the members of a
// service the exporter uses, run by the scanner of the task list, with
// json v2's semantics, then Docker's defaults. It is hand-written for
// speed: json v2 is several times slower on this list, which makes it
// slower than the whole task list where services run one replica each
// (measured in docs/benchmarks.md, "The service list").
// FuzzDecodeServices compares it with encoding/json. A new field of a service needs a field in rawService,
// its case in the grammar below and its field in the fuzz test's
// refService.

package swarm

import (
	"io"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
)

// rawService is a service as its JSON says, before Docker's defaults.
type rawService struct {
	ID            string
	Spec          serviceSpec
	UpdateStatus  opt[updateStatus]
	ServiceStatus opt[serviceStatus]
	JobStatus     opt[jobStatus]
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

type jobStatus struct {
	JobIteration uint64 // JobIteration.Index
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

// decodeServices decodes a /services?status=true response with s, one
// service at a time, into a list with room for n services. It uses the
// scanner of the task list: decoding the services into structs with json v2
// costs several times as much (docs/benchmarks.md, "The service list").
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
	if js := &raw.JobStatus; js.ok {
		s.HasJobStatus, s.JobIteration = true, js.v.JobIteration
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
		case "JobStatus":
			js := &raw.JobStatus
			return s.object(b, i, js.reset, js.set, func(key, b []byte, i int) (int, error) {
				if string(key) == "JobIteration" {
					return s.version(b, i, &js.v.JobIteration, nil)
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
