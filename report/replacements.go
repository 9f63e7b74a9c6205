package report

import (
	"sync"
	"time"

	"github.com/swarm-exporter/swarm_exporter/swarm"
)

// Replacements counts, for each replicated and global service, the tasks
// that replaced another since this process started: a task ID in a
// replicated service's slot, or on a global service's node, that the
// previous read did not see there, while that slot or node had a task then.
// A task that keeps failing is replaced again and again, so the count grows
// while the service's status, read at one instant, looks fine most of the
// time. Every new task counts, whatever made it: a restart after a failure,
// a rolling update (one per slot), a node that went down. Jobs are not
// counted: their tasks are meant to end.
//
// It needs nothing but the current task list each read already fetches,
// and keeps, per service, the 64-bit hashes of the task IDs of its slots in
// the last read. Its limits:
//
//   - a slot whose task is replaced several times between two reads counts
//     once; a task that came and went between them is not seen at all;
//   - it counts from 0 when the process starts. A failed read is skipped:
//     the next read is compared with the last one that had the task list.
//     A read of the cluster without the task list (the swarm has no
//     leader, or --read.services=leader and this instance's manager is not
//     the leader) ends the comparison: the next read with the task list
//     starts it again and counts nothing, so that an instance that takes
//     over the reading after a leader change does not count, in one step,
//     what changed while another instance read;
//   - each exporter instance counts on its own, from the reads it makes: two
//     instances agree on the increase over time, not on the value.
//
// A Replacements is safe for concurrent use. Each read is compared with
// the previous one once, however many scrapes share it: a read is known by
// when it started (Snapshot.ReadAt), and a read older than the last one
// counted (a scrape that got its read late) changes nothing.
type Replacements struct {
	mu       sync.Mutex
	counted  bool      // a read was counted
	lastRead time.Time // when it started
	// gap is set by a read of the cluster without the task list, newer
	// than the last read counted: the next read starts a new comparison.
	gap      bool
	read     uint64 // reads counted
	services map[string]*serviceSlots
	nodes    nodePositions
	// byService holds the services of the last read counted, in the order
	// of its service list (nil for jobs), so that the scrapes that share
	// the read find them without a lookup each.
	byService []*serviceSlots
	// byTaskService is scratch: the slots of the services of the task
	// list's interned service IDs.
	byTaskService []*serviceSlots
}

// serviceSlots is what is kept of one service.
type serviceSlots struct {
	id        string
	global    bool
	total     uint64 // replacements counted
	read      uint64 // the last read that listed the service
	prev, cur slotTasks
}

// NewReplacements returns a Replacements that has counted nothing.
func NewReplacements() *Replacements {
	return &Replacements{services: make(map[string]*serviceSlots), nodes: nodePositions{pos: make(map[string]uint32)}}
}

// Count counts a read's replacements, unless it was counted already, and
// sets the Replacements of the report's replicated and global services:
// rep must have been built from snap.
func (r *Replacements) Count(snap *swarm.Snapshot, rep *Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	newer := !r.counted || snap.ReadAt.After(r.lastRead)
	if !rep.ServicesKnown {
		if rep.Up && newer {
			r.gap = true
		}
		return
	}
	if newer {
		r.count(snap, !r.gap)
		r.counted, r.lastRead, r.gap = true, snap.ReadAt, false
	}
	counted := snap.ReadAt.Equal(r.lastRead) && len(rep.Services) == len(r.byService)
	for i := range rep.Services {
		s := &rep.Services[i]
		if s.Mode.Job() {
			continue
		}
		var st *serviceSlots
		if counted && r.byService[i] != nil && r.byService[i].id == s.ID {
			st = r.byService[i]
		} else {
			st = r.services[s.ID] // a report of an earlier read
		}
		if st != nil {
			s.Replacements = st.total
		}
	}
}

// count compares a read with the previous one; without compare it only
// records the read's tasks for the next comparison.
func (r *Replacements) count(snap *swarm.Snapshot, compare bool) {
	r.read++
	clear(r.byService)
	r.byService = r.byService[:0]
	for i := range snap.Services {
		s := &snap.Services[i]
		if s.Mode.Job() {
			r.byService = append(r.byService, nil)
			continue
		}
		st := r.services[s.ID]
		if st == nil || st.global != s.Mode.Global() {
			st = &serviceSlots{id: s.ID, global: s.Mode.Global()}
			r.services[s.ID] = st
		}
		r.byService = append(r.byService, st)
		st.read = r.read
		st.prev, st.cur = st.cur, st.prev
		if st.global {
			st.cur.reset(0) // sized below, once the nodes are known
		} else {
			// Slots run from 1 to the replica count (the slice
			// indexes them, one spare); any other goes to the map.
			st.cur.reset(int(min(s.Replicas, 1<<16)) + 2)
		}
	}
	for id, st := range r.services {
		if st.read != r.read {
			delete(r.services, id) // a service removed: forget it
		}
	}

	tasks := &snap.Tasks
	nodePos := r.nodes.update(tasks.NodeIDs)
	r.byTaskService = r.byTaskService[:0]
	for _, id := range tasks.ServiceIDs {
		st := r.services[id] // nil: a job, or removed since the service list was read
		if st != nil && st.global {
			st.cur.reset(r.nodes.bound())
		}
		r.byTaskService = append(r.byTaskService, st)
	}
	for i := range tasks.List {
		t := &tasks.List[i]
		st := r.byTaskService[t.Service]
		if st == nil || t.ID == 0 {
			continue
		}
		slot := t.Slot
		if st.global {
			if t.Node < 0 {
				continue
			}
			slot = uint64(nodePos[t.Node])
		}
		st.cur.add(slot, t.ID)
	}
	if compare {
		for _, st := range r.services {
			st.total += replaced(&st.prev, &st.cur)
		}
	}
	r.nodes.forget()
	clear(r.byTaskService)
}

// nodePositions gives each node a small number that stays the same from
// read to read, so that a global service's nodes index a slice like a
// replicated service's slots. A node that a read's task list does not
// mention is forgotten after that read and its number reused later: no
// service had a task on it in that read, so a node that takes the number
// over replaces nothing.
type nodePositions struct {
	pos   map[string]uint32
	free  []uint32
	next  uint32
	read  map[string]bool // scratch: the nodes of the current read
	byIdx []uint32        // scratch: positions by interned node index
}

// update assigns positions to a read's node IDs and returns them by
// index.
func (p *nodePositions) update(ids []string) []uint32 {
	if p.read == nil {
		p.read = make(map[string]bool)
	}
	clear(p.read)
	p.byIdx = p.byIdx[:0]
	for _, id := range ids {
		pos, ok := p.pos[id]
		if !ok {
			if n := len(p.free); n > 0 {
				pos, p.free = p.free[n-1], p.free[:n-1]
			} else {
				pos = p.next
				p.next++
			}
			p.pos[id] = pos
		}
		p.read[id] = true
		p.byIdx = append(p.byIdx, pos)
	}
	return p.byIdx
}

// forget frees the positions of the nodes the last update did not mention.
func (p *nodePositions) forget() {
	for id, pos := range p.pos {
		if !p.read[id] {
			delete(p.pos, id)
			p.free = append(p.free, pos)
		}
	}
}

// bound is one past the largest position in use.
func (p *nodePositions) bound() int { return int(p.next) }
