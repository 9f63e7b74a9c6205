package collector

import (
	"github.com/swarm-exporter/swarm_exporter/report"
)

func init() {
	register("services", "one set of series per service (info, desired and running replicas, status, task replacements, update state, job completions)", true,
		func() Subcollector { return servicesCollector{} })
}

var (
	serviceInfoFamily = newFamily("docker_swarm_service_info",
		"A swarm service and its static properties; always 1. The image is shown without its digest.",
		"service_id", "service_name", "stack", "mode", "image")
	serviceDesiredFamily = newFamily("docker_swarm_service_replicas_desired",
		"Tasks a service should run: its replicas (replicated), its eligible nodes (global: not down, not drained, matching its constraints; a paused node while it holds a task of it), or its completions (replicated job).",
		"service_name", "stack", "mode")
	serviceRunningFamily = newFamily("docker_swarm_service_replicas_running",
		"Tasks of a service that are running and meant to run, on nodes that are not down (for global services: on eligible nodes).",
		"service_name", "stack", "mode")
	serviceStatusFamily = newFamily("docker_swarm_service_status",
		"Status of a replicated or global service, one series per status with the current one at 1: ok (running == desired), warning (some but not all, or more than desired), ko (none running).",
		"service_name", "stack", "status")
	serviceUpdateStateFamily = newFamily("docker_swarm_service_update_state",
		"State of a service's last update or rollback (updating, paused, completed, rollback_started, rollback_paused, rollback_completed); one series at 1, absent when the service was never updated.",
		"service_name", "stack", "state")
	serviceUpdateStartedFamily = newFamily("docker_swarm_service_update_started_timestamp_seconds",
		"Unix time at which a service's last update or rollback started; absent when the service was never updated.",
		"service_name", "stack")
	serviceCompletedFamily = newFamily("docker_swarm_service_tasks_completed",
		"Tasks of a job's current run that have completed.",
		"service_name", "stack", "mode")
	serviceReplacementsFamily = newCounterFamily("docker_swarm_service_task_replacements_total",
		"Tasks of a replicated or global service that replaced another in the same slot (replicated) or on the same node (global), as seen by this exporter between two successive reads since it started: restarts after a failure, updates, rescheduling. Several replacements of one slot between two reads count once.",
		"service_name", "stack")
)

type servicesCollector struct{}

func (servicesCollector) Update(r *report.Report, out *emitter) error {
	if !r.ServicesKnown {
		return ErrNoData
	}
	for i := range r.Services {
		s := &r.Services[i]
		mode := s.Mode.String()
		out.gauge(serviceInfoFamily, 1, s.ID, s.Name, s.Stack, mode, s.Image)
		out.gauge(serviceDesiredFamily, float64(s.Desired), s.Name, s.Stack, mode)
		out.gauge(serviceRunningFamily, float64(s.Running), s.Name, s.Stack, mode)
		if s.HasStatus() {
			statusSet(out, serviceStatusFamily, s.Status, s.Name, s.Stack)
			out.gauge(serviceReplacementsFamily, float64(s.Replacements), s.Name, s.Stack)
		} else {
			out.gauge(serviceCompletedFamily, float64(s.Completed), s.Name, s.Stack, mode)
		}
		if s.UpdateState != 0 {
			out.gauge(serviceUpdateStateFamily, 1, s.Name, s.Stack, s.UpdateState.String())
			if !s.UpdateStartedAt.IsZero() {
				out.gauge(serviceUpdateStartedFamily, float64(s.UpdateStartedAt.UnixNano())/1e9, s.Name, s.Stack)
			}
		}
	}
	return nil
}
