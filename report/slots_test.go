package report

import "testing"

// slotSet builds a slotTasks from slot → task IDs, with a slice bound.
func slotSet(bound int, slots map[uint64][]uint64) *slotTasks {
	var s slotTasks
	s.reset(bound)
	for slot, ids := range slots {
		for _, id := range ids {
			s.add(slot, id)
		}
	}
	return &s
}

func TestReplaced(t *testing.T) {
	for _, tc := range []struct {
		name      string
		prev, cur map[uint64][]uint64
		want      uint64
	}{
		{"nothing changed", map[uint64][]uint64{1: {11}, 2: {12}}, map[uint64][]uint64{1: {11}, 2: {12}}, 0},
		{"one task replaced", map[uint64][]uint64{1: {11}, 2: {12}}, map[uint64][]uint64{1: {11}, 2: {22}}, 1},
		{"every task replaced", map[uint64][]uint64{1: {11}, 2: {12}}, map[uint64][]uint64{1: {21}, 2: {22}}, 2},
		{"a new slot (scaled up) replaces nothing", map[uint64][]uint64{1: {11}}, map[uint64][]uint64{1: {11}, 2: {12}}, 0},
		{"a slot gone (scaled down) is no replacement", map[uint64][]uint64{1: {11}, 2: {12}}, map[uint64][]uint64{1: {11}}, 0},
		{"first read: nothing to compare with", nil, map[uint64][]uint64{1: {11}, 2: {12}}, 0},
		{"start-first update: the new task beside the old", map[uint64][]uint64{1: {11}}, map[uint64][]uint64{1: {11, 21}}, 1},
		{"start-first update: the old task gone", map[uint64][]uint64{1: {11, 21}}, map[uint64][]uint64{1: {21}}, 0},
		{"two tasks, one replaced", map[uint64][]uint64{1: {11, 21}}, map[uint64][]uint64{1: {21, 31}}, 1},
		{"an empty slot, then a task", map[uint64][]uint64{2: {12}}, map[uint64][]uint64{1: {11}, 2: {12}}, 0},
		{"slots past the slice", map[uint64][]uint64{1: {11}, 900: {19}, 901: {20}}, map[uint64][]uint64{1: {11}, 900: {29}, 901: {20}}, 1},
		{"a slot moving past the slice", map[uint64][]uint64{3: {13}}, map[uint64][]uint64{3: {13, 23}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, bounds := range [][2]int{{4, 4}, {0, 0}, {4, 0}, {0, 4}} {
				if got := replaced(slotSet(bounds[0], tc.prev), slotSet(bounds[1], tc.cur)); got != tc.want {
					t.Errorf("slice bounds %v: %d replacements, want %d", bounds, got, tc.want)
				}
			}
		})
	}
}

func TestSlotTasksReuse(t *testing.T) {
	s := slotSet(3, map[uint64][]uint64{1: {11, 21}, 7: {17}})
	s.reset(3)
	for slot := range uint64(10) {
		if anyTask, _ := s.holds(slot, 11); anyTask {
			t.Errorf("slot %d still holds a task after reset", slot)
		}
	}
	s.add(1, 31)
	s.add(1, 31)
	if anyTask, task := s.holds(1, 31); !anyTask || !task {
		t.Error("slot 1 does not hold the task added")
	}
	if len(s.more) != 0 {
		t.Errorf("a task added twice is kept twice: %v", s.more)
	}
}
