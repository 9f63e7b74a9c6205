// The task list's decoder: the largest answer of a read, parsed with the
// scanner, only the fields the exporter uses kept and the IDs interned.

package swarm

import (
	"hash/maphash"
	"io"
)

// TasksDecoder decodes /tasks responses, keeping seven fields per task. At
// tens of thousands of tasks the task list is most of the bytes of a read
// and its decoding most of a scrape's time: the scanner decodes it faster
// than json v2's token walker (measured in docs/benchmarks.md). A
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
		case "ID":
			id, next, err := s.str(b, i)
			if err == nil {
				task.ID = taskIDHash(id)
			}
			return next, err
		case "Slot":
			return s.uint(b, i, &task.Slot)
		case "JobIteration":
			return s.version(b, i, &task.JobIteration, &task.HasJobIteration)
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

// taskIDSeed seeds the hashes of task IDs: they are compared within this
// process only.
var taskIDSeed = maphash.MakeSeed()

// taskIDHash returns the Task.ID of a task whose ID is id: 0 for none, a
// 64-bit hash otherwise. Two of a swarm's task IDs share one with a
// probability of about 2^-64 per pair.
func taskIDHash(id []byte) uint64 {
	if len(id) == 0 {
		return 0
	}
	if h := maphash.Bytes(taskIDSeed, id); h != 0 {
		return h
	}
	return 1
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
