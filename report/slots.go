package report

// slotTasks holds the tasks of one service's slots in one read: by slot
// number for a replicated service, by node position (see nodePositions)
// for a global one, each task by its ID's 64-bit hash (swarm.Task.ID).
// Slots are small numbers in practice (1 to the replica count), so they
// index a slice; the rare slot with more than one current task (a
// start-first update, a task on a node that went down and its
// replacement) and slots past the slice's bound go to a map.
type slotTasks struct {
	ids  []uint64            // by slot: the ID of its first task, 0 for none
	more map[uint64][]uint64 // by slot: the IDs of its other tasks, or all of them past len(ids)
}

// reset empties s, keeping its memory, with room for slots below bound in
// the slice.
func (s *slotTasks) reset(bound int) {
	if cap(s.ids) < bound {
		s.ids = make([]uint64, bound)
	} else {
		s.ids = s.ids[:bound]
		clear(s.ids)
	}
	clear(s.more)
}

// add records a task (ID id, not 0) in a slot.
func (s *slotTasks) add(slot, id uint64) {
	if slot < uint64(len(s.ids)) {
		switch s.ids[slot] {
		case 0:
			s.ids[slot] = id
			return
		case id:
			return
		}
	}
	if s.more == nil {
		s.more = make(map[uint64][]uint64)
	}
	for _, m := range s.more[slot] {
		if m == id {
			return
		}
	}
	s.more[slot] = append(s.more[slot], id)
}

// holds reports whether the slot had a task, and whether it had the task
// id.
func (s *slotTasks) holds(slot, id uint64) (anyTask, task bool) {
	if slot < uint64(len(s.ids)) {
		if first := s.ids[slot]; first != 0 {
			anyTask = true
			if first == id {
				return true, true
			}
		}
	}
	more, ok := s.more[slot]
	for _, m := range more {
		if m == id {
			return true, true
		}
	}
	return anyTask || (ok && len(more) > 0), false
}

// replaced counts the tasks of cur that replaced another: tasks in a slot
// that held a task in prev, but not this one. A new slot (a service scaled
// up, a node that joined or was activated) replaces nothing, and a slot
// that is empty now (scaled down, node drained) is not counted either.
func replaced(prev, cur *slotTasks) uint64 {
	var n uint64
	count := func(slot, id uint64) {
		if anyTask, task := prev.holds(slot, id); anyTask && !task {
			n++
		}
	}
	for slot, id := range cur.ids {
		if id != 0 {
			count(uint64(slot), id)
		}
	}
	for slot, ids := range cur.more {
		for _, id := range ids {
			count(slot, id)
		}
	}
	return n
}
