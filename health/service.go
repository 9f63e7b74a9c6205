package health

// ServicePolicy holds the operator's choices that change a service's verdict.
type ServicePolicy struct {
	// AllowZeroReplicas makes a service scaled to zero (0 desired, 0 running)
	// OK instead of KO, for operators who scale to zero on purpose.
	AllowZeroReplicas bool
}

// Service decides the status of a replicated or global service from its
// running and desired task counts. The first matching row wins:
//
//  1. running == 0       → KO (also when desired == 0, unless AllowZeroReplicas)
//  2. running < desired  → WARNING
//  3. running == desired → OK
//  4. running > desired  → WARNING
//
// Jobs have no status: their desired count is a number of completions, not a
// number of tasks that should be running, so callers do not ask.
func Service(running, desired int, p ServicePolicy) Status {
	switch {
	case running == 0 && desired == 0 && p.AllowZeroReplicas:
		return OK
	case running <= 0:
		return KO
	case running == desired:
		return OK
	default:
		return Warning
	}
}
