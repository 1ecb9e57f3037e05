package bridge

import (
	"testing"
	"time"
)

func TestStaleAfter(t *testing.T) {
	tests := []struct {
		name string
		cfg  EdgeConfig
		want time.Duration
	}{
		{"defaults", EdgeConfig{}, 35 * time.Second},
		{"retries dominate", EdgeConfig{
			FetchInterval: time.Second, RetryDelay: time.Second,
			MaxFailures: 5,
		}, 6 * time.Second},
		{"two intervals at least", EdgeConfig{
			FetchInterval: time.Minute, RetryDelay: time.Millisecond,
			MaxFailures: 3,
		}, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.staleAfter(); got != tt.want {
				t.Errorf("staleAfter() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestJudge checks when the Engine counts as unreachable: a bridge that
// never fetched for longer than the limit, a last good fetch older than
// it, HealthState calls failing; and not while fetches are recent.
func TestJudge(t *testing.T) {
	const limit = 35 * time.Second
	started := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		// since is how long after started the bridge is judged;
		// fetched, if not zero, how long after started the last good
		// fetch was.
		since, fetched time.Duration
		fetchErrors    uint64
		healthStateBad bool
		wantReachable  bool
		wantProblem    string
		wantAge        float64
	}{
		{name: "starting", since: 30 * time.Second, wantReachable: true},
		{name: "never fetched", since: 40 * time.Second, fetchErrors: 19,
			wantProblem: "no good config fetch in the 40s since the bridge " +
				"started (limit 35s); 19 failed"},
		{name: "fresh fetch", since: time.Hour, fetched: time.Hour - 15*time.Second,
			fetchErrors: 3, wantReachable: true, wantAge: 15},
		{name: "fetches keep failing", since: time.Hour,
			fetched: time.Hour - 36*time.Second, fetchErrors: 10,
			wantProblem: "last good config fetch 36s ago (limit 35s); " +
				"10 fetches failed in all",
			wantAge: 36},
		{name: "health state failing", since: time.Minute,
			fetched: time.Minute - time.Second, healthStateBad: true,
			wantProblem: "HealthState calls keep failing (max_failures " +
				"in a row)",
			wantAge: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &EdgeStats{}
			s.FetchErrors.Store(tt.fetchErrors)
			s.Unreachable.Store(tt.healthStateBad)
			if tt.fetched != 0 {
				s.LastFetch.Store(started.Add(tt.fetched).UnixNano())
			}
			got := s.judge(limit, started, started.Add(tt.since))
			if got.Reachable != tt.wantReachable || got.Problem != tt.wantProblem {
				t.Errorf("judge() = reachable %v, problem %q; want %v, %q",
					got.Reachable, got.Problem, tt.wantReachable, tt.wantProblem)
			}
			if got.LastFetchAge != tt.wantAge {
				t.Errorf("LastFetchAge = %v, want %v", got.LastFetchAge, tt.wantAge)
			}
			if (got.LastFetch == nil) != (tt.fetched == 0) {
				t.Errorf("LastFetch = %v, want it set iff there was a fetch",
					got.LastFetch)
			}
		})
	}
}

// TestWatchStartsReachable checks that a bridge just started is given
// its grace period.
func TestWatchStartsReachable(t *testing.T) {
	s := &EdgeStats{}
	s.FetchErrors.Store(1)
	if h := (s.Watch(EdgeConfig{}))(); !h.Reachable || h.Problem != "" {
		t.Errorf("Watch()() = %+v, want reachable within the grace period", h)
	}
}
