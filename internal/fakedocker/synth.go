package fakedocker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// SynthOptions sizes a synthetic swarm.
type SynthOptions struct {
	Managers int
	Workers  int
	// Services replicated services of Replicas tasks each.
	Services int
	Replicas int
	// GlobalServices run one task per node.
	GlobalServices int
	// HistoryPerSlot old tasks (desired state shutdown) per task slot, as
	// Docker keeps them (task history retention limit, 5 by default).
	HistoryPerSlot int
}

// Synth builds a swarm of any size from the objects of a captured fixture
// (a manager and a worker node, a replicated and a global service, a
// running task): every generated object is a captured one with new IDs and
// names, so sizes and field sets are those of a real daemon.
func Synth(template *Fixture, o SynthOptions) (*Fixture, error) {
	t, err := pickTemplates(template)
	if err != nil {
		return nil, err
	}
	nodes := o.Managers + o.Workers
	if nodes == 0 {
		return nil, fmt.Errorf("a swarm needs at least one node")
	}
	f := &Fixture{Ping: template.Ping.Clone(), Responses: map[string]Response{}}
	if f.Ping == nil {
		f.Ping = http.Header{"Api-Version": {"1.41"}}
	}

	// /info: the first manager's view.
	info := cloneMap(t.info)
	sw := info["Swarm"].(map[string]any)
	sw["NodeID"] = nodeID(0)
	sw["Nodes"] = nodes
	sw["Managers"] = o.Managers
	info["Name"] = hostname(0)
	f.Responses["info"] = Response{Body: mustJSON(info)}

	// /nodes.
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; i < nodes; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		var n map[string]any
		if i < o.Managers {
			n = cloneMap(t.manager)
			ms := n["ManagerStatus"].(map[string]any)
			ms["Leader"] = i == 0
			ms["Addr"] = address(i) + ":2377"
		} else {
			n = cloneMap(t.worker)
		}
		n["ID"] = nodeID(i)
		n["Description"].(map[string]any)["Hostname"] = hostname(i)
		n["Status"].(map[string]any)["Addr"] = address(i)
		b.Write(mustJSON(n))
	}
	b.WriteByte(']')
	f.Responses["nodes"] = Response{Body: bytes.Clone(b.Bytes())}

	// /services?status=true.
	b.Reset()
	b.WriteByte('[')
	for s := 0; s < o.Services+o.GlobalServices; s++ {
		if s > 0 {
			b.WriteByte(',')
		}
		var svc map[string]any
		if s < o.Services {
			svc = cloneMap(t.replicated)
			svc["Spec"].(map[string]any)["Mode"] = map[string]any{"Replicated": map[string]any{"Replicas": o.Replicas}}
			svc["ServiceStatus"] = map[string]any{"RunningTasks": o.Replicas, "DesiredTasks": o.Replicas, "CompletedTasks": 0}
		} else {
			svc = cloneMap(t.global)
			svc["ServiceStatus"] = map[string]any{"RunningTasks": nodes, "DesiredTasks": nodes, "CompletedTasks": 0}
		}
		svc["ID"] = serviceID(s)
		spec := svc["Spec"].(map[string]any)
		spec["Name"] = fmt.Sprintf("svc-%05d", s)
		spec["Labels"] = map[string]any{"com.docker.stack.namespace": fmt.Sprintf("stack-%03d", s/10)}
		b.Write(mustJSON(svc))
	}
	b.WriteByte(']')
	f.Responses["services"] = Response{Body: bytes.Clone(b.Bytes())}

	// /tasks: current tasks, and all tasks (with history).
	stamp, err := newStamp(t.task)
	if err != nil {
		return nil, err
	}
	var cur, all bytes.Buffer
	cur.WriteByte('[')
	all.WriteByte('[')
	taskN := 0
	emit := func(svc, slot, node int, current bool) {
		buf := &all
		if all.Len() > 1 {
			all.WriteByte(',')
		}
		desired, state := "shutdown", "shutdown"
		if current {
			desired, state = "running", "running"
		}
		stamp.write(buf, taskID(taskN), serviceID(svc), nodeID(node), slot, desired, state)
		if current {
			if cur.Len() > 1 {
				cur.WriteByte(',')
			}
			stamp.write(&cur, taskID(taskN), serviceID(svc), nodeID(node), slot, desired, state)
		}
		taskN++
	}
	for s := 0; s < o.Services; s++ {
		for slot := 1; slot <= o.Replicas; slot++ {
			node := (s*o.Replicas + slot) % nodes
			for h := 0; h < o.HistoryPerSlot; h++ {
				emit(s, slot, (node+h+1)%nodes, false)
			}
			emit(s, slot, node, true)
		}
	}
	for g := 0; g < o.GlobalServices; g++ {
		s := o.Services + g
		for node := 0; node < nodes; node++ {
			for h := 0; h < o.HistoryPerSlot; h++ {
				emit(s, 0, node, false)
			}
			emit(s, 0, node, true)
		}
	}
	cur.WriteByte(']')
	all.WriteByte(']')
	f.Responses["tasks"] = Response{Body: cur.Bytes()}
	f.Responses["tasks-all"] = Response{Body: all.Bytes()}
	return f, nil
}

