package messages

import "time"

// The operators' HTTP API: what /status, /tree and /healthz answer. Each
// is JSON.

// CheckReport is one check as an operator sees it.
type CheckReport struct {
	ID uint64 `json:"id"`
	// Checker, Target and Config summarise the check's config; Config
	// reads like "http GET /healthz 10.0.0.1:80".
	Checker  CheckerType `json:"checker"`
	Target   string      `json:"target"`
	Config   string      `json:"config"`
	Interval string      `json:"interval"`
	// Since is when the check entered its state; absent while unknown.
	Since  *time.Time `json:"since,omitempty"`
	Status Status     `json:"status"`
}

// StatusReport answers /status: every check, ordered by ID.
type StatusReport struct {
	Checks []CheckReport `json:"checks"`
}

// RequestReport asks the manager for a StatusReport.
type RequestReport struct{}

// ActorReport is one actor of the live tree.
type ActorReport struct {
	// ID is the actor's path, e.g. "hc/manager/42"; Parent is its
	// parent's path, empty for a root.
	ID     string `json:"id"`
	Parent string `json:"parent,omitempty"`
	// Kind is manager, check, notifier, proxy, bridge, link or root.
	Kind string `json:"kind"`
	// Mailbox is how many messages wait for the actor.
	Mailbox int64 `json:"mailbox"`
	// Restarts counts the actor's restarts after crashes.
	Restarts uint64 `json:"restarts"`
}

// TreeReport answers /tree: every live actor, parents before children.
type TreeReport struct {
	Actors []ActorReport `json:"actors"`
}

// HealthReport answers /healthz: whether the supervisor itself works.
type HealthReport struct {
	// Status is "ok", or "degraded" with the reasons in Problems.
	Status   string   `json:"status"`
	Problems []string `json:"problems,omitempty"`
	// Checks is the number of configured checks.
	Checks int `json:"checks"`
	// Clients is the number of socket clients connected.
	Clients int64 `json:"clients"`
	// LastUpdate is when the manager last received update_configs, from
	// any source; LastUpdateAge is how long ago, in seconds. Both are
	// absent before the first.
	LastUpdate    *time.Time `json:"last_update_configs,omitempty"`
	LastUpdateAge float64    `json:"last_update_configs_age_seconds,omitempty"`
	// Engine is set when the Engine bridge runs in the process.
	Engine *EngineHealth `json:"engine,omitempty"`
	// StartLag is how late probes started against their plan, since the
	// server started; absent before the first probe.
	StartLag *LagReport `json:"start_lag,omitempty"`
}

// LagReport summarises probe start lag, estimated from a histogram.
type LagReport struct {
	Probes     uint64  `json:"probes"`
	P50Seconds float64 `json:"p50_seconds"`
	P99Seconds float64 `json:"p99_seconds"`
}

// EngineHealth is the Engine bridge's view of the Engine.
type EngineHealth struct {
	// Reachable is false after max_failures failed calls in a row, or
	// when no config fetch has succeeded for too long; Problem then says
	// which.
	Reachable bool   `json:"reachable"`
	Problem   string `json:"problem,omitempty"`
	// LastFetch is when configs were last fetched; LastFetchAge is how
	// long ago, in seconds.
	LastFetch    *time.Time `json:"last_fetch,omitempty"`
	LastFetchAge float64    `json:"last_fetch_age_seconds,omitempty"`
	// Pending is the number of statuses waiting for the Engine.
	Pending int64 `json:"pending"`
}

// UnreachableProblem is the problem a /healthz lists when the Engine is
// not reachable: "engine unreachable", with Problem after a colon.
func (e *EngineHealth) UnreachableProblem() string {
	if e.Problem == "" {
		return "engine unreachable"
	}
	return "engine unreachable: " + e.Problem
}
