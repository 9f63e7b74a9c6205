package collector

import (
	"github.com/swarm-exporter/swarm_exporter/report"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

func init() {
	register("tasks", "current tasks per service by state, only the states that occur", true,
		func() Subcollector { return tasksCollector{} })
}

var serviceTasksFamily = newFamily("docker_swarm_service_tasks",
	"Current tasks of a service (desired state running, ready or complete; a job's, of its current run) by state; only the states that occur are emitted, so a pending, rejected or failed series says why a service is not running.",
	"service_name", "stack", "state")

type tasksCollector struct{}

func (tasksCollector) Update(r *report.Report, out *emitter) error {
	if !r.ServicesKnown {
		return ErrNoData
	}
	for i := range r.Services {
		s := &r.Services[i]
		for st, n := range s.Tasks {
			if n > 0 {
				out.gauge(serviceTasksFamily, float64(n), s.Name, s.Stack, swarm.TaskState(st).String())
			}
		}
	}
	return nil
}