type templates struct {
	info, manager, worker, replicated, global, task map[string]any
}

func pickTemplates(f *Fixture) (*templates, error) {
	var t templates
	if err := json.Unmarshal(f.Responses["info"].Body, &t.info); err != nil {
		return nil, fmt.Errorf("template info: %w", err)
	}
	var nodes, services, tasks []map[string]any
	if err := json.Unmarshal(f.Responses["nodes"].Body, &nodes); err != nil {
		return nil, fmt.Errorf("template nodes: %w", err)
	}
	if err := json.Unmarshal(f.Responses["services"].Body, &services); err != nil {
		return nil, fmt.Errorf("template services: %w", err)
	}
	if err := json.Unmarshal(f.Responses["tasks"].Body, &tasks); err != nil {
		return nil, fmt.Errorf("template tasks: %w", err)
	}
	for _, n := range nodes {
		if n["ManagerStatus"] != nil && t.manager == nil {
			t.manager = n
		}
		if n["ManagerStatus"] == nil && t.worker == nil {
			t.worker = n
		}
	}
	for _, s := range services {
		mode, _ := s["Spec"].(map[string]any)["Mode"].(map[string]any)
		if _, ok := mode["Replicated"]; ok && t.replicated == nil {
			t.replicated = s
		}
		if _, ok := mode["Global"]; ok && t.global == nil {
			t.global = s
		}
	}
	for _, task := range tasks {
		if task["DesiredState"] == "running" {
			t.task = task
			break
		}
	}
	if t.manager == nil || t.worker == nil || t.replicated == nil || t.global == nil || t.task == nil {
		return nil, fmt.Errorf("the template fixture needs a manager, a worker, a replicated and a global service and a running task")
	}
	return &t, nil
}

// stamp writes copies of a task with new IDs quickly: the template is
// marshalled once with placeholders and split around them.
type stamp struct {
	parts [][]byte // len(fields)+1 segments
	order []int    // which field goes between parts[i] and parts[i+1]
}

const (
	phID = iota
	phService
	phNode
	phSlot
	phDesired
	phState
)

var placeholders = [...]string{`"@@ID@@"`, `"@@SERVICE@@"`, `"@@NODE@@"`, `987654321`, `"@@DESIRED@@"`, `"@@STATE@@"`}

func newStamp(task map[string]any) (*stamp, error) {
	t := cloneMap(task)
	t["ID"] = "@@ID@@"
	t["ServiceID"] = "@@SERVICE@@"
	t["NodeID"] = "@@NODE@@"
	t["Slot"] = 987654321
	t["DesiredState"] = "@@DESIRED@@"
	t["Status"].(map[string]any)["State"] = "@@STATE@@"
	raw := mustJSON(t)
	st := &stamp{}
	for len(raw) > 0 {
		next, which := -1, -1
		for i, p := range placeholders {
			if j := bytes.Index(raw, []byte(p)); j >= 0 && (next < 0 || j < next) {
				next, which = j, i
			}
		}
		if next < 0 {
			st.parts = append(st.parts, raw)
			break
		}
		st.parts = append(st.parts, raw[:next])
		st.order = append(st.order, which)
		raw = raw[next+len(placeholders[which]):]
	}
	if len(st.parts) == len(st.order) {
		st.parts = append(st.parts, nil)
	}
	if len(st.order) != len(placeholders) {
		return nil, fmt.Errorf("task template: found %d of %d fields", len(st.order), len(placeholders))
	}
	return st, nil
}

func (st *stamp) write(b *bytes.Buffer, id, service, node string, slot int, desired, state string) {
	for i, which := range st.order {
		b.Write(st.parts[i])
		switch which {
		case phID:
			b.WriteString(strconv.Quote(id))
		case phService:
			b.WriteString(strconv.Quote(service))
		case phNode:
			b.WriteString(strconv.Quote(node))
		case phSlot:
			b.WriteString(strconv.Itoa(slot))
		case phDesired:
			b.WriteString(strconv.Quote(desired))
		case phState:
			b.WriteString(strconv.Quote(state))
		}
	}
	b.Write(st.parts[len(st.parts)-1])
}

func nodeID(i int) string    { return fmt.Sprintf("node%021d", i) }
func serviceID(i int) string { return fmt.Sprintf("svc%022d", i) }
func taskID(i int) string    { return fmt.Sprintf("task%021d", i) }
func hostname(i int) string  { return fmt.Sprintf("node-%04d", i) }
func address(i int) string   { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

func cloneMap(m map[string]any) map[string]any {
	var out map[string]any
	if err := json.Unmarshal(mustJSON(m), &out); err != nil {
		panic(err)
	}
	return out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
